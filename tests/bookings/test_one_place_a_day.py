"""A child is in one place at a time: at most one active booking per child, activity and day,
whatever the site. Every way in is refused with ``already_booked_elsewhere`` (or
``duplicate_day`` inside one request), nothing taken, nothing raised: a basket (reference and
set-based paths), an agent, a waiting-list offer, a paper form, the API. The database index is
the backstop (see test_concurrency.py for the race)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from guichet.bookings import services
from guichet.bookings.models import (
    Activity,
    AgentRole,
    Booking,
    Guardian,
    Session,
    SessionPart,
    Site,
    Unit,
    WaitlistEntry,
)
from guichet.bookings.services import BookingError

from .test_api_bookings import make_token
from .test_services import (
    AGENT,
    BEFORE,
    PARENT,
    WEDNESDAY,
    World,
    assert_ledger_consistent,
    item,
    outcomes,
)

pytestmark = pytest.mark.django_db
API = "/api/v1/bookings"


@pytest.fixture(params=[True, False], ids=["batch", "per-item"])
def world(request, db, monkeypatch):
    monkeypatch.setattr(services, "BATCH_ALLOCATION", request.param)
    w = World(capacity=2)
    w.site2 = Site.objects.create(organisation=w.org, slug="centre-2", name="Centre 2")
    return w


def booked_parts(session) -> list[int]:
    return sorted(session.parts.values_list("booked", flat=True))


def test_a_booking_carries_its_session_activity_and_date(world):
    s = world.session()
    h, (c,) = world.household()
    world.submit(h, [item(c, s)])
    booking = Booking.objects.get()
    assert (booking.activity_id, booking.date) == (world.activity.pk, WEDNESDAY)


def test_a_basket_for_another_centre_the_same_day_is_refused_and_takes_nothing(world):
    a, b = world.session(), world.session(site=world.site2)
    h, (c,) = world.household()
    world.submit(h, [item(c, a)])
    for mode in ("partial", "all_or_nothing"):
        basket = world.submit(h, [item(c, b)], mode=mode)
        assert outcomes(basket) == [("refused", "already_booked_elsewhere")]
        assert "déjà inscrit dans un autre centre" in basket.result["items"][0]["message"]
    assert booked_parts(b) == [0, 0, 0]
    assert not WaitlistEntry.objects.exists()  # not put on the other centre's waiting list either
    assert Booking.objects.filter(child=c, status="booked").count() == 1
    assert_ledger_consistent()


def test_the_same_centre_again_is_still_already_booked(world):
    s = world.session()
    h, (c,) = world.household()
    world.submit(h, [item(c, s)])
    assert outcomes(world.submit(h, [item(c, s, "matin-repas")])) == [("refused", "already_booked")]


def test_two_centres_the_same_day_in_one_request_keep_the_first(world):
    a, b = world.session(), world.session(site=world.site2)
    h, (c,) = world.household()
    basket = world.submit(h, [item(c, a), item(c, b)])
    assert outcomes(basket) == [("booked", "booked"), ("refused", "duplicate_day")]
    basket = world.submit(h, [item(c, a), item(c, b)], mode="all_or_nothing")
    assert outcomes(basket)[1] == ("refused", "duplicate_day")
    assert Booking.objects.filter(child=c, status="booked").count() == 1
    assert_ledger_consistent()


def test_other_days_other_children_and_other_activities_are_not_blocked(world):
    a = world.session()
    b_next_week = world.session(day=WEDNESDAY.replace(day=11), site=world.site2)
    h, (c, d) = world.household(children=2)
    catering = Activity.objects.create(
        organisation=world.org, slug="cantine", name="Cantine", kind="catering", parts=["meal"],
        booking_rule="sunday before at 23:59", cancellation_rule="sunday of previous week at 23:59",
    )
    Unit.objects.create(organisation=world.org, activity=catering, code="repas", name="Repas", parts=["meal"])
    lunch = Session.objects.create(organisation=world.org, activity=catering, site=world.site2, date=WEDNESDAY)
    SessionPart.objects.create(organisation=world.org, session=lunch, part="meal", capacity=5)
    # c: the leisure centre's morning + meal, school catering the same day, another centre next
    # week; d (a sibling): the same centre and day as c.
    basket = world.submit(h, [item(c, a, "matin-repas"), item(c, lunch, "repas"), item(c, b_next_week), item(d, a)])
    assert [o for o, _code in outcomes(basket)] == ["booked"] * 4


def test_after_cancelling_the_child_can_book_the_other_centre(world):
    a, b = world.session(), world.session(site=world.site2)
    h, (c,) = world.household()
    first = world.submit(h, [item(c, a)])
    services.booking_cancel(booking=Booking.objects.get(pk=first.result["items"][0]["booking"]), actor=PARENT,
                            now=BEFORE)
    assert outcomes(world.submit(h, [item(c, b)])) == [("booked", "booked")]


def test_a_booking_made_meanwhile_outside_the_queue_is_a_refusal_not_an_error(world, monkeypatch):
    """The check saw nothing, then an agent booked the other centre before the insert: the unique
    index refuses the insert; the family reads ``already_booked_elsewhere``, places given back."""
    a, b = world.session(), world.session(site=world.site2)
    h, (c,) = world.household()
    services.booking_create_by_agent(household=h, child=c, session=a, unit="journee", actor=AGENT, now=BEFORE,
                                     reason="")
    real, calls = services._booked_that_day, []  # noqa: SLF001

    def stale_check(child_id, session):  # the precheck ran before the agent's booking
        calls.append(session)
        return None if len(calls) == 1 else real(child_id, session)

    monkeypatch.setattr(services, "BATCH_ALLOCATION", False)  # the batch falls back to this path
    monkeypatch.setattr(services, "_booked_that_day", stale_check)
    for mode in ("partial", "all_or_nothing"):
        calls.clear()
        basket = world.submit(h, [item(c, b)], mode=mode)
        assert outcomes(basket) == [("refused", "already_booked_elsewhere")]
    assert booked_parts(b) == [0, 0, 0]
    assert_ledger_consistent()


def test_the_database_refuses_a_second_active_booking_the_same_day():
    w = World()
    a, b = w.session(), w.session(site=Site.objects.create(organisation=w.org, slug="c2", name="C2"))
    h, (c,) = w.household()
    unit = w.units["journee"]
    Booking.objects.create(organisation=w.org, household=h, child=c, session=a, unit=unit, booked_at=BEFORE,
                           actor_ref="t")
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.create(organisation=w.org, household=h, child=c, session=b, unit=unit, booked_at=BEFORE,
                               actor_ref="t")
    # A cancelled booking does not count.
    Booking.objects.filter(session=a).update(status="cancelled")
    Booking.objects.create(organisation=w.org, household=h, child=c, session=b, unit=unit, booked_at=BEFORE,
                           actor_ref="t")


# --- agents ----------------------------------------------------------------------------------------


def test_an_agent_cannot_book_a_child_at_a_second_centre_the_same_day(world):
    a, b = world.session(), world.session(site=world.site2)
    h, (c,) = world.household()
    services.booking_create_by_agent(household=h, child=c, session=a, unit="journee", actor=AGENT, now=BEFORE,
                                     reason="")
    with pytest.raises(BookingError) as exc:
        services.booking_create_by_agent(household=h, child=c, session=b, unit="journee", actor=AGENT, now=BEFORE,
                                         reason="")
    assert exc.value.code == "already_booked_elsewhere" and exc.value.field == "session"
    assert booked_parts(b) == [0, 0, 0]


def test_the_agent_api_answers_422_with_the_code(world, client):
    a, b = world.session(), world.session(site=world.site2)
    h, (c,) = world.household()
    services.booking_create_by_agent(household=h, child=c, session=a, unit="journee", actor=AGENT, now=BEFORE,
                                     reason="")
    user = get_user_model().objects.create_user("agent", password="x" * 12)
    AgentRole.objects.create(organisation=world.org, user=user)
    auth = make_token(user, "agent-token")
    response = client.post(f"{API}/agent/bookings", json.dumps({
        "household": h.reference, "child": c.pk, "session": b.pk, "unit": "journee", "reason": "urgence"}),
        content_type="application/json", **auth)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "already_booked_elsewhere"


def test_the_family_api_reports_the_code_per_day(world, client):
    a, b = world.session(), world.session(site=world.site2)
    h, (c,) = world.household()
    user = get_user_model().objects.create_user("parent", password="x" * 12)
    Guardian.objects.create(organisation=world.org, household=h, user=user)
    client.force_login(user)
    world.submit(h, [item(c, a)])
    response = client.post(f"{API}/baskets", json.dumps({"mode": "partial", "items": [item(c, b)]}),
                           content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-api")
    assert response.status_code == 200
    assert [(i["outcome"], i["code"]) for i in response.json()["items"]] == [("refused", "already_booked_elsewhere")]


# --- waiting-list offers -----------------------------------------------------------------------------


def test_an_offer_for_a_child_booked_elsewhere_that_day_is_refused_until_the_other_is_cancelled(world):
    a, b = world.session(capacity=1), world.session(site=world.site2)
    h0, (c0,) = world.household()
    first = world.submit(h0, [item(c0, a)])
    h, (c,) = world.household()
    assert outcomes(world.submit(h, [item(c, a)])) == [("waitlisted", "full")]
    elsewhere = services.booking_create_by_agent(household=h, child=c, session=b, unit="journee", actor=AGENT,
                                                 now=BEFORE, reason="")
    services.booking_cancel(booking=Booking.objects.get(pk=first.result["items"][0]["booking"]), actor=PARENT,
                            now=BEFORE)
    entry = WaitlistEntry.objects.get(child=c, session=a)
    assert entry.status == "offered"
    with pytest.raises(BookingError) as exc:
        services.waitlist_accept(entry=entry, actor=PARENT, now=BEFORE)
    assert exc.value.code == "already_booked_elsewhere" and "annulez d’abord" in exc.value.message
    entry.refresh_from_db()
    assert entry.status == "offered"  # still theirs to take or decline
    assert_ledger_consistent()
    services.booking_cancel(booking=elsewhere, actor=PARENT, now=BEFORE)
    booking = services.waitlist_accept(entry=entry, actor=PARENT, now=BEFORE)
    assert (booking.session, booking.activity_id, booking.date) == (a, world.activity.pk, WEDNESDAY)
    assert_ledger_consistent()


# --- paper forms ---------------------------------------------------------------------------------------


def test_a_paper_form_for_a_child_booked_elsewhere_that_day_is_refused_and_recorded(world):
    from guichet.recovery import services as paper

    a, b = world.session(), world.session(site=world.site2)
    h, (c,) = world.household()
    world.submit(h, [item(c, a)])
    result = paper.paper_booking_record(organisation=world.org, series="A", number=1, received_at=BEFORE,
                                        household=h, items=[item(c, b)], actor=AGENT, now=BEFORE)
    assert result.booked == 0
    assert result.basket.result["items"][0]["code"] == "already_booked_elsewhere"
    assert booked_parts(b) == [0, 0, 0]


# --- the family's page ------------------------------------------------------------------------------


def test_the_family_page_says_in_french_why_the_second_centre_is_refused(world, client):
    import time_machine

    from .test_views_family import Family, book

    a, b = world.session(), world.session(site=world.site2)
    family = Family(world, client)
    with time_machine.travel(BEFORE, tick=False):
        assert book(family, a, unit="journee", key="k-a").status_code == 302
        response = book(family, b, unit="journee", key="k-b")
        page = client.get(response["Location"]).content.decode()
    assert "Cet enfant est déjà inscrit dans un autre centre ce jour-là." in page
    assert Booking.objects.filter(status="booked").count() == 1
