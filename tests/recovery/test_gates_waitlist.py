"""Degraded mode: accepting an offered waiting-list place online is booking, so it is gated like
booking. Suspended: refused with what to do instead, nothing changed, the place still held;
declining stays possible; the counter still books."""

from __future__ import annotations

import json

import pytest
import time_machine

from guichet.bookings import services as bookings
from guichet.bookings.models import Booking, WaitlistEntry
from guichet.recovery import gates
from tests.bookings.test_services import AGENT, BEFORE, PARENT, item

from . import test_gates
from .helpers import INSTEAD, set_state

pytestmark = pytest.mark.django_db
world, parent = test_gates.world, test_gates.parent  # the same town and signed-in parent (fixtures)


def offered(world, household, child):
    """The only place of a session is freed; ``child``, first on the waiting list, is offered it."""
    session = world.session(capacity=1)
    other, (other_child,) = world.household()
    first = world.submit(other, [item(other_child, session)])
    assert world.submit(household, [item(child, session)]).result["items"][0]["outcome"] == "waitlisted"
    bookings.booking_cancel(booking=Booking.objects.get(pk=first.result["items"][0]["booking"]), actor=PARENT,
                            now=BEFORE)
    entry = WaitlistEntry.objects.get(child=child)
    assert entry.status == "offered"
    return session, entry


@pytest.fixture
def answer_url(world):
    from django.urls import reverse

    return lambda entry, what: reverse("bookings:waitlist-answer", args=[world.portal.slug, entry.pk, what])


def test_accepting_an_offer_while_booking_is_suspended_is_refused_and_changes_nothing(world, parent, answer_url):
    hh, child, client, _auth = parent
    session, entry = offered(world, hh, child)
    set_state(world, "inscriptions", "suspended")
    with time_machine.travel(BEFORE, tick=False):
        r = client.post(answer_url(entry, "accepter"))
    assert r.status_code == 503
    body = r.content.decode()
    assert INSTEAD in body and 'role="alert"' in body
    entry.refresh_from_db()
    assert entry.status == "offered"  # the place is still held for the family
    assert not Booking.objects.filter(child=child).exists()
    assert list(session.parts.values_list("booked", flat=True)) == [1, 1, 1]


def test_declining_stays_possible_while_booking_is_suspended(world, parent, answer_url):
    hh, child, client, _auth = parent
    _session, entry = offered(world, hh, child)
    set_state(world, "inscriptions", "suspended")
    with time_machine.travel(BEFORE, tick=False):
        r = client.post(answer_url(entry, "refuser"))
    assert r.status_code == 200
    entry.refresh_from_db()
    assert entry.status == "declined"


def test_accepting_works_when_open_or_only_disrupted(world, parent, answer_url):
    hh, child, client, _auth = parent
    _session, entry = offered(world, hh, child)
    set_state(world, "inscriptions", "degraded")  # configured "warn": restricted, still open
    assert gates.waitlist_accept_gate(entry=entry, now=BEFORE).state == gates.RESTRICTED
    with time_machine.travel(BEFORE, tick=False):
        r = client.post(answer_url(entry, "accepter"))
    assert r.status_code == 200
    assert Booking.objects.get(child=child, status="booked").channel == "waitlist"


def test_the_gate_is_open_with_nothing_configured_and_without_a_query(world, parent, django_assert_num_queries):
    from guichet.recovery.models import OnlineGate

    hh, child, _client, _auth = parent
    _session, entry = offered(world, hh, child)
    OnlineGate.objects.all().delete()
    gates._clear()  # noqa: SLF001
    gates.configured_gates(world.org.pk, "booking")  # cached
    with django_assert_num_queries(0):
        assert gates.waitlist_accept_gate(entry=entry, now=BEFORE).open


def test_the_counter_books_the_offered_place_for_the_family(world, parent):
    """An agent's booking for the child takes the place held for its offer (the session is
    full for everybody else) and accepts the offer."""
    hh, child, _client, _auth = parent
    session, entry = offered(world, hh, child)
    set_state(world, "inscriptions", "suspended")
    booking = bookings.booking_create_by_agent(household=hh, child=child, session=session, unit="journee",
                                               actor=AGENT, now=BEFORE, reason="")
    assert booking.status == "booked" and booking.channel == "agent"
    entry.refresh_from_db()
    assert entry.status == "accepted"
    assert list(session.parts.values_list("booked", flat=True)) == [1, 1, 1]  # the held place, not another


def test_without_an_offer_the_counter_finds_the_day_full(world, parent):
    hh, child, _client, _auth = parent
    session, _entry = offered(world, hh, child)
    other, (other_child,) = world.household()
    with pytest.raises(bookings.BookingError) as exc:
        bookings.booking_create_by_agent(household=other, child=other_child, session=session, unit="journee",
                                         actor=AGENT, now=BEFORE, reason="")
    assert exc.value.code == "full"


def test_the_api_accept_is_gated_too(world, parent):
    hh, child, client, auth = parent
    _session, entry = offered(world, hh, child)
    set_state(world, "inscriptions", "suspended")
    with time_machine.travel(BEFORE, tick=False):
        r = client.post(f"/api/v1/bookings/waitlist/{entry.pk}/accept", json.dumps({}),
                        content_type="application/json", **auth)
    assert r.status_code == 503
    assert r.json()["errors"][0]["code"] == "suspended" and r.json()["instead"] == INSTEAD
    entry.refresh_from_db()
    assert entry.status == "offered"


def test_the_api_accepts_an_offer_when_open_and_declines_another(world, parent):
    hh, child, client, auth = parent
    _session, entry = offered(world, hh, child)
    with time_machine.travel(BEFORE, tick=False):
        r = client.post(f"/api/v1/bookings/waitlist/{entry.pk}/accept", content_type="application/json", **auth)
        again = client.post(f"/api/v1/bookings/waitlist/{entry.pk}/accept", content_type="application/json", **auth)
        unknown = client.post("/api/v1/bookings/waitlist/999999/decline", content_type="application/json", **auth)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert Booking.objects.get(pk=r.json()["booking"]).child == child
    assert again.status_code == 422 and again.json()["errors"][0]["code"] == "not_offered"
    assert unknown.status_code == 404
    # A second child of the family, still waiting elsewhere, leaves the list through the API.
    later = world.session(day=BEFORE.date().replace(day=27), capacity=1)
    other, (other_child,) = world.household()
    world.submit(other, [item(other_child, later)])
    world.submit(hh, [item(child, later)])
    waiting = WaitlistEntry.objects.get(child=child, session=later)
    with time_machine.travel(BEFORE, tick=False):
        r = client.post(f"/api/v1/bookings/waitlist/{waiting.pk}/decline", content_type="application/json", **auth)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
