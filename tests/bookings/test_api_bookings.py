"""The bookings JSON API: households, calendar, baskets (200 / 202 + poll / 503), cancel, agents."""

from __future__ import annotations

import json
import logging
import time

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils.dateparse import parse_datetime

from guichet.accounts.models import ApiToken
from guichet.bookings.models import AgentRole, Basket, Booking, Guardian
from tests.bookings.test_services import BEFORE, WEDNESDAY, World, paris

LATE = paris(2024, 12, 2, 9, 0)
API = "/api/v1/bookings"


def make_token(user, raw):
    ApiToken.objects.create(user=user, name="t", digest=ApiToken.hash(raw))
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def world(db):
    return World(capacity=2)


@pytest.fixture
def parent(world):
    hh, kids = world.household(children=2)
    user = get_user_model().objects.create_user("parent", password="x" * 12)
    Guardian.objects.create(organisation=world.org, household=hh, user=user)
    return hh, kids, make_token(user, "parent-token")


def post_basket(client, auth, items, key="k1", mode="partial", **extra):
    headers = dict(auth)
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(f"{API}/baskets", json.dumps({"mode": mode, "items": items}),
                       content_type="application/json", **headers, **extra)


@pytest.mark.django_db
def test_household_and_calendar(world, parent, client):
    hh, kids, auth = parent
    session = world.session()
    me = client.get(f"{API}/households/me", **auth).json()
    assert me["reference"] == hh.reference and [c["id"] for c in me["children"]] == [k.pk for k in kids]
    with time_machine.travel(BEFORE, tick=False):
        cal = client.get(f"{API}/households/me/calendar?from=2024-12-01&to=2024-12-31", **auth).json()
    cell = cal["children"][0]["sessions"][0]
    assert cell["session"] == session.pk and cell["state"] == "free"
    assert cell["booking_deadline_text"] and {u["code"] for u in cell["units"]} >= {"matin-repas"}
    bad = client.get(f"{API}/households/me/calendar?from=2024-12-31&to=2024-12-01", **auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "to"


@pytest.mark.django_db
def test_auth_required_and_other_household_is_404(world, parent, client):
    assert client.get(f"{API}/households/me").status_code == 401
    other_hh, (other_kid,) = world.household()
    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        world.submit(other_hh, [{"child": other_kid.pk, "session": session.pk, "unit": "journee"}])
    booking = Booking.objects.get()
    _, _, auth = parent
    r = client.post(f"{API}/bookings/{booking.pk}/cancel", **auth)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "not_found"
    assert client.get(f"{API}/baskets/{Basket.objects.get().pk}", **auth).status_code == 404
    # Someone else's child in a basket: refused, nothing booked for it.
    with time_machine.travel(BEFORE, tick=False):
        r = post_basket(client, auth, [{"child": other_kid.pk, "session": session.pk, "unit": "journee"}])
    assert r.status_code == 200 and r.json()["items"][0]["code"] == "not_your_child"
    assert Booking.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_basket_books_once_per_key_and_cancel_late_is_billed(world, parent, client):
    hh, kids, auth = parent
    session = world.session()
    items = [{"child": k.pk, "session": session.pk, "unit": "matin-repas"} for k in kids]
    with time_machine.travel(BEFORE, tick=False):
        r1 = post_basket(client, auth, items)
        r2 = post_basket(client, auth, items)
    assert r1.status_code == 200, r1.content
    body = r1.json()
    assert body["status"] == "done" and [i["outcome"] for i in body["items"]] == ["booked", "booked"]
    assert r2.json()["basket"] == body["basket"]
    assert Booking.objects.filter(status="booked").count() == 2 and Basket.objects.count() == 1
    with time_machine.travel(LATE, tick=False):
        c = client.post(f"{API}/bookings/{body['items'][0]['booking']}/cancel", **auth)
    assert c.status_code == 200 and c.json()["late"] and c.json()["billable"]
    assert c.json()["justification_deadline"].startswith("2024-12-12")


@pytest.mark.django_db(transaction=True)
def test_slow_answer_gives_202_then_poll(world, parent, client, settings):
    settings.GUICHET_BOOKING_ANSWER_WAIT = 0  # do not wait at all: "received", poll
    _, kids, auth = parent
    session = world.session()
    with time_machine.travel(BEFORE, tick=True):
        r = post_basket(client, auth, [{"child": kids[0].pk, "session": session.pk, "unit": "journee"}])
        assert r.status_code in (200, 202)
        if r.status_code == 202:
            data = r.json()
            assert data["status"] == "received" and r["Retry-After"]
            # A poll only reads: the process's drainer answers the basket shortly.
            deadline = time.monotonic() + 10
            while (polled := client.get(data["poll"].replace("http://testserver", ""), **auth)).status_code == 202:
                assert time.monotonic() < deadline and 1 <= int(polled["Retry-After"]) <= 10
                time.sleep(0.05)
            assert polled.status_code == 200 and polled.json()["status"] == "done"
    assert Booking.objects.filter(status="booked").count() == 1


@pytest.mark.django_db(transaction=True)
def test_overload_answers_202_fast_and_keeps_the_place_in_line(world, parent, client, settings):
    settings.GUICHET_BOOKING_CONCURRENCY = 0  # no request may wait for its answer
    _, kids, auth = parent
    session = world.session()
    items = [{"child": kids[0].pk, "session": session.pk, "unit": "journee"}]
    with time_machine.travel(BEFORE, tick=True):
        r = post_basket(client, auth, items, key="busy")
        assert r.status_code == 202 and r["Retry-After"] == "1"
        data = r.json()
        assert data["status"] == "received" and data["poll"].endswith(f"/baskets/{data['basket']}")
        assert Basket.objects.get(pk=data["basket"]).status == "received"  # received, not lost
        assert not Booking.objects.exists()
        settings.GUICHET_BOOKING_CONCURRENCY = 4
        again = post_basket(client, auth, items, key="busy")
    assert again.status_code == 200 and again.json()["basket"] == data["basket"]
    assert Booking.objects.count() == 1 and Basket.objects.count() == 1


@pytest.mark.django_db
def test_a_database_too_busy_to_take_the_request_answers_503_logged_without_error_nor_personal_data(
    world, parent, client, monkeypatch, caplog
):
    from django.db import OperationalError

    from guichet.bookings import intake

    household, kids, auth = parent
    session = world.session()

    def saturated(**kwargs):
        raise OperationalError("canceling statement due to lock timeout")

    monkeypatch.setattr(intake, "submit", saturated)
    with time_machine.travel(BEFORE, tick=True), caplog.at_level(logging.INFO):
        r = post_basket(client, auth, [{"child": kids[0].pk, "session": session.pk, "unit": "journee"}])
    assert r.status_code == 503 and r["Retry-After"] == "1" and r.json()["errors"][0]["code"] == "busy"
    # An expected answer under overload, not a server error: no ERROR in the log (Django logs
    # every 5xx at ERROR otherwise), one WARNING line, and nothing about the family.
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING] == [
        "booking API: database busy: HTTP 503"]
    messages = " ".join(rec.getMessage() for rec in caplog.records)
    assert household.email not in messages and kids[0].first_name not in messages
    assert household.display_name not in messages


