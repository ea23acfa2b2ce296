"""QA: the coming-back screen's "days to bill" and the invoice run disagreed — after a run with no
anomaly, days justified in time were still listed "to bill" although no run would ever bill them.
The screen now counts exactly what a run bills, says which days sit on draft invoices, and
what a run leaves aside stays listed with the matching anomaly."""

from __future__ import annotations

import datetime as dt

import pytest

from guichet.billing import services as billing
from guichet.billing.models import RunAnomaly
from guichet.bookings.models import Session, Unit
from guichet.recovery.selectors import months_not_invoiced
from tests.billing import factories as f

pytestmark = pytest.mark.django_db

OCT, NOV = dt.date(2024, 10, 1), dt.date(2024, 11, 1)
TODAY = dt.date(2024, 12, 1)  # f.NOW: October and November are past months
IN_TIME = dt.datetime(
    2024, 10, 3, 9, 0, tzinfo=dt.UTC
)  # the session is on 2 October: within 8 days
TOO_LATE = dt.datetime(2024, 10, 20, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def town():
    org, site, acts = f.town()
    h1, h2 = f.household(org), f.household(org)
    for h in (h1, h2):
        f.quotient(h, dt.date(2024, 1, 1), 600)
    c1, c2 = h1.children.get(), h2.children.get()
    oct_day = f.session(org, site, acts["mercredis"], dt.date(2024, 10, 2))
    f.book(c1, oct_day)  # kept: billed
    f.book(c2, oct_day, status="cancelled", late=True, justified_at=IN_TIME)  # never billed
    f.book(
        c1,
        f.session(org, site, acts["mercredis"], dt.date(2024, 10, 9)),
        present=False,
        justified_at=IN_TIME + dt.timedelta(days=7),
    )  # absent, justified in time: never billed
    f.book(
        c2,
        f.session(org, site, acts["mercredis"], dt.date(2024, 10, 16)),
        status="cancelled",
        late=True,
        justified_at=TOO_LATE + dt.timedelta(days=10),
    )  # justified too late: billed
    nov_day = f.session(org, site, acts["cantine"], dt.date(2024, 11, 5))
    f.book(c1, nov_day, "repas")
    # A crèche day is billed by the contract, by the month, never as a day: not counted.
    f.book(c2, f.session(org, site, acts["creche"], dt.date(2024, 10, 7)), "heure")
    return org, acts, c2


def _months(org):
    return {m.month: (m.items, m.households, m.drafted) for m in months_not_invoiced(org, TODAY)}


def test_days_justified_in_time_and_creche_days_are_not_to_bill(town):
    org, _acts, _c2 = town
    assert _months(org) == {OCT: (2, 2, 0), NOV: (1, 1, 0)}


def test_after_a_run_the_screen_and_the_run_agree(town):
    org, acts, _c2 = town
    run = f.run(org, OCT, NOV, [acts["mercredis"], acts["cantine"]])
    assert run.items_count == 3 and not RunAnomaly.objects.filter(run=run).exists()
    # Billed on drafts: nothing left "to bill", the three days wait on draft invoices.
    assert _months(org) == {OCT: (0, 0, 2), NOV: (0, 0, 1)}
    billing.invoice_run_finalise(run=run, actor=f.ACTOR, now=f.NOW)
    assert _months(org) == {}


def test_what_a_run_leaves_aside_stays_to_bill_with_its_anomaly(town):
    org, acts, c2 = town
    # A snack in November that has no tariff: the run says so and bills the rest.
    snack = Unit.objects.create(
        organisation=org,
        activity=acts["cantine"],
        code="gouter",
        name="Goûter",
        parts=["day"],
        position=5,
    )
    f.book(c2, Session.objects.get(activity=acts["cantine"]), snack.code)
    assert _months(org)[NOV] == (2, 2, 0)
    run = f.run(org, OCT, NOV, [acts["mercredis"], acts["cantine"]])
    (anomaly,) = RunAnomaly.objects.filter(run=run)
    assert anomaly.kind == RunAnomaly.Kind.NO_TARIFF and anomaly.count == 1
    assert _months(org) == {OCT: (0, 0, 2), NOV: (1, 1, 1)}  # the one day the anomaly names
