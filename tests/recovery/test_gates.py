"""Degraded mode: the status board closes or restricts the families' online functions; the
counter keeps working. Through the services, the family pages and the API."""

from __future__ import annotations

import json

import pytest
import time_machine
from django.contrib.auth import get_user_model

from guichet.bookings import services as bookings
from guichet.bookings.models import AgentRole, Basket, Booking, Guardian
from guichet.journal.models import Entry
from guichet.recovery import gates
from guichet.recovery.models import OnlineGate
from tests.bookings.test_api_bookings import make_token
from tests.bookings.test_services import BEFORE, PARENT, World, item

from .helpers import INSTEAD, catalogue, configure_gates, set_state

pytestmark = pytest.mark.django_db
API = "/api/v1/bookings"


@pytest.fixture
def world(db):
    w = World(capacity=3)
    w.procedures = catalogue(w)
    configure_gates(w, w.procedures)
    return w


@pytest.fixture
def parent(world, client):
    hh, kids = world.household(children=1)
    user = get_user_model().objects.create_user("parent", password="x" * 12)
    Guardian.objects.create(organisation=world.org, household=hh, user=user)
    client.force_login(user)
    return hh, kids[0], client, make_token(user, "parent-token")


def web_book(client, world, child, session, key="k1"):
    return client.post(f"/{world.portal.slug}/famille/panier/",
                       {"mode": "partial", "idempotency_key": key, f"item-{child.pk}-{session.pk}": "journee"})


def api_book(client, auth, child, session, key="k1"):
    return client.post(f"{API}/baskets", json.dumps({"mode": "partial", "items": [item(child, session)]}),
                       content_type="application/json", HTTP_IDEMPOTENCY_KEY=key, **auth)


# --- the rule ---------------------------------------------------------------------------------------


def test_no_incident_no_gate_means_open(world):
    g = gates.gate(organisation_id=world.org.pk, function="booking", activity=world.activity, now=BEFORE)
    assert g.state == gates.OPEN and g.message == ""
    OnlineGate.objects.all().delete()
    set_state(world, "inscriptions", "suspended")
    g = gates.gate(organisation_id=world.org.pk, function="booking", activity=world.activity, now=BEFORE)
    assert g.state == gates.OPEN  # nothing configured: the status board governs nothing


def test_suspended_online_closes_and_says_what_to_do_instead(world):
    set_state(world, "inscriptions", "suspended")
    g = gates.gate(organisation_id=world.org.pk, function="booking", activity=world.activity, now=BEFORE)
    assert g.closed and g.code == "suspended"
    assert g.instead == INSTEAD and "Mercredis" in g.message and g.status_url.endswith("/status/")
    # Only the booking procedure is suspended: cancellation and payment stay open.
    assert gates.gate(organisation_id=world.org.pk, function="cancellation", activity=world.activity,
                      now=BEFORE).open
    assert gates.payment_gate(organisation_id=world.org.pk, now=BEFORE).open


@pytest.mark.parametrize(("channel", "closed"), [("online", True), ("any", True), ("counter", False),
                                                  ("phone", False)])
def test_only_the_online_channel_counts(world, channel, closed):
    set_state(world, "inscriptions", "suspended", channel=channel)
    g = gates.gate(organisation_id=world.org.pk, function="booking", activity=world.activity, now=BEFORE)
    assert g.closed is closed


def test_disrupted_restricts_or_closes_as_configured(world):
    set_state(world, "inscriptions", "degraded")
    g = gates.gate(organisation_id=world.org.pk, function="booking", activity=world.activity, now=BEFORE)
    assert g.state == gates.RESTRICTED and g.open and g.instead == INSTEAD
    configure_gates(world, world.procedures, when_degraded="close")
    g = gates.gate(organisation_id=world.org.pk, function="booking", activity=world.activity, now=BEFORE)
    assert g.closed


def test_an_ended_or_future_incident_does_not_close(world):
    set_state(world, "inscriptions", "suspended", started="2024-11-01T08:00:00+01:00",
              ended="2024-11-10T08:00:00+01:00")
    assert gates.gate(organisation_id=world.org.pk, function="booking", activity=world.activity, now=BEFORE).open
    set_state(world, "inscriptions", "suspended", incident="demain", started="2024-12-25T08:00:00+01:00")
    assert gates.gate(organisation_id=world.org.pk, function="booking", activity=world.activity, now=BEFORE).open


def test_activity_gates_take_precedence_over_organisation_wide_ones(world):
    from guichet.recovery import services as recovery
    from tests.recovery.helpers import EDITOR

    # Booking of every activity follows "annulations" (say), the Wednesdays follow "inscriptions".
    recovery.gates_replace(organisation=world.org, actor=EDITOR, now=BEFORE, specs=[
        recovery.GateSpec("booking", world.procedures["annulations"], None),
        recovery.GateSpec("booking", world.procedures["inscriptions"], world.activity),
    ])
    set_state(world, "annulations", "suspended")
    assert gates.gate(organisation_id=world.org.pk, function="booking", activity=world.activity, now=BEFORE).open
    assert gates.gate(organisation_id=world.org.pk, function="booking", activity=None, now=BEFORE).closed