@pytest.mark.django_db
def test_malformed_requests_name_the_field(world, parent, client):
    _, kids, auth = parent
    r = client.post(f"{API}/baskets", "{not json", content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY="k", **auth)
    assert r.status_code in (400, 422) and r.json()["errors"][0]["path"]
    r = post_basket(client, auth, [{"child": kids[0].pk, "session": "x", "unit": "journee"}])
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "items[0].session"
    r = post_basket(client, auth, [{"child": kids[0].pk, "session": 1, "unit": "journee"}], mode="maybe")
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "mode"
    r = post_basket(client, auth, [{"child": kids[0].pk, "session": 1, "unit": "journee"}], key=None)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "Idempotency-Key"
    assert not Basket.objects.exists()


@pytest.mark.django_db
def test_session_auth_needs_csrf(world, parent):
    hh, kids, _ = parent
    c = Client(enforce_csrf_checks=True)
    c.force_login(Guardian.objects.get(household=hh).user)
    assert c.get(f"{API}/households/me").status_code == 200
    r = post_basket(c, {}, [{"child": kids[0].pk, "session": 1, "unit": "journee"}])
    assert r.status_code in (401, 403)
    assert not Basket.objects.exists()


@pytest.mark.django_db
def test_agent_endpoints(world, parent, client):
    hh, kids, parent_auth = parent
    session = world.session()
    user = get_user_model().objects.create_user("agent", password="x" * 12)
    AgentRole.objects.create(organisation=world.org, user=user)
    auth = make_token(user, "agent-token")
    body = {"household": hh.reference, "child": kids[0].pk, "session": session.pk, "unit": "journee"}
    assert client.post(f"{API}/agent/bookings", json.dumps(body), content_type="application/json",
                       **parent_auth).status_code == 403
    with time_machine.travel(LATE, tick=False):
        r = client.post(f"{API}/agent/bookings", json.dumps(body), content_type="application/json", **auth)
        assert r.status_code == 422 and r.json()["errors"][0]["code"] == "reason_required"
        r = client.post(f"{API}/agent/bookings", json.dumps({**body, "reason": "urgence"}),
                        content_type="application/json", **auth)
    assert r.status_code == 201 and r.json()["after_deadline"]
    booking = r.json()["booking"]
    with time_machine.travel(paris(2024, 12, 4, 9, 0), tick=False):
        url = f"{API}/agent/attendance?site={world.site.pk}&date={WEDNESDAY:%Y-%m-%d}"
        r = client.post(url, json.dumps({"items": [{"booking": booking, "present": True}]}),
                        content_type="application/json", **auth)
    assert r.status_code == 200 and r.json()["rows"][0]["present"] is True
    rates = client.get(f"{API}/agent/fill-rates?activity={world.activity.pk}&from=2024-12-01&to=2024-12-31", **auth)
    assert rates.status_code == 200
    assert {(row["part"], row["booked"], row["capacity"]) for row in rates.json()} == {
        ("morning", 1, 2), ("meal", 1, 2), ("afternoon", 1, 2)}


