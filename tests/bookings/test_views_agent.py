"""The agents' screens: book on behalf (after a deadline with a reason), attendance, fill rates,
waiting lists; access limited to agents."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth import get_user_model

from guichet.bookings.models import AgentRole, Attendance, Booking, WaitlistEntry
from tests.bookings.test_services import BEFORE, WEDNESDAY, World, item, paris

pytestmark = pytest.mark.django_db

LATE = paris(2024, 12, 2, 9, 0)
ON_THE_DAY = paris(2024, 12, 4, 10, 0)


@pytest.fixture
def world(db):
    return World(capacity=3)


@pytest.fixture
def agent(world, client):
    user = get_user_model().objects.create_user("agent", password="x" * 12)
    AgentRole.objects.create(organisation=world.org, user=user)
    client.force_login(user)
    return client


def base(world):
    return f"/manage/bookings/{world.portal.slug}/"


def test_only_agents_get_in(world, client):
    assert client.get(base(world)).status_code == 302  # to the login page
    client.force_login(get_user_model().objects.create_user("parent", password="x" * 12))
    assert client.get(base(world)).status_code == 403


def test_find_a_household_by_reference(world, agent):
    hh, _ = world.household()
    r = agent.get(base(world) + f"?ref={hh.reference}")
    assert r.status_code == 302 and r["Location"].endswith(f"/households/{hh.reference}/")


def test_booking_after_the_deadline_needs_a_reason(world, agent):
    session = world.session()
    hh, (child,) = world.household()
    url = base(world) + f"households/{hh.reference}/book/"
    data = {"child": child.pk, "session": session.pk, "unit": "matin-repas"}
    with time_machine.travel(LATE, tick=False):
        page = agent.get(base(world) + f"households/{hh.reference}/?date={WEDNESDAY:%Y-%m-%d}").content.decode()
        assert "a reason is required" in page or "motif" in page.lower()
        refused = agent.post(url, data)
        assert refused.status_code == 400 and "m-errors" in refused.content.decode()
        assert not Booking.objects.exists()
        ok = agent.post(url, {**data, "reason": "Reprise du travail imprévue"})
    assert ok.status_code == 302
    b = Booking.objects.get()
    assert b.after_deadline and b.reason == "Reprise du travail imprévue" and b.unit.code == "matin-repas"


def test_attendance_is_recorded(world, agent):
    session = world.session()
    hh, (child,) = world.household()
    with time_machine.travel(BEFORE, tick=False):
        world.submit(hh, [item(child, session)])
    booking = Booking.objects.get()
    url = base(world) + f"attendance/?site={world.site.pk}&date={WEDNESDAY:%Y-%m-%d}"
    with time_machine.travel(ON_THE_DAY, tick=False):
        page = agent.get(url).content.decode()
        assert "Enfant0" in page
        r = agent.post(base(world) + "attendance/", {"site": world.site.pk, "date": f"{WEDNESDAY:%Y-%m-%d}",
                                                      f"present-{booking.pk}": "0"})
    assert r.status_code == 302
    assert Attendance.objects.get(booking=booking).present is False


def test_fill_rates_show_the_numbers_as_text_and_table(world, agent):
    session = world.session(capacity=2)
    h1, (c1,) = world.household()
    h2, (c2,) = world.household()
    h3, (c3,) = world.household()
    with time_machine.travel(BEFORE, tick=False):
        for h, c in ((h1, c1), (h2, c2), (h3, c3)):
            world.submit(h, [item(c, session)])
        page = agent.get(base(world) + f"fill-rates/?activity={world.activity.pk}&from=2024-12-01&to=2024-12-10")
    html = page.content.decode()
    assert page.status_code == 200
    assert "2/2 (100 %)" in html  # each part full
    assert "<table" in html and "<svg" in html
    assert "<td>matin</td>" in html and "<td>repas</td>" in html  # parts of the day in words
    assert "1 waiting" in html or "1 en attente" in html
    assert WaitlistEntry.objects.count() == 1


def test_offer_the_next_place_from_the_waiting_list(world, agent):
    world.activity.waitlist_mode = "agent"
    world.activity.save()
    session = world.session(capacity=1)
    h1, (c1,) = world.household()
    h2, (c2,) = world.household()
    with time_machine.travel(BEFORE, tick=False):
        world.submit(h1, [item(c1, session)])
        world.submit(h2, [item(c2, session)])
        page = agent.get(base(world) + "waiting-lists/").content.decode()
        assert h2.reference in page
        from guichet.bookings import services
        from tests.bookings.test_services import PARENT

        services.booking_cancel(booking=Booking.objects.get(), actor=PARENT, now=BEFORE)
        r = agent.post(base(world) + f"waiting-lists/{session.pk}/offer/")
    assert r.status_code == 302
    assert WaitlistEntry.objects.get().status == "offered"
