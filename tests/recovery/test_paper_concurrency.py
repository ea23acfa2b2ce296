"""Paper forms entered at the same moment by several agents (PostgreSQL): the form number acts
once. The control shows the race is real: a naive check-then-insert collides."""

from __future__ import annotations

import time

import pytest
from django.db import IntegrityError, transaction

from guichet.bookings.models import Basket, Booking
from guichet.recovery import services as paper
from guichet.recovery.models import PaperForm
from tests.bookings.test_services import AGENT, World, item, paris
from tests.concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HANDED_IN = paris(2024, 11, 27, 10, 15)
ENTERED = paris(2024, 12, 2, 9, 0)
THREADS = 6


def test_the_same_form_typed_by_several_agents_at_once_is_recorded_once():
    world = World(capacity=5)
    session = world.session()
    hh, (child,) = world.household()
    results = []

    def work(_n):
        results.append(paper.paper_booking_record(
            organisation=world.org, series="A", number=7, received_at=HANDED_IN, household=hh,
            items=[item(child, session)], actor=AGENT, now=ENTERED))

    errors = run_together(work, THREADS)
    assert not errors, errors
    assert PaperForm.objects.count() == 1 and Basket.objects.count() == 1 and Booking.objects.count() == 1
    assert len({r.form.pk for r in results}) == 1 and sum(r.created for r in results) == 1


def test_different_forms_with_one_number_at_once_keep_one_and_refuse_the_others():
    world = World(capacity=10)
    session = world.session()
    families = [world.household() for _ in range(THREADS)]
    codes = []

    def work(n):
        hh, (child,) = families[n]
        try:
            paper.paper_booking_record(organisation=world.org, series="A", number=9, received_at=HANDED_IN,
                                       household=hh, items=[item(child, session)], actor=AGENT, now=ENTERED)
            codes.append("ok")
        except paper.RecoveryError as exc:
            codes.append(exc.code)

    errors = run_together(work, THREADS)
    assert not errors, errors
    assert sorted(codes) == ["duplicate_number"] * (THREADS - 1) + ["ok"]
    assert PaperForm.objects.count() == 1 and Booking.objects.count() == 1


def test_control_a_naive_check_then_insert_collides():
    """Without the service's handling (unique number + retry), agents typing the same number at
    once meet the database's constraint as an error: the race the service absorbs is real."""
    world = World()
    hh, _ = world.household()

    def naive(_n):
        with transaction.atomic():
            if not PaperForm.objects.filter(organisation=world.org, kind="booking", series="A", number=3).exists():
                time.sleep(0.2)  # the time a request takes between its check and its insert
                PaperForm.objects.create(organisation=world.org, kind="booking", series="A", number=3,
                                         received_at=HANDED_IN, entered_at=ENTERED, household=hh,
                                         content_digest="x", actor_ref="test")

    errors = run_together(naive, THREADS)
    assert errors and all(isinstance(e, IntegrityError) for e in errors)
    assert PaperForm.objects.count() == 1
