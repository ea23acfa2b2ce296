"""Races on PostgreSQL, each with a control that shows the race without the guard:

- two finalisations at the same moment: invoice numbers stay unique and gapless thanks to the
  numbering row locked with SELECT ... FOR UPDATE (control: without the lock, both take the
  same numbers and one finalisation fails on the unique constraint);
- a counter double click (same idempotency key twice at once): one deposit, one receipt, thanks
  to the organisation's credit lock (control: without it, the unique constraint is all that is
  left and one click fails).
"""

import datetime as dt
import time

import pytest
from django.db import IntegrityError

from guichet.billing import services
from guichet.billing.models import Invoice, NumberSequence, Payment
from tests.concurrency import run_together

from . import factories as f

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LATER = dt.datetime(2025, 1, 15, 9, tzinfo=dt.UTC)


def two_ready_runs():
    org, site, acts = f.town()
    for i in range(6):
        h = f.household(org)
        f.quotient(h, dt.date(2024, 1, 1), 300 + 100 * i)
        f.book(h.children.get(), f.session(org, site, acts["mercredis"], dt.date(2024, 10, 2)))
        f.book(h.children.get(), f.session(org, site, acts["cantine"], dt.date(2024, 10, 3)), "repas")
    a = f.run(org, dt.date(2024, 10, 1), dt.date(2024, 10, 1), [acts["mercredis"]], now=LATER)
    b = f.run(org, dt.date(2024, 10, 1), dt.date(2024, 10, 1), [acts["cantine"]], now=LATER)
    # the year's numbering row exists already (creating it would serialise the two on its own)
    NumberSequence.objects.create(organisation=org, series="FAC", year=2025, last=0)
    return org, [a, b]


def slow_unlocked_numbers(**kwargs):
    """The numbering without its row lock, slowed down so that the race is certain."""
    kwargs["lock"] = False
    NumberSequence.objects.bulk_create(
        [NumberSequence(organisation_id=kwargs["organisation_id"], series=kwargs["series"], year=kwargs["year"])],
        ignore_conflicts=True)
    seq = NumberSequence.objects.get(organisation_id=kwargs["organisation_id"], series=kwargs["series"],
                                     year=kwargs["year"])
    time.sleep(0.5)
    NumberSequence.objects.filter(pk=seq.pk).update(last=seq.last + kwargs["count"])
    return seq.last + 1


def slow_locked_numbers(**kwargs):
    first = ORIGINAL_TAKE(**kwargs)
    time.sleep(0.5)  # hold the lock a while: the other finalisation must wait, not collide
    return first


ORIGINAL_TAKE = services._take_numbers


def finalise_both(runs):
    def work(n):
        services.invoice_run_finalise(run=runs[n], actor=f.ACTOR, now=LATER, issue_date=dt.date(2025, 1, 15))

    return run_together(work, 2)


def test_concurrent_finalisations_get_gapless_numbers(monkeypatch):
    org, runs = two_ready_runs()
    monkeypatch.setattr(services, "_credit_lock", lambda organisation_id: None)  # only the numbering lock guards
    monkeypatch.setattr(services, "_take_numbers", slow_locked_numbers)
    errors = finalise_both(runs)
    assert errors == []
    numbers = sorted(Invoice.objects.filter(organisation=org).values_list("number", flat=True))
    assert numbers == [f"FAC-2025-{n:06d}" for n in range(1, 13)]


def test_control_without_the_lock_numbers_collide(monkeypatch):
    org, runs = two_ready_runs()
    monkeypatch.setattr(services, "_credit_lock", lambda organisation_id: None)
    monkeypatch.setattr(services, "_take_numbers", slow_unlocked_numbers)
    errors = finalise_both(runs)
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    assert "billing_invoice_number_unique" in str(errors[0])
    assert Invoice.objects.filter(organisation=org, status="final").count() == 6  # one run could not finalise


def double_click():
    org, _site, _acts = f.town()
    h = f.household(org)
    results = []

    def work(n):
        results.append(services.deposit_record(household=h, amount_cents=5000, method="cash", actor=f.ACTOR,
                                               now=LATER, idempotency_key="counter-click-1"))

    return results, run_together(work, 2)


def test_double_click_records_one_deposit():
    results, errors = double_click()
    assert errors == []
    assert len({p.pk for p in results}) == 1 and Payment.objects.count() == 1
    assert NumberSequence.objects.get(series="REC").last == 1  # no receipt number lost


def test_control_without_the_lock_the_constraint_is_the_backstop(monkeypatch):
    monkeypatch.setattr(services, "_credit_lock", lambda organisation_id: None)
    original = Payment.objects.filter

    def slow_filter(*args, **kwargs):  # the existence check, slowed down so both clicks pass it
        qs = original(*args, **kwargs)
        if "idempotency_key" in kwargs:
            time.sleep(0.5)
        return qs

    monkeypatch.setattr(Payment.objects, "filter", slow_filter)
    _results, errors = double_click()
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    assert Payment.objects.count() == 1
