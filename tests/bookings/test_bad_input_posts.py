"""The family portal's and the agents' fields read by hand (``request.POST``, no Django form):
a field sent twice, a control character, an over-long value or a wrong number is refused with an
error that names the field; nothing is written (bookings, baskets, attendance, address, journal);
never a 500.

``QueryDict.get`` reads only the last of repeated values: a doubled ``present-<pk>`` used to
record the last mark, a cancellation reason over 300 characters was cut silently.
"""

from __future__ import annotations

import datetime as dt
import html

import pytest
import time_machine
from django.urls import reverse
from django.utils import translation

from guichet.bookings.models import Attendance, Basket, Booking, Household
from guichet.journal.models import Entry
from tests.bookings import test_views_agent
from tests.bookings.test_services import BEFORE, WEDNESDAY, item, paris
from tests.bookings.test_views_family import Family

pytestmark = pytest.mark.django_db

ON_THE_DAY = paris(2024, 12, 4, 10, 0)


@pytest.fixture(autouse=True)
def _english():
    """The pages in English (``/en/...``)."""
    with translation.override("en"):
        yield


world, agent = test_views_agent.world, test_views_agent.agent  # fixtures: a town, an agent signed in


@pytest.fixture
def family(world, client):
    """A family of two children, signed in."""
    return Family(world, client, children=2)


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _state():
    return (list(Booking.objects.values_list("pk", "status", "unit_id", "reason").order_by("pk")),
            list(Attendance.objects.values_list("booking_id", "present").order_by("pk")),
            list(Household.objects.values_list("pk", "postal_address").order_by("pk")),
            Basket.objects.count(), Entry.objects.count())


# --- family portal ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "words"), [
    (["12 rue de la Paix\n44600 Saint-Nazaire", "1 place de la Mairie"], "more than once"),
    ("12 rue de la Paix\x00\n44600 Saint-Nazaire", "control characters"),
    ("12 rue de la Paix\x1b\n44600 Saint-Nazaire", "control characters"),
    ("x" * 5000, "at most 38 characters"),
])
def test_the_family_address_refuses_bad_input_naming_the_field(client, world, family, value, words):
    before = _state()
    r = client.post(reverse("bookings:address", args=[world.portal.slug]), {"postal_address": value})
    assert r.status_code == 400
    assert "Postal address: " in _text(r) and words in _text(r)
    assert _state() == before


def test_the_family_address_keeps_its_line_breaks(client, world, family):
    """Control: line breaks are what a text area sends, not control characters to refuse."""
    r = client.post(reverse("bookings:address", args=[world.portal.slug]),
                    {"postal_address": "12 rue de la Paix\r\n44600 Saint-Nazaire"})
    assert r.status_code == 302
    assert Household.objects.get(pk=family.household.pk).postal_address == "12 rue de la Paix\n44600 Saint-Nazaire"


def _basket(world, family, **extra):
    child = family.children[0]
    session = world.session()
    return {"mode": "partial", "idempotency_key": "k1", f"item-{child.pk}-{session.pk}": "journee", **extra}, child


@pytest.mark.parametrize(("unit", "words"), [
    (["journee", "matin-repas"], "more than once"),
    ("journee\x00", "control characters"),
    ("matin\x1b-repas", "control characters"),
    ("journee" * 20, "choose one of the units"),
])
def test_a_basket_refuses_a_bad_unit_naming_the_child(client, world, family, unit, words):
    data, child = _basket(world, family)
    key = next(k for k in data if k.startswith("item-"))
    data[key] = unit
    before = _state()
    with time_machine.travel(BEFORE, tick=False):
        r = client.post(reverse("bookings:basket-submit", args=[world.portal.slug]), data)
    assert r.status_code == 400
    assert f"Unit for {child.first_name}" in _text(r) and words in _text(r)
    assert _state() == before


def test_a_basket_refuses_its_back_link_sent_twice(client, world, family):
    calendar = reverse("bookings:calendar", args=[world.portal.slug])
    data, _child = _basket(world, family, back=[calendar + "?mois=2024-12", calendar + "?mois=2025-01"])
    before = _state()
    with time_machine.travel(BEFORE, tick=False):
        r = client.post(reverse("bookings:basket-submit", args=[world.portal.slug]), data)
    assert r.status_code == 400 and "more than once" in _text(r)
    assert _state() == before


def test_a_good_basket_still_books(client, world, family):
    """Control: the same basket with each field once is received."""
    data, _child = _basket(world, family, back=reverse("bookings:calendar", args=[world.portal.slug]))
    with time_machine.travel(BEFORE, tick=False):
        r = client.post(reverse("bookings:basket-submit", args=[world.portal.slug]), data)
    assert r.status_code == 302 and Basket.objects.count() == 1


# --- agents ------------------------------------------------------------------------------------------------------


