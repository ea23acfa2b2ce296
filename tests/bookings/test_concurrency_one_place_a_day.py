"""A child is in one place at a time, under concurrency (PostgreSQL).

Requests for the same child at two centres on the same day race: agents at the counter (outside
the basket queue) and a family's basket. The service's check ("already booked that day?") runs
before the insert, so two requests can both pass it; the partial unique index on (child,
activity, date) is what keeps one of them. Each loser gets the refusal
``already_booked_elsewhere``, never an error, and its places are given back.

The CONTROL runs the same race with the index dropped: children end up booked at two centres,
which shows the race is real and the index is what prevents it.
"""

from __future__ import annotations

import time

import pytest
from bench import checks  # the rush's invariant check must see what this test sees
from django.db import connection

from tests.concurrency import run_together

CHILDREN = 6
WIDEN = 0.2  # seconds between the check and the insert, as a busy server could take


def _widen_the_window(monkeypatch):
    """Sleep after the places are taken (after the check, before the insert)."""
    from guichet.bookings import services

    real = services._take  # noqa: SLF001

    def slow_take(session, unit):
        real(session, unit)
        time.sleep(WIDEN)

    monkeypatch.setattr(services, "_take", slow_take)


def _race(monkeypatch, *, basket_for_one: bool) -> dict:
    from guichet.bookings import services
    from guichet.bookings.models import Booking, SessionPart, Site

    from .test_services import AGENT, BEFORE, PARENT, World, item

    world = World(capacity=CHILDREN)
    a = world.session()
    b = world.session(site=Site.objects.create(organisation=world.org, slug="centre-2", name="Centre 2"))
    families = [world.household() for _ in range(CHILDREN)]
    _widen_the_window(monkeypatch)
    refusals: list[str] = []

    def work(n: int) -> None:
        household, (child,) = families[n // 2]
        session = a if n % 2 else b
        try:
            if basket_for_one and n % 2:
                basket = services.basket_submit(household=household, items=[item(child, session)], mode="partial",
                                                actor=PARENT, now=BEFORE, idempotency_key=f"race-{n}")
                line = basket.result["items"][0]
                if line["outcome"] != "booked":
                    refusals.append(line["code"])
            else:
                services.booking_create_by_agent(household=household, child=child, session=session,
                                                 unit="journee", actor=AGENT, now=BEFORE, reason="")
        except services.BookingError as e:
            refusals.append(e.code)

    errors = run_together(work, 2 * CHILDREN, timeout=120)
    per_child = [Booking.objects.filter(child=child, status="booked").count() for _h, (child,) in families]
    counters = {
        s.pk: sorted(SessionPart.objects.filter(session=s).values_list("booked", flat=True)) for s in (a, b)
    }
    active = {s.pk: Booking.objects.filter(session=s, status="booked").count() for s in (a, b)}
    return {"twice_per_rush_check": checks.check(world.org.pk).booked_twice_same_day, "errors": [repr(e) for e in errors], "per_child": per_child, "refusals": refusals,
            "counters": counters, "active": active}


def _check_one_place(result: dict) -> None:
    assert result["errors"] == []
    assert result["per_child"] == [1] * CHILDREN, "a child was booked at two centres the same day"
    assert sorted(result["refusals"]) == ["already_booked_elsewhere"] * CHILDREN
    assert result["twice_per_rush_check"] == 0
    for session, counters in result["counters"].items():  # the losers gave their places back
        assert counters == [result["active"][session]] * 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_two_agents_at_two_centres_book_a_child_once(monkeypatch):
    _check_one_place(_race(monkeypatch, basket_for_one=False))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_an_agent_and_the_familys_basket_book_a_child_once(monkeypatch):
    _check_one_place(_race(monkeypatch, basket_for_one=True))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_control_without_the_index_children_are_booked_twice(monkeypatch):
    from guichet.bookings.models import Booking

    constraint = next(c for c in Booking._meta.constraints if c.name == "bookings_one_active_per_child_activity_day")
    with connection.schema_editor() as editor:
        editor.remove_constraint(Booking, constraint)
    try:
        result = _race(monkeypatch, basket_for_one=False)
    finally:
        Booking.objects.filter(status="booked").update(status="cancelled")  # so the index can come back
        with connection.schema_editor() as editor:
            editor.add_constraint(Booking, constraint)
    assert result["errors"] == []
    assert max(result["per_child"]) == 2, "the control should book a child twice; the race was not reproduced"
    assert result["twice_per_rush_check"] == sum(1 for n in result["per_child"] if n == 2)
