"""Booking services: capacity, deadlines, windows, residents first, idempotency, basket modes,
late cancellation and justification, waiting lists and offers, agent bookings."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count, Q

from guichet.bookings import selectors, services
from guichet.bookings.models import (
    Activity,
    Basket,
    Booking,
    Child,
    Household,
    RegistrationWindow,
    Session,
    SessionPart,
    Site,
    Unit,
    WaitlistEntry,
)
from guichet.bookings.services import BookingError
from guichet.catalog.models import Organisation, Portal
from guichet.common.actor import Actor
from guichet.journal.models import Entry

PARIS = ZoneInfo("Europe/Paris")
PARENT = Actor(ref="user:1", channel="web")
AGENT = Actor(ref="user:99", channel="counter")
WEDNESDAY = dt.date(2024, 12, 4)  # booking deadline: Sunday 1 December 23:59


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


BEFORE = paris(2024, 11, 20, 10, 0)


class World:
    """A town with one Wednesday activity (morning/meal/afternoon) and helpers."""

    def __init__(self, *, capacity: int = 2, waitlist_mode: str = "automatic", parts=("morning", "meal", "afternoon")):
        self.portal = Portal.objects.create(slug="ville-test", name="Ville test")
        self.org = Organisation.objects.create(portal=self.portal, slug="ville", name="Ville")
        self.activity = Activity.objects.create(
            organisation=self.org, slug="mercredis", name="Mercredis", kind="leisure_wednesday", parts=list(parts),
            booking_rule="sunday before at 23:59", cancellation_rule="sunday of previous week at 23:59",
            justification_days=8, waitlist_mode=waitlist_mode, offer_hours=48,
        )
        self.units = {}
        for i, (code, unit_parts) in enumerate(
            [("journee", list(parts)), ("matin-repas", ["morning", "meal"]), ("repas-apres-midi", ["meal", "afternoon"])]
        ):
            self.units[code] = Unit.objects.create(
                organisation=self.org, activity=self.activity, code=code, name=code, parts=unit_parts, position=i
            )
        self.site = Site.objects.create(organisation=self.org, slug="centre", name="Centre")
        self.capacity = capacity
        self.households = 0

    def session(self, day: dt.date = WEDNESDAY, capacity: int | None = None, site=None, **caps) -> Session:
        s = Session.objects.create(organisation=self.org, activity=self.activity, site=site or self.site, date=day)
        for part in self.activity.parts:
            SessionPart.objects.create(
                organisation=self.org, session=s, part=part, capacity=caps.get(part, self.capacity if capacity is None else capacity)
            )
        return s

    def household(self, *, resident: bool = True, children: int = 1) -> tuple[Household, list[Child]]:
        self.households += 1
        h = Household.objects.create(
            organisation=self.org, reference=f"F{self.households:04d}", display_name=f"Famille {self.households}",
            resident=resident, email=f"famille{self.households}@example.org", created_at=BEFORE,
        )
        kids = [
            Child.objects.create(organisation=self.org, household=h, first_name=f"Enfant{i}",
                                 birth_date=dt.date(2016, 1, 1 + i))
            for i in range(children)
        ]
        return h, kids

    def submit(self, household, items, *, mode="partial", now=BEFORE, key=None):
        self.keys = getattr(self, "keys", 0) + 1
        return services.basket_submit(
            household=household, items=items, mode=mode, actor=PARENT, now=now,
            idempotency_key=key or f"key-{self.keys}",
        )


def item(child, session, unit="journee"):
    return {"child": child.pk, "session": session.pk, "unit": unit}


def outcomes(basket):
    return [(i["outcome"], i["code"]) for i in basket.result["items"]]


def assert_ledger_consistent():
    """booked == active bookings + held offers, for every part; never above capacity."""
    for part in SessionPart.objects.all():
        bookings = Booking.objects.filter(session=part.session, status="booked")
        offers = WaitlistEntry.objects.filter(session=part.session, status="offered")
        expected = sum(1 for b in bookings.select_related("unit") if part.part in b.unit.parts) + sum(
            1 for o in offers.select_related("unit") if part.part in o.unit.parts
        )
        assert part.booked == expected, part
        assert part.booked <= part.capacity


@pytest.fixture
def world(db):
    return World()


# --- booking and capacity ---------------------------------------------------------------------------


def test_a_basket_books_and_takes_one_place_per_part(world):
    s = world.session()
    h, (c,) = world.household()
    basket = world.submit(h, [item(c, s, "matin-repas")])
    assert basket.status == Basket.Status.DONE
    assert outcomes(basket) == [("booked", "booked")]
    booking = Booking.objects.get(pk=basket.result["items"][0]["booking"])
    assert booking.unit.code == "matin-repas" and booking.basket == basket
    assert dict(s.parts.values_list("part", "booked")) == {"morning": 1, "meal": 1, "afternoon": 0}
    assert selectors.free_places(s) == {"journee": 1, "matin-repas": 1, "repas-apres-midi": 1}
    assert Entry.objects.filter(operation="bookings.basket.answer").count() == 1
    assert_ledger_consistent()


def test_full_session_waitlists_in_partial_mode_in_receipt_order(world):
    s = world.session(capacity=1)
    families = [world.household() for _ in range(3)]
    baskets = [world.submit(h, [item(c, s)]) for h, (c,) in families]
    assert outcomes(baskets[0]) == [("booked", "booked")]
    assert outcomes(baskets[1]) == [("waitlisted", "full")]
    assert outcomes(baskets[2]) == [("waitlisted", "full")]
    assert [b.result["items"][0]["position"] for b in baskets[1:]] == [1, 2]
    assert "position 2" in baskets[2].result["items"][0]["message"]
    assert_ledger_consistent()


def test_a_unit_whose_second_part_is_full_takes_nothing(world):
    s = world.session(capacity=2, afternoon=0)
    h, (c,) = world.household()
    basket = world.submit(h, [item(c, s, "journee")], mode="all_or_nothing")
    assert outcomes(basket) == [("refused", "full")]
    assert dict(s.parts.values_list("part", "booked")) == {"morning": 0, "meal": 0, "afternoon": 0}
    basket = world.submit(h, [item(c, s, "matin-repas")])
    assert outcomes(basket) == [("booked", "booked")]


def test_all_or_nothing_books_nothing_when_one_day_is_full(world):
    free = world.session(WEDNESDAY)
    full = world.session(WEDNESDAY + dt.timedelta(days=7), capacity=0)
    h, (c,) = world.household()
    basket = world.submit(h, [item(c, free), item(c, full)], mode="all_or_nothing")
    assert outcomes(basket) == [("refused", "basket_incomplete"), ("refused", "full")]
    assert not Booking.objects.exists() and not WaitlistEntry.objects.exists()
    assert free.parts.filter(booked__gt=0).count() == 0


def test_all_or_nothing_refuses_all_when_one_day_is_past_its_deadline(world):
    ok = world.session(WEDNESDAY + dt.timedelta(days=14))
    late = world.session(WEDNESDAY)
    h, (c,) = world.household()
    basket = world.submit(h, [item(c, ok), item(c, late)], mode="all_or_nothing", now=paris(2024, 12, 2, 8, 0))
    assert outcomes(basket) == [("refused", "basket_incomplete"), ("refused", "deadline_passed")]
    assert not Booking.objects.exists()


def test_partial_books_what_is_free_and_waitlists_the_rest(world):
    free = world.session(WEDNESDAY)
    full = world.session(WEDNESDAY + dt.timedelta(days=7), capacity=0)
    h, (c1, c2) = world.household(children=2)
    basket = world.submit(h, [item(c1, free), item(c2, free), item(c1, full)], mode="partial")
    assert outcomes(basket) == [("booked", "booked"), ("booked", "booked"), ("waitlisted", "full")]
    assert WaitlistEntry.objects.get().basket == basket


def test_deadline_refuses_with_the_deadline_in_words(world):
    s = world.session()
    h, (c,) = world.household()
    basket = world.submit(h, [item(c, s)], now=paris(2024, 12, 1, 23, 59, 30))
    assert outcomes(basket) == [("booked", "booked")]
    h2, (c2,) = world.household()
    basket = world.submit(h2, [item(c2, s)], now=paris(2024, 12, 2, 0, 0))
    assert outcomes(basket) == [("refused", "deadline_passed")]
    message = basket.result["items"][0]["message"]
    assert "December" in message or "décembre" in message
    assert "23" in message and "1" in message


def test_errors_on_items_are_refusals_naming_the_reason(world):
    s = world.session()
    closed = world.session(WEDNESDAY + dt.timedelta(days=7))
    other_day = world.session(WEDNESDAY + dt.timedelta(days=14))
    Session.objects.filter(pk=closed.pk).update(closed=True)
    h, (c,) = world.household()
    _other, (stranger,) = world.household()
    world.submit(h, [item(c, s)])
    basket = world.submit(h, [
        item(c, s), item(stranger, s), item(c, closed), {"child": c.pk, "session": 999999, "unit": "journee"},
        {"child": c.pk, "session": other_day.pk, "unit": "piscine"},
    ])
    assert [code for _o, code in outcomes(basket)] == [
        "already_booked", "not_your_child", "session_closed", "unknown_session", "unit_not_offered",
    ]
    assert Booking.objects.count() == 1


def test_bad_input_raises_a_booking_error_naming_the_field(world):
    h, _ = world.household()
    with pytest.raises(BookingError) as e:
        world.submit(h, [])
    assert e.value.field == "items"
    with pytest.raises(BookingError) as e:
        world.submit(h, [{"child": "x"}])
    assert e.value.field == "items[0]"
    with pytest.raises(BookingError) as e:
        world.submit(h, [{"child": 1, "session": 1, "unit": "journee"}], mode="some")
    assert e.value.field == "mode"
    with pytest.raises(BookingError) as e:
        services.basket_submit(household=h, items=[{"child": 1, "session": 1, "unit": "x"}], mode="partial",
                               actor=PARENT, now=BEFORE, idempotency_key="")
    assert e.value.field == "idempotency_key"
    assert not Basket.objects.exists()


def test_the_same_idempotency_key_books_once(world):
    s = world.session()
    h, (c,) = world.household()
    first = world.submit(h, [item(c, s)], key="double-click")
    again = world.submit(h, [item(c, s)], key="double-click")
    assert again.pk == first.pk and again.result == first.result
    assert Booking.objects.count() == 1 and Basket.objects.count() == 1
    assert s.parts.get(part="morning").booked == 1


def test_a_duplicate_day_in_one_basket_is_refused_once(world):
    s = world.session()
    h, (c,) = world.household()
    basket = world.submit(h, [item(c, s), item(c, s, "matin-repas")])
    assert outcomes(basket) == [("booked", "booked"), ("refused", "duplicate")]


# --- registration windows ---------------------------------------------------------------------------


def _window(world, *, residents_open_at=None, closes_at=None):
    return RegistrationWindow.objects.create(
        organisation=world.org, activity=world.activity, first_date=dt.date(2024, 12, 1),
        last_date=dt.date(2024, 12, 31), opens_at=paris(2024, 11, 15, 12, 30),
        residents_open_at=residents_open_at, closes_at=closes_at,
    )


def test_window_not_open_refuses_with_the_opening_time(world):
    _window(world)
    s = world.session()
    h, (c,) = world.household()
    basket = world.submit(h, [item(c, s)], now=paris(2024, 11, 15, 12, 29, 59))
    assert outcomes(basket) == [("refused", "window_not_open")]
    assert "12:30" in basket.result["items"][0]["message"] or "12 h 30" in basket.result["items"][0]["message"]
    basket = world.submit(h, [item(c, s)], now=paris(2024, 11, 15, 12, 30))
    assert outcomes(basket) == [("booked", "booked")]


def test_residents_first(world):
    _window(world, residents_open_at=paris(2024, 11, 13, 12, 30))
    s = world.session()
    resident, (rc,) = world.household(resident=True)
    outsider, (oc,) = world.household(resident=False)
    at = paris(2024, 11, 14, 9, 0)
    assert outcomes(world.submit(resident, [item(rc, s)], now=at)) == [("booked", "booked")]
    assert outcomes(world.submit(outsider, [item(oc, s)], now=at)) == [("refused", "window_not_open")]
    assert outcomes(world.submit(outsider, [item(oc, s)], now=paris(2024, 11, 15, 12, 30))) == [("booked", "booked")]


def test_window_closed(world):
    _window(world, closes_at=paris(2024, 11, 18, 18, 0))
    s = world.session()
    h, (c,) = world.household()
    assert outcomes(world.submit(h, [item(c, s)], now=paris(2024, 11, 19, 9, 0))) == [("refused", "window_closed")]


# --- cancellation, billing, justification -------------------------------------------------------------


def _book(world, s, unit="journee", now=BEFORE):
    h, (c,) = world.household()
    basket = world.submit(h, [item(c, s, unit)], now=now)
    return Booking.objects.get(pk=basket.result["items"][0]["booking"])


def test_cancel_in_time_is_free_and_gives_the_place_back(world):
    s = world.session()
    booking = _book(world, s)
    booking = services.booking_cancel(booking=booking, actor=PARENT, now=paris(2024, 12, 1, 23, 59))
    assert booking.status == "cancelled" and not booking.late
    assert not selectors.billable(booking, paris(2024, 12, 20, 0, 0))
    assert s.parts.filter(booked__gt=0).count() == 0
    with pytest.raises(BookingError) as e:
        services.booking_cancel(booking=booking, actor=PARENT, now=paris(2024, 12, 2, 0, 0))
    assert e.value.code == "not_booked"


def test_late_cancellation_is_billable_unless_justified_in_time(world):
    s = world.session()
    late_at = paris(2024, 12, 3, 9, 0)
    b1 = services.booking_cancel(booking=_book(world, s), actor=PARENT, now=late_at)
    b2 = services.booking_cancel(booking=_book(world, s), actor=PARENT, now=late_at)
    assert b1.late and b2.late
    assert selectors.billable(b1, late_at)
    doc = SimpleUploadedFile("certificat.pdf", b"%PDF-1.4 test", content_type="application/pdf")
    services.justification_record(booking=b1, kind="medical", document=doc, actor=PARENT,
                                  now=paris(2024, 12, 12, 23, 0))  # session + 8 days
    assert not selectors.billable(b1, paris(2024, 12, 20))
    with pytest.raises(BookingError) as e:
        services.justification_record(booking=b2, kind="medical", document=None, actor=PARENT,
                                      now=paris(2024, 12, 13, 0, 0, 1))
    assert e.value.code == "justification_too_late" and e.value.field == "document"
    assert selectors.billable(b2, paris(2024, 12, 20))
    with pytest.raises(BookingError) as e:
        services.justification_record(booking=b2, kind="poem", document=None, actor=PARENT, now=late_at)
    assert e.value.field == "kind"


def test_a_booked_day_is_billable_and_an_absence_justified_in_time_is_not(world):
    s = world.session()
    b = _book(world, s)
    assert selectors.billable(b, BEFORE)
    with pytest.raises(BookingError):
        services.attendance_record(booking=b, present=False, actor=AGENT, now=paris(2024, 12, 3, 9, 0))
    services.attendance_record(booking=b, present=False, actor=AGENT, now=paris(2024, 12, 4, 9, 0))
    b.refresh_from_db()
    assert selectors.billable(b, paris(2024, 12, 4, 10, 0))
    services.justification_record(booking=b, kind="serious_event", document=None, actor=AGENT,
                                  now=paris(2024, 12, 5, 9, 0))
    b = Booking.objects.get(pk=b.pk)
    assert not selectors.billable(b, paris(2024, 12, 20))


# --- waiting lists ----------------------------------------------------------------------------------


def test_automatic_mode_offers_a_freed_place_to_the_first_waiting_and_holds_it(world, django_capture_on_commit_callbacks):
    s = world.session(capacity=1)
    booking = _book(world, s)
    (h2, (c2,)), (h3, (c3,)) = world.household(), world.household()
    world.submit(h2, [item(c2, s)])
    world.submit(h3, [item(c3, s)])
    with django_capture_on_commit_callbacks() as callbacks:
        services.booking_cancel(booking=booking, actor=PARENT, now=paris(2024, 11, 21, 9, 0))
    first = WaitlistEntry.objects.get(child=c2)
    assert first.status == "offered"
    assert first.offer_expires_at == paris(2024, 11, 23, 9, 0)
    assert len(callbacks) == 1
    assert WaitlistEntry.objects.get(child=c3).status == "waiting"
    # The held place is not free for a newcomer.
    h4, (c4,) = world.household()
    assert outcomes(world.submit(h4, [item(c4, s)])) == [("waitlisted", "full")]
    assert_ledger_consistent()
    booking = services.waitlist_accept(entry=first, actor=PARENT, now=paris(2024, 11, 22, 9, 0))
    assert booking.status == "booked" and booking.child == c2
    assert s.parts.get(part="morning").booked == 1
    assert_ledger_consistent()


def test_offer_expiry_goes_to_the_next(world):
    s = world.session(capacity=1)
    booking = _book(world, s)
    (h2, (c2,)), (h3, (c3,)) = world.household(), world.household()
    world.submit(h2, [item(c2, s)])
    world.submit(h3, [item(c3, s)])
    services.booking_cancel(booking=booking, actor=PARENT, now=paris(2024, 11, 21, 9, 0))
    assert services.waitlist_expire_offers(now=paris(2024, 11, 23, 9, 0), actor=Actor.system()).expired == 0
    assert services.waitlist_expire_offers(now=paris(2024, 11, 23, 9, 1), actor=Actor.system()).expired == 1
    assert WaitlistEntry.objects.get(child=c2).status == "expired"
    nxt = WaitlistEntry.objects.get(child=c3)
    assert nxt.status == "offered"
    with pytest.raises(BookingError) as e:
        services.waitlist_accept(entry=WaitlistEntry.objects.get(child=c2), actor=PARENT, now=paris(2024, 11, 23, 10))
    assert e.value.code == "not_offered"
    services.waitlist_decline(entry=nxt, actor=PARENT, now=paris(2024, 11, 23, 10, 0))
    assert WaitlistEntry.objects.get(child=c3).status == "declined"
    assert s.parts.get(part="morning").booked == 0
    assert_ledger_consistent()


def test_an_expired_offer_cannot_be_accepted(world):
    s = world.session(capacity=1)
    booking = _book(world, s)
    h2, (c2,) = world.household()
    world.submit(h2, [item(c2, s)])
    services.booking_cancel(booking=booking, actor=PARENT, now=paris(2024, 11, 21, 9, 0))
    entry = WaitlistEntry.objects.get(child=c2)
    with pytest.raises(BookingError) as e:
        services.waitlist_accept(entry=entry, actor=PARENT, now=paris(2024, 11, 23, 9, 1))
    assert e.value.code == "offer_expired"


def test_agent_mode_waits_for_an_agent_and_keeps_the_queue(db):
    world = World(capacity=1, waitlist_mode="agent")
    s = world.session()
    booking = _book(world, s)
    h2, (c2,) = world.household()
    world.submit(h2, [item(c2, s)])
    services.booking_cancel(booking=booking, actor=PARENT, now=paris(2024, 11, 21, 9, 0))
    entry = WaitlistEntry.objects.get(child=c2)
    assert entry.status == "waiting"
    # A newcomer does not jump the queue while a waiting family could take the place.
    h3, (c3,) = world.household()
    basket = world.submit(h3, [item(c3, s)], now=paris(2024, 11, 21, 10, 0))
    assert outcomes(basket) == [("waitlisted", "full")]
    assert basket.result["items"][0]["position"] == 2
    offered = services.waitlist_offer_next(session=s, actor=AGENT, now=paris(2024, 11, 21, 11, 0))
    assert offered.pk == entry.pk
    assert services.waitlist_offer_next(session=s, actor=AGENT, now=paris(2024, 11, 21, 11, 0)) is None
    assert_ledger_consistent()


def test_withdrawing_from_the_waiting_list(world):
    s = world.session(capacity=0)
    h, (c,) = world.household()
    world.submit(h, [item(c, s)])
    entry = WaitlistEntry.objects.get()
    assert selectors.waitlist_position(entry) == 1
    services.waitlist_decline(entry=entry, actor=PARENT, now=BEFORE)
    entry.refresh_from_db()
    assert entry.status == "withdrawn" and selectors.waitlist_position(entry) == 0


# --- agents ----------------------------------------------------------------------------------------


def test_agent_books_after_the_deadline_with_a_reason_capacity_still_enforced(db):
    world = World(capacity=1)
    s = world.session()
    h, (c,) = world.household()
    after = paris(2024, 12, 3, 9, 0)
    with pytest.raises(BookingError) as e:
        services.booking_create_by_agent(household=h, child=c, session=s, unit="journee", actor=AGENT, now=after,
                                         reason="")
    assert e.value.field == "reason"
    booking = services.booking_create_by_agent(household=h, child=c, session=s, unit="journee", actor=AGENT,
                                               now=after, reason="Reprise du travail, appel du 3/12")
    assert booking.after_deadline and booking.reason.startswith("Reprise")
    h2, (c2,) = world.household()
    with pytest.raises(BookingError) as e:
        services.booking_create_by_agent(household=h2, child=c2, session=s, unit="journee", actor=AGENT, now=after,
                                         reason="urgence")
    assert e.value.code == "full"
    with pytest.raises(BookingError) as e:
        services.booking_create_by_agent(household=h2, child=c, session=s, unit="journee", actor=AGENT, now=after,
                                         reason="x")
    assert e.value.code == "not_your_child"
    assert Entry.objects.filter(operation="bookings.booking.create_by_agent").count() == 1
    assert_ledger_consistent()


def test_agent_booking_before_the_deadline_is_not_marked(world):
    s = world.session()
    h, (c,) = world.household()
    booking = services.booking_create_by_agent(household=h, child=c, session=s, unit=world.units["matin-repas"],
                                               actor=AGENT, now=BEFORE, reason="")
    assert not booking.after_deadline


# --- selectors ----------------------------------------------------------------------------------------


def test_household_calendar_states_and_deadlines(world, django_assert_max_num_queries):
    days = [WEDNESDAY + dt.timedelta(days=7 * i) for i in range(4)]
    sessions = [world.session(d) for d in days]
    Session.objects.filter(pk=sessions[3].pk).update(closed=True)
    SessionPart.objects.filter(session=sessions[2]).update(capacity=0)
    h, (c1, c2) = world.household(children=2)
    world.submit(h, [item(c1, sessions[0]), item(c1, sessions[2])])
    with django_assert_max_num_queries(10):
        cal = selectors.household_calendar(household=h, date_from=dt.date(2024, 12, 1),
                                           date_to=dt.date(2024, 12, 31), now=paris(2024, 12, 2, 9, 0))
    states = {(cc.child.pk, cell.date): cell.state for cc in cal for cell in cc.cells}
    assert states[(c1.pk, days[0])] == "booked"
    assert states[(c2.pk, days[0])] == "deadline_passed"
    assert states[(c2.pk, days[1])] == "free"
    assert states[(c1.pk, days[2])] == "waitlisted"
    assert states[(c2.pk, days[2])] == "full"
    assert states[(c2.pk, days[3])] == "closed"
    cell = next(x for x in cal[0].cells if x.date == days[1])
    assert cell.booking_deadline == paris(2024, 12, 8, 23, 59)
    assert cell.booking_deadline_text and cell.cancellation_deadline_text
    waiting = next(x for x in cal[0].cells if x.date == days[2])
    assert waiting.position == 1


def test_fill_rates(world):
    s = world.session(capacity=1)
    _book(world, s, "matin-repas")
    h, (c,) = world.household()
    world.submit(h, [item(c, s, "journee")])
    rows = selectors.fill_rates(activity=world.activity, date_from=WEDNESDAY, date_to=WEDNESDAY)
    got = {r.part: (r.capacity, r.booked, r.waiting) for r in rows}
    assert got == {"morning": (1, 1, 1), "meal": (1, 1, 1), "afternoon": (1, 0, 1)}


def test_every_action_is_journaled_without_personal_data(world):
    s = world.session()
    booking = _book(world, s)
    services.booking_cancel(booking=booking, actor=PARENT, now=BEFORE)
    ops = set(Entry.objects.values_list("operation", flat=True))
    assert {"bookings.basket.receive", "bookings.basket.answer", "bookings.booking.cancel"} <= ops
    for entry in Entry.objects.all():
        assert "Enfant" not in str(entry.details) and "@" not in str(entry.details)


def test_one_active_booking_per_child_and_session_in_the_ledger(world):
    s = world.session(capacity=5)
    h, (c,) = world.household()
    world.submit(h, [item(c, s)])
    world.submit(h, [item(c, s)])
    dup = Booking.objects.filter(status="booked").values("child", "session").annotate(n=Count("pk")).filter(Q(n__gt=1))
    assert not dup.exists()
