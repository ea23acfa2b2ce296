"""Water fixtures: an agglomeration with a creditor, the demo tariff and monthly payers."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from guichet.catalog.models import Organisation, Portal
from guichet.common.actor import Actor
from guichet.water import services as s
from guichet.water.demo import TARIFF_2023

ACTOR = Actor.cli()
D = dt.date
IBANS = ["FR7630004000000003123456702", "FR7610096000000050123456763", "FR7617515000009000041234593"]
_seq = itertools.count(1)
TAKE_OVER = D(2023, 11, 20)


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


@pytest.fixture
def org(db):
    n = next(_seq)
    portal = Portal.objects.create(slug=f"agglo-{n}", name=f"Agglo {n}")
    organisation = Organisation.objects.create(portal=portal, slug="eau", name="Agglomération", kind="agglomeration")
    s.creditor_set(organisation=organisation, name="Agglo Eau", creditor_id="FR72ZZZ123456",
                   iban="FR7630006000000001123456786", actor=ACTOR, now=at(D(2023, 11, 1)))
    s.tariff_set(organisation=organisation, valid_from=D(2023, 1, 1), definition=TARIFF_2023, actor=ACTOR,
                 now=at(D(2023, 11, 1)))
    return organisation


def monthly_payer(org, ref="C-1", *, index=1204, basis=48000, iban=IBANS[0], start=None, billing="monthly"):
    """A customer taken over on ``start`` at ``index``, with a mandate and a 2024 schedule."""
    start = start or TAKE_OVER
    now = at(start)
    customer = s.customer_create(organisation=org, reference=ref, name=f"Client {ref}", address="1 rue X",
                                 billing=billing, actor=ACTOR, now=now)
    contract = s.contract_open(customer=customer, point_reference=f"P-{ref}", address="1 rue X", sanitation=True,
                               meter_serial=f"M-{ref}", diameter=15, start=start, start_index=index, actor=ACTOR,
                               now=now)
    if iban:
        s.mandate_create(customer=customer, reference=f"RUM-{ref}", signed_on=D(2019, 3, 1), iban=iban,
                         actor=ACTOR, now=now)
    if billing == "monthly":
        s.schedule_create(contract=contract, year=2024, basis=basis, actor=ACTOR, now=at(D(2023, 12, 1)))
    return contract


def regularise_2024(org, contract):
    """The meter of ``contract`` read on 18 November 2024, then the 2024 regularisation run of
    ``org`` (invoices issued on 25 November)."""
    s.reading_record(meter=contract.meter, date=D(2024, 11, 18), index=1322, actor=ACTOR,
                     now=at(D(2024, 11, 19)))
    s.regularisation_run(organisation=org, year=2024, readings_until=D(2024, 11, 30),
                         issued_on=D(2024, 11, 25), actor=ACTOR, now=at(D(2024, 11, 25)))


def debit_month(org, month, year=2024, key=None):
    return s.debit_run_create(organisation=org, collection_date=D(year, month, 10), due_from=D(year, month, 1),
                              due_until=D(year, month, 28), idempotency_key=key or f"{year}-{month:02d}",
                              actor=ACTOR, now=at(D(year, month, 3)))
