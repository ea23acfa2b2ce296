"""Shared data for the billing outputs tests (PDF, portal, staff screens, treasury, API): a
town with one family billed for September and October 2024 after a deposit, the run
finalised.

Hand-computed figures (tariff of tests/billing/factories.py, quotient 700 -> bracket B):
September: 4 Wednesdays x full day 9,00 = 36,00; October: 2 x 9,00 = 18,00; total 54,00;
deposit of 20,00 taken before the run -> 34,00 to pay.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from guichet.accounts.models import StaffRole
from guichet.billing import services
from guichet.bookings.models import Child, Guardian, Household
from guichet.catalog.models import Organisation

from . import factories as F

NOW = F.NOW  # 2024-12-01 09:00 UTC
ISSUE = dt.date(2024, 12, 1)


@dataclass
class Billed:
    org: Organisation
    site: object
    acts: dict
    household: Household
    child: Child
    run: object
    invoice: object
    deposit: object


def billed_town(slug: str | None = None, *, ref: str = "F001", deposit_cents: int = 2000) -> Billed:
    org, site, acts = F.town(slug)
    h = F.household(org, children=1, ref=ref)
    child = Child.objects.get(household=h)
    F.quotient(h, dt.date(2024, 1, 1), 700)
    for d in F.wednesdays(2024, 9):
        F.book(child, F.session(org, site, acts["mercredis"], d), "journee")
    for d in F.wednesdays(2024, 10)[:2]:
        F.book(child, F.session(org, site, acts["mercredis"], d), "journee")
    dep = None
    if deposit_cents:
        dep = services.deposit_record(household=h, amount_cents=deposit_cents, method="cash", actor=F.ACTOR,
                                      now=NOW - dt.timedelta(days=30), idempotency_key=f"dep-{ref}-{org.pk}")
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 10, 1), [acts["mercredis"]])
    run = services.invoice_run_finalise(run=run, actor=F.ACTOR, now=NOW, issue_date=ISSUE, due_days=30)
    from guichet.billing.models import Invoice

    invoice = Invoice.objects.get(run=run, household=h)
    return Billed(org, site, acts, h, child, run, invoice, dep)


def parent_of(household: Household, email: str):
    user = get_user_model().objects.create_user(username=email, email=email, password="x-Secret-123456")
    Guardian.objects.create(organisation_id=household.organisation_id, household=household, user=user)
    return user


def staff(org: Organisation, email: str, *kinds: str):
    user = get_user_model().objects.create_user(username=email, email=email, password="x-Secret-123456")
    for kind in kinds:
        StaffRole.objects.create(user=user, organisation=org, kind=kind, granted_at=NOW)
    return user