def _received_basket(world, hh, kids, session, key="left"):
    from guichet.bookings import intake
    from guichet.common.actor import Actor

    return intake.receive(
        household=hh, items=[{"child": kids[0].pk, "session": session.pk, "unit": "journee"}], mode="partial",
        actor=Actor.system("test"), now=BEFORE, idempotency_key=key, channel="api",
    )


@pytest.mark.django_db
def test_a_poll_only_reads_then_the_drainer_answers(world, parent, client):
    from guichet.bookings import intake

    hh, kids, auth = parent
    session = world.session()
    basket = _received_basket(world, hh, kids, session)
    with time_machine.travel(BEFORE, tick=False):
        for _ in range(3):  # polling does not answer it: only the drainer does
            r = client.get(f"{API}/baskets/{basket.pk}", **auth)
            assert r.status_code == 202 and r["Retry-After"] == "1" and r.json()["status"] == "received"
    basket.refresh_from_db()
    assert basket.status == "received" and not Booking.objects.exists()
    assert intake.drain(world.org.pk) == 1
    r = client.get(f"{API}/baskets/{basket.pk}", **auth)
    assert r.status_code == 200 and r.json()["items"][0]["outcome"] == "booked"
    assert Booking.objects.filter(status="booked").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_background_drainer_answers_while_requests_only_wait_or_read(world, parent, client, settings, monkeypatch):
    import threading

    from guichet.bookings import services

    settings.GUICHET_BOOKING_ANSWER_WAIT = 0  # answer "received" at once: the page polls
    drained_by = []
    real = services.basket_drain_round

    def spy(organisation_id):
        drained_by.append(threading.current_thread().name)
        return real(organisation_id)

    monkeypatch.setattr(services, "basket_drain_round", spy)
    hh, kids, auth = parent
    session = world.session()
    items = [{"child": kids[0].pk, "session": session.pk, "unit": "journee"}]
    with time_machine.travel(BEFORE, tick=True):
        r = post_basket(client, auth, items, key="bg")
        assert r.status_code == 202 and r["Retry-After"] == "1"
        poll = r.json()["poll"].replace("http://testserver", "")
        deadline = time.monotonic() + 10
        while (polled := client.get(poll, **auth)).status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert polled.status_code == 200 and polled.json()["items"][0]["outcome"] == "booked"
        # A request that waits is answered by the drainer too (a second basket, default wait).
        settings.GUICHET_BOOKING_ANSWER_WAIT = 5
        r2 = post_basket(client, auth, [{"child": kids[1].pk, "session": session.pk, "unit": "journee"}], key="bg2")
        assert r2.status_code == 200 and r2.json()["items"][0]["outcome"] == "booked"
        again = post_basket(client, auth, items, key="bg")
    assert again.status_code == 200 and again.json()["basket"] == r.json()["basket"]
    assert drained_by and set(drained_by) == {"guichet-basket-drainer"}  # never a request thread
    assert Booking.objects.filter(status="booked").count() == 2 and Basket.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_every_waiting_slot_taken_answers_202_at_once_and_the_retry_gets_the_answer(world, parent, client, settings):
    from guichet.bookings import intake

    settings.GUICHET_BOOKING_CONCURRENCY = 1
    settings.GUICHET_BOOKING_ANSWER_WAIT = 5
    _, kids, auth = parent
    session = world.session()
    items = [{"child": kids[0].pk, "session": session.pk, "unit": "journee"}]
    slots = intake._Slots.get()  # noqa: SLF001 - another request is waiting for its answer
    assert slots.acquire(blocking=False)
    try:
        with time_machine.travel(BEFORE, tick=True):
            started = time.monotonic()
            r = post_basket(client, auth, items, key="full-house")
            elapsed = time.monotonic() - started
    finally:
        slots.release()
    assert r.status_code == 202 and r["Retry-After"] == "1" and elapsed < 1.5
    data = r.json()
    assert data["status"] == "received" and data["poll"]
    assert Basket.objects.filter(pk=data["basket"]).exists()  # recorded: its place in line is kept
    with time_machine.travel(BEFORE, tick=True):
        again = post_basket(client, auth, items, key="full-house")
    assert again.status_code == 200 and again.json()["basket"] == data["basket"]
    assert again.json()["items"][0]["outcome"] == "booked"
    assert Booking.objects.count() == 1 and Basket.objects.count() == 1


@pytest.mark.django_db
def test_a_poll_for_no_basket_of_this_household_is_404_never_500(world, parent, client):
    _, _, auth = parent
    for basket_id in (0, 999_999, 2**63, 2**70):
        r = client.get(f"{API}/baskets/{basket_id}", **auth)
        assert r.status_code == 404 and r.json()["errors"][0]["path"] == "basket"
    assert client.get(f"{API}/baskets/-1", **auth).status_code in (404, 422)


@pytest.mark.django_db
def test_a_poll_reads_the_stored_answer_as_the_post_gave_it(world, parent, client):
    hh, kids, auth = parent
    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        posted = post_basket(client, auth, [{"child": k.pk, "session": session.pk, "unit": "journee"} for k in kids])
        polled = client.get(posted.json()["poll"], **auth)
    assert posted.status_code == polled.status_code == 200
    assert posted.json() == polled.json()
    assert [i["outcome"] for i in polled.json()["items"]] == ["booked", "booked"]
    assert parse_datetime(polled.json()["received_at"]) == Basket.objects.get().received_at
