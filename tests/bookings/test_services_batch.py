"""The set-based drain gives exactly the answers of the one-basket-at-a-time path, in a bounded
number of queries.

Two identical towns receive the same baskets (same households, children, sessions, modes,
receipt times); one is answered by the per-item reference path, the other by the batch path;
every answer, counter, booking, waiting entry and journal entry must match."""

from __future__ import annotations

import datetime as dt
import random
import re
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from guichet.bookings import services
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
from guichet.catalog.models import Organisation, Portal
from guichet.common.actor import Actor
from guichet.journal.models import Entry
from guichet.journal.selectors import verify_all

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
PARENT = Actor(ref="user:1", channel="web")
AGENT = Actor(ref="user:99", channel="counter")
OPENS = dt.datetime(2024, 11, 20, 10, 0, tzinfo=PARIS)  # residents from 9:50
UNITS = {"journee": ["morning", "meal", "afternoon"], "matin-repas": ["morning", "meal"],
         "repas-apres-midi": ["meal", "afternoon"], "matin": ["morning"]}
# Wednesdays: deadline "sunday before at 23:59"; 13 November is already past at OPENS.
DATES = [dt.date(2024, 12, 4), dt.date(2024, 12, 11), dt.date(2024, 12, 18), dt.date(2024, 11, 13),
         dt.date(2025, 1, 8)]
CAPACITIES = [{"morning": 3, "meal": 2, "afternoon": 3}, {"morning": 2, "meal": 2, "afternoon": 1},
              {"morning": 4, "meal": 4, "afternoon": 4}, {"morning": 5, "meal": 5, "afternoon": 5},
              {"morning": 3, "meal": 3, "afternoon": 3}]


class Town:
    def __init__(self, name: str, *, households: int, waitlist_mode: str = "agent"):
        portal = Portal.objects.create(slug=f"ville-{name}", name=f"Ville {name}")
        self.org = Organisation.objects.create(portal=portal, slug=f"ville-{name}", name=f"Ville {name}")
        self.activity = Activity.objects.create(
            organisation=self.org, slug="mercredis", name="Mercredis", kind="leisure_wednesday",
            parts=["morning", "meal", "afternoon"], booking_rule="sunday before at 23:59",
            cancellation_rule="sunday of previous week at 23:59", waitlist_mode=waitlist_mode,
        )
        for i, (code, parts) in enumerate(UNITS.items()):
            Unit.objects.create(organisation=self.org, activity=self.activity, code=code, name=code, parts=parts,
                                position=i)
        site = Site.objects.create(organisation=self.org, slug="centre", name="Centre")
        self.sessions = []
        for day, caps in zip(DATES, CAPACITIES, strict=True):
            s = Session.objects.create(organisation=self.org, activity=self.activity, site=site, date=day,
                                       closed=day == dt.date(2024, 12, 18))
            for part, cap in caps.items():
                SessionPart.objects.create(organisation=self.org, session=s, part=part, capacity=cap)
            self.sessions.append(s)
        # Covers December only: the January session has no window (always open).
        RegistrationWindow.objects.create(
            organisation=self.org, activity=self.activity, first_date=dt.date(2024, 11, 1),
            last_date=dt.date(2024, 12, 31), opens_at=OPENS, residents_open_at=OPENS - dt.timedelta(minutes=10),
        )
        self.households, self.children = [], []
        for i in range(households):
            h = Household.objects.create(
                organisation=self.org, reference=f"F{i:03d}", display_name=f"Famille {i}", resident=i % 3 != 0,
                created_at=OPENS,
            )
            self.households.append(h)
            self.children.append([
                Child.objects.create(organisation=self.org, household=h, first_name=f"E{i}-{k}",
                                     birth_date=dt.date(2016, 1, 1 + k))
                for k in range(1 + i % 2)
            ])
        self.keys = 0

    def receive(self, household: int, items: list[tuple], mode: str, now: dt.datetime) -> Basket:
        """``items``: (household index, child index, session index or None, unit code)."""
        cleaned = []
        for hh, child, session, unit in items:
            kids = self.children[hh]
            cleaned.append({
                "child": kids[child % len(kids)].pk,
                "session": self.sessions[session].pk if session is not None else 10**9,
                "unit": unit,
            })
        self.keys += 1
        return services.basket_receive(  # queue without draining, to drain a batch at once
            household=self.households[household], items=cleaned, mode=mode, actor=PARENT, now=now,
            idempotency_key=f"k{self.keys}", channel="portal",
        )

    # -- a comparable picture of the town, with ids replaced by ranks

    def ids(self):
        child = {c.pk: f"child{i}.{k}" for i, kids in enumerate(self.children) for k, c in enumerate(kids)}
        session = {s.pk: f"session{i}" for i, s in enumerate(self.sessions)}
        booking = {pk: f"booking{i}" for i, pk in enumerate(
            Booking.objects.filter(organisation=self.org).order_by("pk").values_list("pk", flat=True))}
        entry = {pk: f"entry{i}" for i, pk in enumerate(
            WaitlistEntry.objects.filter(organisation=self.org).order_by("pk").values_list("pk", flat=True))}
        basket = {pk: f"basket{i}" for i, pk in enumerate(
            Basket.objects.filter(organisation=self.org).order_by("pk").values_list("pk", flat=True))}
        household = {h.pk: f"household{i}" for i, h in enumerate(self.households)}
        return {"child": child, "session": session, "booking": booking, "waitlistentry": entry, "basket": basket,
                "household": household}

    def picture(self) -> dict:
        ids = self.ids()

        def item(d):
            return {**d, "child": ids["child"].get(d["child"], d["child"]),
                    "session": ids["session"].get(d["session"], "unknown"),
                    "booking": ids["booking"].get(d["booking"]), "waitlist": ids["waitlistentry"].get(d["waitlist"])}

        def ref(text):
            m = re.fullmatch(r"bookings\.(\w+):(\d+)", text)
            return ids[m[1]][int(m[2])] if m else text

        return {
            "baskets": [
                (b.status, b.mode, [item(i) for i in (b.result or {}).get("items", [])])
                for b in Basket.objects.filter(organisation=self.org).order_by("pk")
            ],
            "parts": [
                (ids["session"][p.session_id], p.part, p.capacity, p.booked)
                for p in SessionPart.objects.filter(organisation=self.org).order_by("session_id", "part")
            ],
            "bookings": [
                (ids["child"][b.child_id], ids["session"][b.session_id], b.unit.code, ids["basket"].get(b.basket_id),
                 b.status, b.channel)
                for b in Booking.objects.filter(organisation=self.org).order_by("pk").select_related("unit")
            ],
            "waiting": [
                (ids["child"][e.child_id], ids["session"][e.session_id], e.unit.code, ids["basket"].get(e.basket_id),
                 e.status)
                for e in WaitlistEntry.objects.filter(organisation=self.org).order_by("pk").select_related("unit")
            ],
            "journal": [
                (e.operation, e.actor, e.channel, [ref(r) for r in e.refs], e.details)
                for e in Entry.objects.filter(chain=self.org.pk).order_by("seq")
            ],
        }


