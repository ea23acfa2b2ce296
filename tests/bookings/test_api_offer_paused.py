"""A waiting-list offer paused while online booking is suspended says so in the calendar API
(``offer_paused``), and ``guichet bookings expire-offers`` reports the offers it paused and
resumed besides those it expired. Frozen time."""

from __future__ import annotations

import io

import pytest
import time_machine
from django.core.management import call_command

from tests.bookings.test_services import paris
from tests.bookings.test_waitlist_offers_suspended import REOPENED, SUSPENDED, offered
from tests.recovery import test_gates
from tests.recovery.helpers import set_state

pytestmark = pytest.mark.django_db
world, parent = test_gates.world, test_gates.parent  # a town whose booking is gated by the board
API = "/api/v1/bookings"


def offer_cell(client, auth, entry, now) -> dict:
    with time_machine.travel(now, tick=False):
        r = client.get(f"{API}/households/me/calendar?from=2024-11-20&to=2024-12-31", **auth)
    assert r.status_code == 200
    (cell,) = [s for c in r.json()["children"] for s in c["sessions"] if s["waitlist"] == entry.pk]
    return cell


def expire_offers(now) -> str:
    out = io.StringIO()
    with time_machine.travel(now, tick=False):
        call_command("bookings", "expire-offers", stdout=out)
    return out.getvalue().strip()


def test_the_api_and_the_command_tell_a_paused_then_resumed_offer(world, parent, client):
    hh, child, _client, auth = parent
    _session, entry = offered(world, hh, child)
    cell = offer_cell(client, auth, entry, paris(2024, 11, 20, 11, 0))
    assert cell["state"] == "offered" and cell["offer_paused"] is False
    assert cell["offer_expires_at"] is not None
    set_state(world, "inscriptions", "suspended", started=SUSPENDED, ended=REOPENED)
    assert expire_offers(paris(2024, 11, 21, 9, 0)) == (
        "0 offer(s) expired, 1 paused (online booking suspended), 0 resumed (online booking reopened)")
    cell = offer_cell(client, auth, entry, paris(2024, 11, 21, 9, 5))
    assert cell["state"] == "offered" and cell["offer_paused"] is True
    # Already paused: the next run while still suspended changes nothing.
    assert expire_offers(paris(2024, 11, 22, 9, 0)).startswith("0 offer(s) expired, 0 paused")
    assert expire_offers(paris(2024, 11, 24, 9, 0)) == (
        "0 offer(s) expired, 0 paused (online booking suspended), 1 resumed (online booking reopened)")
    cell = offer_cell(client, auth, entry, paris(2024, 11, 24, 9, 5))
    assert cell["offer_paused"] is False
    assert cell["offer_expires_at"].startswith("2024-11-25T")
    assert expire_offers(paris(2024, 11, 25, 10, 1)).startswith("1 offer(s) expired, 0 paused")


def test_a_free_day_is_never_paused(world, parent, client):
    hh, _child, _client, auth = parent
    world.session()
    with time_machine.travel(paris(2024, 11, 20, 11, 0), tick=False):
        cal = client.get(f"{API}/households/me/calendar?from=2024-11-20&to=2024-12-31", **auth).json()
    assert [s["offer_paused"] for c in cal["children"] for s in c["sessions"]] == [False]
