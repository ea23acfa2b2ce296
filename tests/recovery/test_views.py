"""The staff screens: coming back (recorded, still to enter, to catch up), paper entry, access."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth import get_user_model

from guichet.accounts.models import StaffRole
from guichet.billing.models import Payment
from guichet.bookings import services as bookings
from guichet.bookings.models import AgentRole, Booking
from guichet.recovery import services as paper
from guichet.recovery.models import PaperForm
from tests.bookings.test_services import AGENT, BEFORE, World, item, paris

from .helpers import catalogue, configure_gates, set_state

pytestmark = pytest.mark.django_db
NOW = paris(2025, 1, 10, 9, 0)


@pytest.fixture
def world(db):
    w = World(capacity=5)
    w.procedures = catalogue(w)
    configure_gates(w, w.procedures)
    return w


def staff(client, world, *, agent=False, kind=None, name="staff"):
    user = get_user_model().objects.create_user(name, password="x" * 12)
    if agent:
        AgentRole.objects.create(organisation=world.org, user=user)
    if kind:
        StaffRole.objects.create(user=user, organisation=world.org, kind=kind, granted_at=BEFORE)
    client.force_login(user)
    return client


def url(world, path=""):
    return f"/manage/recovery/{world.portal.slug}/{world.org.slug}/{path}"


def test_access_is_for_staff_of_the_organisation(world, client):
    assert client.get(url(world)).status_code == 302  # sign in first
    staff(client, world, name="nobody")
    assert client.get(url(world)).status_code == 403
    staff(client, world, kind="it", name="it")
    assert client.get(url(world)).status_code == 200
    assert client.get(url(world, "paper/bookings/")).status_code == 403  # IT does not enter bookings
    assert client.get(url(world, "paper/deposits/")).status_code == 403
    assert client.get(f"/manage/recovery/{world.portal.slug}/nowhere/").status_code == 404
    assert client.get(f"/manage/recovery/{world.portal.slug}/")["Location"].endswith(url(world))


def test_coming_back_shows_recorded_still_to_enter_and_to_catch_up(world, client):
    session = world.session(day=dt.date(2024, 12, 4))
    set_state(world, "inscriptions", "suspended")
    (h1, (c1,)), (h2, (c2,)) = world.household(), world.household()
    bookings.booking_create_by_agent(household=h1, child=c1, session=session, unit="journee", actor=AGENT,
                                     now=BEFORE, reason="")
    for n in (1, 4):
        paper.paper_booking_record(organisation=world.org, series="A", number=n, received_at=paris(2024, 11, 25, 9, n),
                                   household=h2, items=[item(c2, session)], actor=AGENT,
                                   now=paris(2024, 11, 28, 9, 0))
    staff(client, world, kind="it")
    with time_machine.travel(NOW, tick=False):
        page = client.get(url(world)).content.decode()
    assert "Closed online" in page or "Fermée en ligne" in page  # the booking gate, in words
    assert "rec-state--closed" in page
    # Recorded while degraded: the counter's booking, in words.
    assert "1 booking made at the counter" in page or "1 réservation faite à l’accueil" in page.replace("'", "’")
    # Still to enter: numbers 2 and 3 of book A.
    assert "2–3" in page and "rec-todo" in page
    # To catch up: December 2024 not invoiced (two days booked).
    assert "2024" in page and "rec-num\">2<" in page
    # Renew requests: no notice yet, said in words.
    assert "Requests to renew" in page or "renouveler" in page.lower()


def test_an_agent_enters_a_paper_form_and_a_retry_does_nothing_more(world, client):
    session = world.session(day=dt.date(2025, 1, 15))
    hh, (child,) = world.household()
    staff(client, world, agent=True)
    data = {"series": "A", "number": "12", "received_on": "2025-01-08", "received_time": "10:30",
            "household": hh.reference, "activity": world.activity.pk, "site": world.site.pk,
            "children": child.first_name, "dates": "15/01/2025", "unit": "journee", "mode": "partial"}
    with time_machine.travel(NOW, tick=False):
        r = client.post(url(world, "paper/bookings/"), data)
        again = client.post(url(world, "paper/bookings/"), data)
    assert r.status_code == 200 and "A-12" in r.content.decode()
    assert again.status_code == 200 and Booking.objects.count() == 1 and PaperForm.objects.count() == 1
    booking = Booking.objects.get()
    assert booking.session == session and booking.booked_at == paris(2025, 1, 8, 10, 30)


def test_bad_paper_input_names_the_field_and_changes_nothing(world, client):
    world.session(day=dt.date(2025, 1, 15))
    hh, (child,) = world.household()
    staff(client, world, agent=True)
    base = {"series": "A", "number": "12", "received_on": "2025-01-08", "received_time": "10:30",
            "household": hh.reference, "activity": world.activity.pk, "site": world.site.pk,
            "children": child.first_name, "dates": "2025-01-15", "unit": "journee", "mode": "partial"}
    cases = [({"number": "-3"}, "id_number"), ({"household": "NOPE"}, "id_household"),
             ({"dates": "demain"}, "id_dates"), ({"dates": "2025-01-16"}, "id_dates"),
             ({"children": "Personne"}, "id_children"), ({"received_on": "2025-02-01"}, "id_received_on"),
             ({"unit": "nope"}, "id_unit")]
    with time_machine.travel(NOW, tick=False):
        for change, field in cases:
            r = client.post(url(world, "paper/bookings/"), {**base, **change})
            assert r.status_code == 400, change
            assert f'href="#{field}"' in r.content.decode() or 'role="alert"' in r.content.decode(), change
    assert not PaperForm.objects.exists() and not Booking.objects.exists()


def test_counter_enters_a_paper_deposit(world, client):
    hh, _ = world.household()
    staff(client, world, kind="counter")
    data = {"series": "R", "number": "31", "received_on": "2025-01-06", "received_time": "16:30",
            "household": hh.reference, "amount": "45,50", "method": "cheque", "reference": "1234567"}
    with time_machine.travel(NOW, tick=False):
        r = client.post(url(world, "paper/deposits/"), data)
        bad = client.post(url(world, "paper/deposits/"), {**data, "number": "32", "amount": "quarante"})
    assert r.status_code == 200 and "R-31" in r.content.decode()
    assert bad.status_code == 400
    p = Payment.objects.get()
    assert p.amount_cents == 4550 and p.received_at == paris(2025, 1, 6, 16, 30)


def test_void_a_number_and_import_a_batch(world, client):
    world.session(day=dt.date(2025, 1, 15))
    hh, (child,) = world.household()
    staff(client, world, agent=True)
    csv = ("series;number;received_at;household;child;activity;site;date;unit\n"
           f"B;1;2025-01-07 09:00;{hh.reference};{child.first_name};mercredis;centre;2025-01-15;journee\n"
           f"B;3;2025-01-07 09:10;{hh.reference};{child.first_name};mercredis;centre;2025-01-15;journee\n")
    with time_machine.travel(NOW, tick=False):
        r = client.post(url(world, "paper/import/"), {"text": csv, "mode": "partial"})
        bad = client.post(url(world, "paper/import/"), {"text": "series;number\nB;1\n", "mode": "partial"})
        v = client.post(url(world, "paper/void/"), {"kind": "booking", "series": "B", "number": "2",
                                                   "reason": "déchiré"})
    entered = PaperForm.objects.filter(series="B", state="entered")
    assert r.status_code == 200 and bad.status_code == 400 and entered.count() == 2
    assert v.status_code == 302 and PaperForm.objects.get(series="B", number=2).state == "void"


def test_the_staff_home_links_to_the_coming_back_screen(world, client):
    staff(client, world, kind="finance")
    page = client.get("/accounts/staff/").content.decode()
    assert f"/manage/recovery/{world.portal.slug}/" in page
    staff(client, world, name="parent")
    assert "/manage/recovery/" not in client.get("/accounts/staff/").content.decode()