def drain(town: Town, last: Basket, *, batch: bool, monkeypatch) -> None:
    monkeypatch.setattr(services, "BATCH_ALLOCATION", batch)
    services._drain_until(last)  # noqa: SLF001


def random_round(rng: random.Random, households: int, baskets: int, start: dt.datetime) -> list:
    """Baskets of 1-6 items, both modes, with every way of being refused mixed in."""
    out = []
    for n in range(baskets):
        hh = rng.randrange(households)
        items = []
        for _ in range(rng.randint(1, 6)):
            roll = rng.random()
            child_hh = hh if roll > 0.05 else (hh + 1) % households  # someone else's child
            session = rng.choice([0, 0, 1, 1, 1, 2, 3, 4]) if roll < 0.97 else None  # unknown day
            unit = rng.choice(list(UNITS)) if rng.random() > 0.04 else "piscine"  # not offered
            items.append((child_hh, rng.randrange(2), session, unit))
        if rng.random() < 0.1 and items:
            items.append(items[0])  # the same day twice
        mode = rng.choice([Basket.Mode.PARTIAL, Basket.Mode.ALL_OR_NOTHING])
        # Residents from 9:50, others from 10:00: the first baskets meet a closed window.
        now = start + dt.timedelta(seconds=20 * n)
        out.append((hh, items, mode, now))
    return out


