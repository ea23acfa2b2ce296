"""The configured gates are kept in memory a few seconds (``GATES_TTL``): the booking path costs
no query when nothing is configured, and a change still takes effect within those seconds
(at once in the process that made it; status-board changes at once everywhere)."""

from __future__ import annotations

import pytest

from guichet.recovery import gates
from guichet.recovery.models import OnlineGate
from tests.bookings.test_services import BEFORE, World, item

from .helpers import catalogue, configure_gates, set_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(gates, "_clock", lambda: now[0])
    return now


@pytest.fixture
def world(db):
    w = World(capacity=3)
    w.procedures = catalogue(w)
    w.wednesday = w.session()
    return w


def closed(world, household, child):
    return gates.basket_gate(household=household, items=[item(child, world.wednesday)], now=BEFORE)


def test_nothing_configured_costs_no_query_once_cached(world, django_assert_num_queries):
    hh, kids = world.household(children=1)
    assert closed(world, hh, kids[0]) is None  # fills the cache (one query per function)
    assert gates.notices(organisation_id=world.org.pk, functions=["booking", "cancellation"], now=BEFORE) == []
    with django_assert_num_queries(0):
        assert closed(world, hh, kids[0]) is None
        assert gates.notices(organisation_id=world.org.pk, functions=["booking", "cancellation"], now=BEFORE) == []


def test_a_gate_added_by_another_process_takes_effect_within_the_ttl(world, clock):
    hh, kids = world.household(children=1)
    set_state(world, "inscriptions", "suspended")
    assert closed(world, hh, kids[0]) is None  # no gate: the board governs nothing (and it is cached)
    # Another process (the admin, the CLI) configures the gate: no signal reaches this process.
    OnlineGate.objects.bulk_create([OnlineGate(organisation=world.org, function="booking", activity=world.activity,
                                               procedure=world.procedures["inscriptions"])])
    clock[0] += gates.GATES_TTL - 0.5
    assert closed(world, hh, kids[0]) is None  # still the cached answer, within the documented delay
    clock[0] += 1
    g = closed(world, hh, kids[0])
    assert g is not None and g.closed  # at most GATES_TTL seconds later, the booking is refused


def test_a_gate_configured_in_this_process_takes_effect_at_once(world, clock):
    hh, kids = world.household(children=1)
    set_state(world, "inscriptions", "suspended")
    assert closed(world, hh, kids[0]) is None
    configure_gates(world, world.procedures)
    assert closed(world, hh, kids[0]).closed
    OnlineGate.objects.filter(function="booking").delete()
    assert closed(world, hh, kids[0]) is None


def test_a_status_change_takes_effect_at_once_when_gates_are_configured(world, clock):
    hh, kids = world.household(children=1)
    configure_gates(world, world.procedures)
    assert closed(world, hh, kids[0]) is None  # gate configured, nothing suspended (gates now cached)
    set_state(world, "inscriptions", "suspended")
    assert closed(world, hh, kids[0]).closed  # the status rows are never cached
    set_state(world, "inscriptions", "normal")
    assert closed(world, hh, kids[0]) is None