def test_gate_configuration_is_declarative_journaled_and_idempotent(world):
    before = Entry.objects.count()
    counts = configure_gates(world, world.procedures)
    assert counts == {"added": 0, "updated": 0, "removed": 0, "unchanged": 3}
    assert Entry.objects.count() == before  # nothing changed, nothing journaled
    counts = configure_gates(world, world.procedures, when_degraded="close")
    assert counts["updated"] == 3
    assert Entry.objects.filter(operation="recovery.gates.replace").count() == 2


# --- family pages and API: refused, nothing changed; the counter still books --------------------------


def test_suspended_booking_page_shows_the_message_and_refuses(world, parent):
    hh, child, client, _auth = parent
    session = world.session()
    set_state(world, "inscriptions", "suspended")
    with time_machine.travel(BEFORE, tick=False):
        page = client.get(f"/{world.portal.slug}/famille/calendrier/?mois=2024-12").content.decode()
        r = web_book(client, world, child, session)
    assert "rec-notice--closed" in page and INSTEAD in page
    assert r.status_code == 503
    body = r.content.decode()
    assert INSTEAD in body and "Mercredis" in body and 'role="alert"' in body
    assert not Basket.objects.exists() and not Booking.objects.exists()


def test_suspended_booking_api_answers_503_with_what_to_do(world, parent):
    hh, child, client, auth = parent
    session = world.session()
    set_state(world, "inscriptions", "suspended")
    entries = Entry.objects.count()
    with time_machine.travel(BEFORE, tick=False):
        r = api_book(client, auth, child, session)
    assert r.status_code == 503
    body = r.json()
    assert body["errors"][0]["code"] == "suspended" and body["errors"][0]["path"] == "items"
    assert body["instead"] == INSTEAD and body["state"] == "suspended" and body["status_page"]
    assert "Retry-After" not in r  # not "busy": retrying will not help until the board reopens it
    assert not Basket.objects.exists() and Entry.objects.count() == entries


def test_a_basket_received_before_the_suspension_is_answered_on_retry(world, parent):
    hh, child, client, auth = parent
    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        first = api_book(client, auth, child, session, key="before")
        set_state(world, "inscriptions", "suspended")
        retry = api_book(client, auth, child, session, key="before")
    assert first.status_code == 200 and retry.status_code == 200
    assert retry.json()["basket"] == first.json()["basket"] and Booking.objects.count() == 1


def test_restricted_booking_stays_open_with_the_message(world, parent):
    hh, child, client, auth = parent
    session = world.session()
    set_state(world, "inscriptions", "degraded")
    with time_machine.travel(BEFORE, tick=False):
        page = client.get(f"/{world.portal.slug}/famille/calendrier/?mois=2024-12").content.decode()
        r = api_book(client, auth, child, session)
    assert "rec-notice--restricted" in page and INSTEAD in page
    assert r.status_code == 200 and Booking.objects.filter(status="booked").count() == 1


def test_suspended_cancellation_is_refused_on_the_web_and_the_api(world, parent):
    hh, child, client, auth = parent
    session = world.session()
    booking = bookings.booking_create_by_agent(household=hh, child=child, session=session, unit="journee",
                                               actor=PARENT, now=BEFORE, reason="")
    set_state(world, "annulations", "suspended")
    with time_machine.travel(BEFORE, tick=False):
        page = client.get(f"/{world.portal.slug}/famille/reservations/{booking.pk}/annuler/").content.decode()
        web = client.post(f"/{world.portal.slug}/famille/reservations/{booking.pk}/annuler/")
        api = client.post(f"{API}/bookings/{booking.pk}/cancel", **auth)
    assert INSTEAD in page
    assert web.status_code == 503 and INSTEAD in web.content.decode()
    assert api.status_code == 503 and api.json()["errors"][0]["code"] == "suspended"
    booking.refresh_from_db()
    assert booking.status == "booked"


def test_the_counter_keeps_booking_while_online_is_suspended(world, client):
    hh, (child,) = world.household()
    session = world.session()
    user = get_user_model().objects.create_user("agent", password="x" * 12)
    AgentRole.objects.create(organisation=world.org, user=user)
    client.force_login(user)
    set_state(world, "inscriptions", "suspended")
    with time_machine.travel(BEFORE, tick=False):
        r = client.post(f"/manage/bookings/{world.portal.slug}/households/{hh.reference}/book/",
                        {"child": child.pk, "session": session.pk, "unit": "journee"})
        api = client.post(f"{API}/agent/bookings", json.dumps({"household": hh.reference, "child": child.pk,
                                                               "session": session.pk, "unit": "matin-repas"}),
                          content_type="application/json", **make_token(user, "agent-token"))
    assert r.status_code == 302
    assert Booking.objects.filter(status="booked", channel="agent").count() == 1
    assert api.status_code in (201, 422)  # the agents' API is not gated (422: already booked that day)
    assert api.json().get("errors", [{}])[0].get("code") != "suspended"


def test_suspended_online_payment_is_announced_on_the_invoices_page(world, parent):
    hh, child, client, _auth = parent
    url = f"/{world.portal.slug}/famille/factures/"
    with time_machine.travel(BEFORE, tick=False):
        before = client.get(url).content.decode()
        set_state(world, "paiement", "suspended")
        after = client.get(url).content.decode()
    assert "rec-notice" not in before
    assert "rec-notice--closed" in after and INSTEAD in after
    assert "Online payment" in after or "paiement en ligne" in after.lower()