def play(town: Town, rounds: list[list], *, batch: bool, monkeypatch) -> dict:
    for i, baskets in enumerate(rounds):
        last = None
        for hh, items, mode, now in baskets:
            last = town.receive(hh, items, mode, now)
        drain(town, last, batch=batch, monkeypatch=monkeypatch)
        if i == 0:
            # Between rounds: a cancellation frees places (agent mode: no automatic offer), then
            # an agent offers one to the first waiting family that fits.
            booking = Booking.objects.filter(organisation=town.org, session=town.sessions[1]).order_by("pk").first()
            if booking is not None:
                services.booking_cancel(booking=booking, actor=AGENT, now=OPENS + dt.timedelta(hours=1))
                services.waitlist_offer_next(session=town.sessions[1], actor=AGENT, now=OPENS + dt.timedelta(hours=1))
    return town.picture()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_batch_answers_exactly_like_the_per_item_path(seed, monkeypatch):
    households = 14
    rng = random.Random(seed)
    start = OPENS - dt.timedelta(minutes=11)
    rounds = [random_round(rng, households, 45, start),
              random_round(rng, households, 30, OPENS + dt.timedelta(hours=2))]
    reference = play(Town("ref", households=households), rounds, batch=False, monkeypatch=monkeypatch)
    batch = play(Town("batch", households=households), rounds, batch=True, monkeypatch=monkeypatch)

    # The scenario really mixes every outcome (else the comparison would prove little).
    codes = {i["code"] for _s, _m, items in reference["baskets"] for i in items}
    assert {"booked", "full", "basket_incomplete", "not_your_child", "unknown_session", "unit_not_offered",
            "session_closed", "deadline_passed", "window_not_open"} <= codes
    assert any(i["outcome"] == "waitlisted" for _s, _m, items in reference["baskets"] for i in items)
    assert {"already_booked", "already_waitlisted", "duplicate"} & codes

    assert batch["baskets"] == reference["baskets"]
    assert batch["parts"] == reference["parts"]
    assert batch["bookings"] == reference["bookings"]
    assert batch["waiting"] == reference["waiting"]
    assert batch["journal"] == reference["journal"]
    assert all(v.ok for v in verify_all())


def test_priority_withdrawal_and_positions_across_baskets_of_one_batch(monkeypatch):
    """Receipt order inside one batch: an earlier basket's places count against a later one; a
    waiting family keeps its priority on the parts it can use; a child booked on another unit
    leaves the waiting list; positions count only those still waiting."""
    pictures = []
    for name, batch in (("ref", False), ("batch", True)):
        town = Town(name, households=6)
        day = 1  # morning 2, meal 2, afternoon 1
        t = OPENS + dt.timedelta(minutes=1)
        town.receive(0, [(0, 0, day, "journee")], Basket.Mode.PARTIAL, t)            # booked; afternoon now full
        town.receive(1, [(1, 0, day, "journee")], Basket.Mode.PARTIAL, t)            # waitlisted 1
        town.receive(2, [(2, 0, day, "matin")], Basket.Mode.PARTIAL, t)              # booked (no overlap usable)
        town.receive(1, [(1, 0, day, "matin-repas")], Basket.Mode.PARTIAL, t)        # full now: already waitlisted
        town.receive(3, [(3, 0, day, "repas-apres-midi")], Basket.Mode.ALL_OR_NOTHING, t)  # full
        town.receive(4, [(4, 0, day, "journee"), (4, 0, 0, "journee")], Basket.Mode.ALL_OR_NOTHING, t)
        last = town.receive(5, [(5, 0, day, "journee"), (5, 1, 0, "matin")], Basket.Mode.PARTIAL, t)
        drain(town, last, batch=batch, monkeypatch=monkeypatch)
        pictures.append(town.picture())
    reference, batch = pictures
    assert batch == reference
    outcomes = [[(i["outcome"], i["code"], i["position"]) for i in items] for _s, _m, items in reference["baskets"]]
    assert outcomes == [
        [("booked", "booked", None)],
        [("waitlisted", "full", 1)],
        [("booked", "booked", None)],
        [("refused", "already_waitlisted", None)],
        [("refused", "full", None)],
        [("refused", "full", None), ("refused", "basket_incomplete", None)],
        [("waitlisted", "full", 2), ("booked", "booked", None)],
    ]


def test_a_conflicting_batch_falls_back_to_the_per_item_path(monkeypatch):
    """If the batch's writes meet a conflict (here: simulated after they ran), the savepoint
    undoes them and the per-item path answers: no place counted twice."""
    rng = random.Random(7)
    rounds = [random_round(rng, 10, 30, OPENS)]
    reference = play(Town("ref", households=10), rounds, batch=False, monkeypatch=monkeypatch)

    real_write = services._BatchState.write  # noqa: SLF001
    calls = []

    def failing_write(self):
        real_write(self)
        calls.append(1)
        raise IntegrityError("simulated: a concurrent agent booked the same child")

    monkeypatch.setattr(services._BatchState, "write", failing_write)  # noqa: SLF001
    batch = play(Town("batch", households=10), rounds, batch=True, monkeypatch=monkeypatch)
    assert calls  # the batch path ran, then gave way
    assert batch == reference