def test_an_agent_booking_refuses_its_session_sent_twice(world, agent):
    first, second = world.session(), world.session(WEDNESDAY + dt.timedelta(days=7))
    hh, (child,) = world.household()
    before = _state()
    with time_machine.travel(BEFORE, tick=False):
        r = agent.post(reverse("bookings:agent-book", args=[world.portal.slug, hh.reference]),
                       {"child": child.pk, "session": [first.pk, second.pk], "unit": "journee"})
    assert r.status_code == 400 and "Session: " in _text(r) and "more than once" in _text(r)
    assert _state() == before


@pytest.mark.parametrize("session", ["abc", "1" * 5000, "-3", "\x00"])
def test_an_agent_booking_refuses_a_session_that_is_not_a_number(world, agent, session):
    world.session()
    hh, (child,) = world.household()
    before = _state()
    with time_machine.travel(BEFORE, tick=False):
        r = agent.post(reverse("bookings:agent-book", args=[world.portal.slug, hh.reference]),
                       {"child": child.pk, "session": session, "unit": "journee"})
    assert r.status_code == 400 and "Session: " in _text(r)
    assert _state() == before


@pytest.mark.parametrize(("value", "words"), [
    (["1 rue A", "2 rue B"], "more than once"),
    ("1 rue A\x00", "control characters"),
])
def test_an_agent_address_refuses_bad_input_naming_the_field(world, agent, value, words):
    hh, _children = world.household()
    before = _state()
    r = agent.post(reverse("bookings:agent-address", args=[world.portal.slug, hh.reference]),
                   {"postal_address": value})
    assert r.status_code == 400 and "Postal address: " in _text(r) and words in _text(r)
    assert _state() == before


def _booked(world):
    session = world.session()
    hh, (child,) = world.household()
    with time_machine.travel(BEFORE, tick=False):
        world.submit(hh, [item(child, session)])
    return Booking.objects.get()


@pytest.mark.parametrize(("reason", "words"), [
    (["Déménagement", "Maladie"], "more than once"),
    ("Maladie\x00", "control characters"),
    ("Maladie\x1b[31m", "control characters"),
    ("x" * 301, "at most 300 characters"),
])
def test_an_agent_cancellation_refuses_a_bad_reason(world, agent, reason, words):
    booking = _booked(world)
    before = _state()
    with time_machine.travel(BEFORE, tick=False):
        r = agent.post(reverse("bookings:agent-cancel", args=[world.portal.slug, booking.pk]), {"reason": reason})
    assert r.status_code == 400
    assert "Reason for cancelling: " in _text(r) and words in _text(r)
    assert _state() == before


def test_an_agent_cancellation_with_a_good_reason_cancels(world, agent):
    """Control: a 300-character reason goes through whole."""
    booking = _booked(world)
    with time_machine.travel(BEFORE, tick=False):
        r = agent.post(reverse("bookings:agent-cancel", args=[world.portal.slug, booking.pk]), {"reason": "x" * 300})
    assert r.status_code == 302
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED and booking.reason == "x" * 300


def _attendance(world, booking, **changes):
    data = {"site": str(world.site.pk), "date": f"{WEDNESDAY:%Y-%m-%d}", f"present-{booking.pk}": "1"}
    return {**data, **changes}


@pytest.mark.parametrize(("field", "value", "label", "words"), [
    ("present", ["1", "0"], "Enfant0", "more than once"),
    ("present", "1\x00", "Enfant0", "control characters"),
    ("present", "2", "Enfant0", "present or absent"),
    ("present", "1" * 5000, "Enfant0", "present or absent"),
    ("date", "2024-13-45", "Day", "date"),
    ("date", [f"{WEDNESDAY:%Y-%m-%d}", "2024-12-05"], "Day", "more than once"),
    ("site", "abc", "Site", "site"),
    ("site", "\x1b", "Site", "control characters"),
])
def test_attendance_refuses_bad_input_naming_the_field(world, agent, field, value, label, words):
    booking = _booked(world)
    before = _state()
    name = f"present-{booking.pk}" if field == "present" else field
    with time_machine.travel(ON_THE_DAY, tick=False):
        r = agent.post(reverse("bookings:agent-attendance", args=[world.portal.slug]),
                       _attendance(world, booking, **{name: value}))
    assert r.status_code == 400
    assert f"{label}" in _text(r) and words in _text(r)
    assert _state() == before


def test_attendance_with_each_field_once_is_saved(world, agent):
    """Control: the same post, well formed, records the mark."""
    booking = _booked(world)
    with time_machine.travel(ON_THE_DAY, tick=False):
        r = agent.post(reverse("bookings:agent-attendance", args=[world.portal.slug]), _attendance(world, booking))
    assert r.status_code == 302
    assert Attendance.objects.get(booking=booking).present is True
