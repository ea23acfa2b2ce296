"""The calendar API says what the family's calendar page says (ADR 12, one place a day): a centre
on a day the child is already booked at another centre of the same activity is
``booked_elsewhere``, not ``free``, and names the session, centre and booking where the child
is. Its cost in queries does not grow with the number of such days."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from tests.bookings.test_api_bookings import API, parent  # noqa: F401 - a fixture
from tests.bookings.test_calendar_booked_elsewhere import world  # noqa: F401 - a fixture: two centres
from tests.bookings.test_services import BEFORE, WEDNESDAY, item

pytestmark = pytest.mark.django_db


def calendar(client, auth, first="2024-12-01", last="2024-12-31") -> dict:
    with time_machine.travel(BEFORE, tick=False):
        r = client.get(f"{API}/households/me/calendar?from={first}&to={last}", **auth)
    assert r.status_code == 200
    return r.json()


def sessions(cal: dict, child) -> dict[int, dict]:
    (found,) = [c for c in cal["children"] if c["child"] == child.pk]
    return {s["session"]: s for s in found["sessions"]}


def test_the_other_centre_is_booked_elsewhere_and_says_where(world, parent, client):  # noqa: F811
    hh, (first, second), auth = parent
    a, b = world.session(), world.session(site=world.site2)
    world.submit(hh, [item(first, a)])
    cal = calendar(client, auth)
    mine, other = sessions(cal, first)[a.pk], sessions(cal, first)[b.pk]
    assert mine["state"] == "booked" and mine["booked_elsewhere"] is None
    assert other["state"] == "booked_elsewhere"
    with translation.override("fr"):  # the API's labels are French, as the site's default
        assert other["state_label"] == translation.gettext("Booked at another centre") != "Booked at another centre"
    assert other["booked_elsewhere"] == {"session": a.pk, "site": "Centre Jules Verne", "booking": mine["booking"]}
    # The brother or sister is booked nowhere: both centres stay free for them.
    assert {s["state"] for s in sessions(cal, second).values()} == {"free"}
    assert all(s["booked_elsewhere"] is None for s in sessions(cal, second).values())


def test_another_day_stays_free(world, parent, client):  # noqa: F811
    hh, (first, _second), auth = parent
    a = world.session()
    next_week = world.session(day=WEDNESDAY + dt.timedelta(days=7), site=world.site2)
    world.submit(hh, [item(first, a)])
    other = sessions(calendar(client, auth), first)[next_week.pk]
    assert other["state"] == "free" and other["booked_elsewhere"] is None


def test_a_full_centre_is_booked_elsewhere_too(world, parent, client):  # noqa: F811
    hh, (first, _second), auth = parent
    a, full = world.session(), world.session(site=world.site2, capacity=0)
    world.submit(hh, [item(first, a)])
    other = sessions(calendar(client, auth), first)[full.pk]
    assert other["state"] == "booked_elsewhere" and other["booked_elsewhere"]["session"] == a.pk


def test_the_openapi_schema_documents_the_state_and_the_fields(client):
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    props = schema["CalendarSession"]["properties"]
    assert "booked_elsewhere" in props["state"]["description"]
    assert "booked_elsewhere" in props and "offer_paused" in props
    assert set(schema["BookedElsewhereOut"]["properties"]) == {"session", "site", "booking"}


def _queries(client, auth) -> int:
    with CaptureQueriesContext(connection) as ctx:
        calendar(client, auth)
    return len(ctx.captured_queries)


def test_the_calendar_api_costs_the_same_queries_however_many_days_are_booked_elsewhere(
        world, parent, client):  # noqa: F811
    hh, (first, second), auth = parent
    days = [WEDNESDAY + dt.timedelta(days=7 * i) for i in range(4)]  # 4 to 25 December 2024
    pairs = [(world.session(day=d), world.session(day=d, site=world.site2)) for d in days]
    world.submit(hh, [item(first, pairs[0][0])])
    _queries(client, auth)  # warms the per-process caches
    one = _queries(client, auth)
    world.submit(hh, [item(child, a) for a, _b in pairs[1:] for child in (first, second)])
    many = _queries(client, auth)
    assert one == many
    cal = calendar(client, auth)
    states = [s["state"] for child in (first, second) for s in sessions(cal, child).values()]
    assert states.count("booked_elsewhere") == 4 + 3  # 4 days, 3 of the second child