def _queries_to_drain(town: Town, baskets: int, monkeypatch) -> int:
    last = None
    for n in range(baskets):
        hh = n % len(town.households)
        last = town.receive(hh, [(hh, 0, 0, "journee"), (hh, 1, 1, "matin"), (hh, 0, 4, "matin-repas"),
                                 (hh, 0, 3, "journee")], Basket.Mode.PARTIAL if n % 2 else Basket.Mode.ALL_OR_NOTHING,
                            OPENS + dt.timedelta(seconds=n))
    monkeypatch.setattr(services, "BATCH_ALLOCATION", True)
    with CaptureQueriesContext(connection) as ctx:
        services._drain_until(last)  # noqa: SLF001
    assert Basket.objects.filter(organisation=town.org, status=Basket.Status.RECEIVED).count() == 0
    return len(ctx.captured_queries)


def test_a_batch_costs_a_bounded_number_of_queries_whatever_its_size(monkeypatch):
    """The per-item path ran about 17 queries per item; a batch runs a fixed set of statements
    (bulk ones split only by the backend's parameter limit), whatever the number of baskets."""
    few = _queries_to_drain(Town("few", households=4), 4, monkeypatch)
    many = _queries_to_drain(Town("many", households=40), 120, monkeypatch)  # 480 items
    assert few <= 25
    assert many <= few + 5


def test_the_batch_path_is_used_on_an_ordinary_drain(monkeypatch):
    town = Town("plain", households=3)
    calls = []
    real = services._allocate  # noqa: SLF001
    monkeypatch.setattr(services, "_allocate", lambda b: calls.append(b.pk) or real(b))
    last = None
    for hh in range(3):
        last = town.receive(hh, [(hh, 0, 4, "journee")], Basket.Mode.PARTIAL, OPENS)
    services._drain_until(last)  # noqa: SLF001
    assert calls == []  # not one basket needed the per-item path
    assert [i["outcome"] for b in Basket.objects.filter(organisation=town.org) for i in b.result["items"]] == [
        "booked", "booked", "booked"]


def _stored_rows(town: Town, model) -> list[tuple]:
    """Every column of the town's rows as the database holds them (raw SQL: no field converter
    hides an empty encrypted ``reason`` stored differently), ids replaced by ranks."""
    ids = town.ids()
    meta = model._meta
    ranks = {"child_id": ids["child"], "session_id": ids["session"], "basket_id": ids["basket"],
             "household_id": ids["household"]}
    columns = [f.column for f in meta.concrete_fields if not f.primary_key and f.column != "organisation_id"]
    qn = connection.ops.quote_name
    sql = "SELECT {} FROM {} WHERE {} = %s ORDER BY {}".format(  # noqa: S608 - identifiers from the model
        ", ".join(qn(c) for c in columns), qn(meta.db_table), qn("organisation_id"), qn(meta.pk.column))
    with connection.cursor() as cursor:
        cursor.execute(sql, [town.org.pk])
        rows = cursor.fetchall()
    units = dict(Unit.objects.values_list("pk", "code"))
    activity = {town.activity.pk: "activity"}
    return [
        tuple(ranks[c].get(v, v) if c in ranks else units[v] if c == "unit_id"
              else activity.get(v, v) if c == "activity_id" else v for c, v in zip(columns, row, strict=True))
        for row in rows
    ]


def test_the_batch_stores_every_column_as_the_per_item_path(monkeypatch):
    """The batch inserts its rows in plain SQL: every stored column (dates, times, defaults, the
    encrypted ``reason`` left empty, a waiting entry withdrawn within the batch) is what the
    ORM stores on the per-item path."""
    rng = random.Random(5)
    rounds = [random_round(rng, 12, 40, OPENS - dt.timedelta(minutes=11))]
    ref_town, batch_town = Town("ref", households=12), Town("batch", households=12)
    play(ref_town, rounds, batch=False, monkeypatch=monkeypatch)
    per_item = []
    real = services._allocate  # noqa: SLF001
    monkeypatch.setattr(services, "_allocate", lambda b: per_item.append(b.pk) or real(b))
    play(batch_town, rounds, batch=True, monkeypatch=monkeypatch)
    assert per_item == []  # the batch's own inserts stored every row (no fallback)
    bookings = _stored_rows(ref_town, Booking)
    assert bookings and len(_stored_rows(ref_town, WaitlistEntry)) > 0
    assert _stored_rows(batch_town, Booking) == bookings
    assert _stored_rows(batch_town, WaitlistEntry) == _stored_rows(ref_town, WaitlistEntry)
    assert Booking.objects.filter(organisation=batch_town.org, reason="").count() == len(bookings)
