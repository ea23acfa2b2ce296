"""Booking services: baskets, cancellations, agent bookings, waiting lists, justifications and
attendance. Every function is keyword-only, takes ``now`` and an ``Actor``, owns its transaction
and journals what it did (ids only).

Capacity ("lock late, re-check, write")
    A unit takes one place in each of its parts. Each part is taken by ONE conditional UPDATE
    (``booked = booked + 1 WHERE pk = ... AND booked < capacity``): 0 rows means full. The
    parts of a unit are updated in primary-key order inside a savepoint, so a unit whose second
    part is full gives back its first one. The CHECK constraint ``booked <= capacity`` is the
    backstop: an ``IntegrityError`` there is read as "full".

Held places
    ``SessionPart.booked`` counts active bookings AND places held for an outstanding waiting-list
    offer. An offer takes its places when it is made (same conditional UPDATE), accepting it turns
    the held place into a booking without touching the counter, declining or letting it expire
    gives the place back. So ``booked <= capacity`` always holds and nobody can take a place that
    has been offered to a waiting family.

Fairness (first come, first served by server receipt)
    ``basket_submit`` first stores the basket (its receipt; ``seq`` is its primary key) and
    commits; on PostgreSQL the insert runs under a per-organisation advisory lock so primary keys
    commit in order. Then the queue of received baskets of the organisation is drained in ``seq``
    order under a second advisory lock (``pg_advisory_xact_lock``): whoever holds the lock answers
    every basket received so far (group commit); a request whose basket was answered by another
    process just reads its result. On SQLite the IMMEDIATE write lock serialises the same way.
    Rules (deadline, registration window) are evaluated at the basket's receipt time. See
    docs/adr/0005-fair-booking-queue.md.

One place a day
    A child has at most one active booking per activity and day, whatever the site (a partial
    unique index on ``Booking(child, activity, date)``; see docs/adr/0012-one-place-a-day.md).
    Every path checks it first and refuses with ``already_booked_elsewhere`` (``duplicate_day``
    inside one request); a unique violation met at the insert (a booking made meanwhile outside
    the queue: an agent, an offer) is read as the same refusal, never raised.

Waiting list
    Entries are served in receipt order (primary key). A newcomer does not jump the queue: when a
    waiting entry of the session could use the free places, the newcomer is waitlisted (or
    refused in all-or-nothing mode) instead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from functools import partial

from django.db import IntegrityError, connection, connections, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from guichet.common import fastread
from guichet.common.actor import CHANNELS, Actor
from guichet.common.rowinsert import Conflict, NewRow, row_insert
from guichet.journal.services import journal_append, journal_append_many

from .deadlines import (
    PARIS,
    RuleError,
    describe_deadline,
    format_deadline,
    is_before_deadline,
    parse_rule,
)
from .models import (
    Activity,
    Attendance,
    Basket,
    Booking,
    Child,
    Household,
    Justification,
    RegistrationWindow,
    Session,
    SessionPart,
    Unit,
    WaitlistEntry,
)

log = logging.getLogger(__name__)

MAX_ITEMS = 100
MAX_KEY_LENGTH = 100
DRAIN_BATCH = 200
# Answer a drain batch set-based (a handful of queries for the whole batch); False: one basket,
# one line at a time (the reference path, also the fallback when the batch meets a conflict).
BATCH_ALLOCATION = True
RECEIPT_LOCK = 0x47550001  # pg_advisory_xact_lock(class, organisation): receipts commit in seq order
QUEUE_LOCK = 0x47550002  # pg_advisory_xact_lock(class, organisation): one drainer at a time

# Public functions here that write nothing (checked by tests/journal/test_every_write_is_journaled.py).
JOURNAL_READ_ONLY = {
    "offer_expiry": "computes until when an offered place is kept (a pure rule, now passed in)",
    "offer_resumed_expiry": "computes until when a paused offer is kept once booking reopens (a pure rule)",
    "answered_notice": "formats the payload of the 'answered' NOTIFY (a pure function)",
}


class BookingError(Exception):
    """A refused action: ``code`` for programs, ``message`` for people, ``field`` for forms."""

    def __init__(self, code: str, message: str, field: str = ""):
        super().__init__(message)
        self.code = code
        self.message = str(message)
        self.field = field

    def __str__(self) -> str:
        return self.message


class _Full(Exception):
    pass


# --- small helpers -------------------------------------------------------------------------------


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _advisory_lock(kind: int, organisation_id: int) -> None:
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [kind, int(organisation_id)])


def _check_now(now) -> None:
    if not isinstance(now, dt.datetime) or now.tzinfo is None:
        raise ValueError("now must be an aware datetime")


def _unit_parts(unit: Unit) -> list[str]:
    return list(unit.parts or [])


def _parts_of(session: Session, unit: Unit) -> list[SessionPart]:
    names = set(_unit_parts(unit))
    return sorted((p for p in SessionPart.objects.filter(session=session, part__in=names)), key=lambda p: p.pk)


def _take(session: Session, unit: Unit) -> None:
    """Take one place in every part of ``unit`` for ``session``, or raise ``_Full`` (nothing
    taken). Runs in a savepoint; parts in primary-key order."""
    wanted = set(_unit_parts(unit))
    part_ids = sorted(SessionPart.objects.filter(session=session, part__in=wanted).values_list("pk", flat=True))
    if len(part_ids) != len(wanted) or not part_ids:
        raise _Full
    try:
        with transaction.atomic():
            for pk in part_ids:
                taken = SessionPart.objects.filter(pk=pk, booked__lt=F("capacity")).update(booked=F("booked") + 1)
                if taken == 0:
                    raise _Full
    except IntegrityError:  # the CHECK constraint, if a place slipped through anyway
        raise _Full from None


def _release(session: Session, unit: Unit) -> None:
    part_ids = sorted(
        SessionPart.objects.filter(session=session, part__in=_unit_parts(unit)).values_list("pk", flat=True)
    )
    for pk in part_ids:
        SessionPart.objects.filter(pk=pk, booked__gt=0).update(booked=F("booked") - 1)


def _free_by_part(session: Session) -> dict[str, int]:
    return {p.part: p.capacity - p.booked for p in SessionPart.objects.filter(session=session)}


def _fits(unit: Unit, free: dict[str, int]) -> bool:
    parts = _unit_parts(unit)
    return bool(parts) and all(free.get(p, 0) > 0 for p in parts)


def _waitlist_has_priority(session: Session, unit: Unit) -> bool:
    """True when a waiting family could use places this unit would take: they come first."""
    waiting = list(
        WaitlistEntry.objects.filter(session=session, status=WaitlistEntry.Status.WAITING).select_related("unit")
    )
    if not waiting:
        return False
    free = _free_by_part(session)
    mine = set(_unit_parts(unit))
    return any(_fits(e.unit, free) and mine & set(_unit_parts(e.unit)) for e in waiting)


def _rule(text: str):
    try:
        return parse_rule(text)
    except RuleError:
        log.warning("invalid deadline rule on an activity; treated as closed")
        return None


def booking_deadline(session: Session) -> dt.datetime | None:
    rule = _rule(session.activity.booking_rule)
    return rule.deadline(session.date) if rule else None


def cancellation_deadline(session: Session) -> dt.datetime | None:
    rule = _rule(session.activity.cancellation_rule)
    return rule.deadline(session.date) if rule else None


def _before(rule_text: str, session: Session, now) -> bool:
    rule = _rule(rule_text)
    return bool(rule) and is_before_deadline(rule, session.date, now)


def window_for(session: Session, windows=None) -> RegistrationWindow | None:
    """The registration window covering the session's date, if any."""
    if windows is None:
        windows = RegistrationWindow.objects.filter(
            activity_id=session.activity_id, first_date__lte=session.date, last_date__gte=session.date
        ).order_by("opens_at", "pk")
    for w in windows:
        if w.activity_id == session.activity_id and w.first_date <= session.date <= w.last_date:
            return w
    return None


def opening_for(window: RegistrationWindow, household: Household) -> dt.datetime:
    if household.resident and window.residents_open_at and window.residents_open_at < window.opens_at:
        return window.residents_open_at
    return window.opens_at


def _check_window(session: Session, household: Household, now, windows=None) -> None:
    window = window_for(session, windows)
    if window is None:
        return
    opens = opening_for(window, household)
    if now < opens:
        raise BookingError(
            "window_not_open",
            _("Bookings for this period open on %(when)s.") % {"when": format_deadline(opens, with_year=True)},
            "session",
        )
    if window.closes_at and now > window.closes_at:
        raise BookingError(
            "window_closed",
            _("Bookings for this period closed on %(when)s.")
            % {"when": format_deadline(window.closes_at, with_year=True)},
            "session",
        )


def _check_deadline(session: Session, now) -> None:
    rule = _rule(session.activity.booking_rule)
    if rule is None:
        raise BookingError("deadline_passed", _("Bookings are closed for this day."), "session")
    if not is_before_deadline(rule, session.date, now):
        text = describe_deadline(rule.deadline(session.date), "book", session_date=session.date, now=now)
        raise BookingError("deadline_passed", _("Too late: %(deadline)s.") % {"deadline": text}, "session")


def _resolve_unit(session: Session, unit) -> Unit:
    if isinstance(unit, Unit):
        if unit.activity_id != session.activity_id:
            raise BookingError("unit_not_offered", _("This choice is not offered for this day."), "unit")
        return unit
    found = Unit.objects.filter(activity_id=session.activity_id, code=str(unit or "")).first()
    if found is None:
        raise BookingError("unit_not_offered", _("This choice is not offered for this day."), "unit")
    if not SessionPart.objects.filter(session=session, part__in=_unit_parts(found)).count() == len(
        set(_unit_parts(found))
    ):
        raise BookingError("unit_not_offered", _("This choice is not offered for this day."), "unit")
    return found


def _booked_that_day(child_id: int, session: Session) -> int | None:
    """The session of the child's active booking for ``session``'s activity on its day (at any
    site), or None."""
    return (
        Booking.objects.filter(
            child_id=child_id, activity_id=session.activity_id, date=session.date, status=Booking.Status.BOOKED
        ).values_list("session_id", flat=True).first()
    )


def _already_booked(booked_session_id: int | None, session: Session, field: str = "session") -> BookingError:
    """The refusal for a child already booked that day: at this session, or at another site."""
    if booked_session_id is None or booked_session_id == session.pk:
        return BookingError("already_booked", _("This child is already booked on this day."), field)
    return BookingError(
        "already_booked_elsewhere", _("This child is already booked at another centre on this day."), field
    )


def _check_common(*, household: Household, child: Child, session: Session) -> None:
    if child.household_id != household.pk:
        raise BookingError("not_your_child", _("This child is not part of your household."), "child")
    if session.organisation_id != household.organisation_id:
        raise BookingError("unknown_session", _("This day does not exist."), "session")
    if session.closed:
        raise BookingError("session_closed", _("The centre is closed on this day."), "session")
    booked = _booked_that_day(child.pk, session)
    if booked is not None:
        raise _already_booked(booked, session)


def _actor_from(basket: Basket) -> Actor:
    channel = {"portal": "web"}.get(basket.channel, basket.channel)
    return Actor(ref=basket.actor_ref, channel=channel if channel in CHANNELS else "system")


def _queue_offer_mail(entry_id: int) -> None:
    def send():
        try:
            from .tasks import send_waitlist_offer

            send_waitlist_offer.enqueue(entry_id)
        except Exception:  # noqa: BLE001 - a mail must never undo a committed offer
            log.exception("could not queue the offer e-mail for waiting entry #%s", entry_id)

    transaction.on_commit(send)


def _queue_confirmations(basket_ids: list[int]) -> None:
    """One confirmation task for a drain's whole batch (one row, not one per basket), queued
    when the answers are committed; the task sends each basket's e-mail on its own."""

    def send():
        from .tasks import send_basket_confirmations

        try:
            send_basket_confirmations.enqueue(list(basket_ids))
        except Exception:  # noqa: BLE001 - a mail must never undo a committed answer
            log.exception("could not queue the confirmation e-mails of %s baskets", len(basket_ids))

    if basket_ids:
        transaction.on_commit(send)


# --- baskets -----------------------------------------------------------------------------------


def _clean_items(items) -> list[dict]:
    if not isinstance(items, list | tuple) or not items:
        raise BookingError("empty_basket", _("Choose at least one day."), "items")
    if len(items) > MAX_ITEMS:
        raise BookingError("too_many_items", _("At most %(n)s days in one request.") % {"n": MAX_ITEMS}, "items")
    cleaned = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BookingError("invalid_item", _("Each day must name a child, a day and a choice."), f"items[{i}]")
        try:
            child, session = int(item.get("child")), int(item.get("session"))
        except (TypeError, ValueError):
            raise BookingError(
                "invalid_item", _("Each day must name a child, a day and a choice."), f"items[{i}]"
            ) from None
        unit = item.get("unit")
        if not isinstance(unit, str) or not unit or len(unit) > 50:
            raise BookingError("invalid_item", _("Choose what to book for this day."), f"items[{i}].unit")
        cleaned.append({"child": child, "session": session, "unit": unit})
    return cleaned


def basket_receive(
    *,
    household: Household,
    items: list[dict],
    mode: str,
    actor: Actor,
    now: dt.datetime,
    idempotency_key: str,
    channel: str = "portal",
) -> Basket:
    """The receipt alone: the basket's place in line (``seq``, its primary key), durable when
    this returns; answered later, in receipt order, by whoever drains the queue (``basket_submit``
    or the HTTP layer's drainer, ``intake``). The same ``idempotency_key`` returns the basket
    already received under it, whatever its state, and acts no more. Raises ``BookingError`` on
    bad input (nothing stored)."""
    _check_now(now)
    key = str(idempotency_key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BookingError("invalid_key", _("This request has no valid identifier; reload the page."), "idempotency_key")
    try:
        if mode not in Basket.Mode.values:
            raise BookingError("invalid_mode", _("Choose what to do if some days are full."), "mode")
        cleaned = _clean_items(items)
    except BookingError:
        existing = Basket.objects.filter(household=household, idempotency_key=key).first()
        if existing is not None:  # a retry of a received request answers as the request did
            return existing
        raise
    try:
        return _receive(household=household, items=cleaned, mode=mode, actor=actor, now=now, key=key,
                        channel=channel)
    except IntegrityError:  # this key was received before (a retry), or concurrently: that one wins
        existing = Basket.objects.filter(household=household, idempotency_key=key).first()
        if existing is None:
            raise
        return existing


def basket_submit(
    *,
    household: Household,
    items: list[dict],
    mode: str,
    actor: Actor,
    now: dt.datetime,
    idempotency_key: str,
    channel: str = "portal",
) -> Basket:
    """Receive a basket, then answer it in receipt order. Returns the answered basket (its
    ``result`` lists each item's outcome). The same ``idempotency_key`` returns the same basket."""
    basket = basket_receive(household=household, items=items, mode=mode, actor=actor, now=now,
                            idempotency_key=idempotency_key, channel=channel)
    if basket.status != Basket.Status.DONE:
        _drain_until(basket)
        basket.refresh_from_db()
    return basket


_RECEIPT_SQL: str | None = None


def _receipt_fields() -> list:
    return [f for f in Basket._meta.concrete_fields if not f.primary_key]


def _receipt_sql() -> str:
    """Receipts in one statement: take the receipt lock, insert the baskets in the given order
    (their primary keys follow it) unless their key was already received (``ON CONFLICT DO
    NOTHING``), wake the drainer (``NOTIFY``, sent at commit), return the new primary keys with
    their household and key. The rows go as one array per column. Built once from the model
    (quoted identifiers; every value is a parameter)."""
    global _RECEIPT_SQL
    if _RECEIPT_SQL is None:
        meta = Basket._meta
        qn = connection.ops.quote_name
        fields = _receipt_fields()
        names = [f"c{i}" for i in range(len(fields))]
        household = qn(meta.get_field("household").column)
        key, pk = qn(meta.get_field("idempotency_key").column), qn(meta.pk.column)
        _RECEIPT_SQL = (  # noqa: S608 - identifiers from the model, quoted; values are parameters
            "WITH receipt_lock AS (SELECT pg_advisory_xact_lock(%s, %s)), "
            "received AS (INSERT INTO {table} ({columns}) SELECT {values} FROM receipt_lock, "
            "UNNEST({arrays}) WITH ORDINALITY AS u({names}, ord) ORDER BY u.ord "
            "ON CONFLICT ({household}, {key}) DO NOTHING RETURNING {pk}, {household}, {key}) "
            # Wakes the drainer at commit (bookings/intake.py), wherever it runs.
            "SELECT {pk}, {household}, {key}, pg_notify('guichet_basket_received', %s) FROM received"
        ).format(
            table=qn(meta.db_table), columns=", ".join(qn(f.column) for f in fields),
            values=", ".join(f"u.{n}" for n in names), names=", ".join(names),
            arrays=", ".join(f"%s::{f.db_type(connection).split('(')[0]}[]" for f in fields),
            household=household, key=key, pk=pk,
        )
    return _RECEIPT_SQL


def receipt_batch(organisation_id: int, rows: list[list]) -> list[int | None]:
    """Receives several baskets of one organisation in one transaction (PostgreSQL, autocommit):
    ``rows`` are their column values (``_receipt_fields`` order, prepared for the database), in
    receipt order. Returns each one's primary key, or None where its key was already received.
    What ``bookings.receipts`` runs for the requests of a server process; ``basket_receive`` is
    the public way in."""
    fields = _receipt_fields()
    household_at = fields.index(Basket._meta.get_field("household"))
    key_at = fields.index(Basket._meta.get_field("idempotency_key"))
    org = int(organisation_id)
    params = [RECEIPT_LOCK, org, *(list(column) for column in zip(*rows, strict=True)), str(org)]
    with connection.cursor() as cursor:
        cursor.execute(_receipt_sql(), params)
        by_key = {(household, key): pk for pk, household, key, _notified in cursor.fetchall()}
    # A key sent twice in one statement: the first row is received, the second is told "already
    # received" (None) and reads the stored basket, as it would in a statement of its own.
    return [by_key.pop((row[household_at], row[key_at]), None) for row in rows]


def _receive(*, household, items, mode, actor, now, key, channel) -> Basket:
    """The receipt: store the basket and commit, nothing else. Everything that can be done
    before (cleaning, building the row) is done before the receipt lock; under it there is only
    the INSERT and the COMMIT, so primary keys become visible in the order they were given
    (receipt order = pk order = commit order). The receipt is journaled by the drain that answers
    it ("bookings.basket.receive" then "bookings.basket.answer", in the answer's transaction):
    a basket received but never answered (a crash) is answered, and so journaled, by the next
    drain. See docs/adr/0005-fair-booking-queue.md."""
    basket = Basket(
        organisation_id=household.organisation_id,
        household=household,
        idempotency_key=key,
        mode=mode,
        items=items,
        received_at=now,
        channel=channel,
        actor_ref=actor.ref,
    )
    if _is_postgres() and connection.get_autocommit() and not connection.in_atomic_block:
        # One statement in autocommit mode is one transaction: the lock, the INSERT and the
        # COMMIT happen inside the server. The receipts of the requests of this process that
        # arrive meanwhile go in the same statement (bookings/receipts.py): one turn of the
        # receipt lock for all of them, where one turn each made a convoy under a rush.
        from . import intake, receipts

        row = [f.get_db_prep_save(f.pre_save(basket, add=True), connection) for f in _receipt_fields()]
        if intake.receipt_batching():
            pk = receipts.receive(int(household.organisation_id), row)
        else:
            pk = receipt_batch(household.organisation_id, [row])[0]
        if pk is None:  # the same key, received concurrently: the other one wins
            raise IntegrityError("bookings_basket_idem_unique")
        basket.pk = pk
        basket._state.adding = False
        return basket
    with transaction.atomic(durable=True):
        _advisory_lock(RECEIPT_LOCK, household.organisation_id)
        basket.save(force_insert=True)
    return basket


_BASKET_LABEL = f"{Basket._meta.app_label}.{Basket._meta.model_name}"  # as journal._ref names them
_HOUSEHOLD_LABEL = f"{Household._meta.app_label}.{Household._meta.model_name}"


def _journal_items(answered: list) -> list[dict]:
    """The drain's journal entries for its answered baskets, in pk order: for each basket its
    receipt (at ``received_at``, by whoever sent it) then its answer."""
    items = []
    for b, details, refs in answered:
        actor = _actor_from(b)
        items.append(dict(
            actor=actor, operation="bookings.basket.receive",
            objects=[f"{_BASKET_LABEL}:{b.pk}", f"{_HOUSEHOLD_LABEL}:{b.household_id}"],
            details={"items": len(b.items or []), "mode": b.mode}, organisation_id=b.organisation_id,
            now=b.received_at,
        ))
        items.append(dict(
            actor=actor, operation="bookings.basket.answer", objects=[f"{_BASKET_LABEL}:{b.pk}", *refs],
            details=details, organisation_id=b.organisation_id, now=b.received_at,
        ))
    return items


ANSWERED_CHANNEL = "guichet_basket_answered"  # intake's, listened to by every web process


def answered_notice(organisation_id: int, head: int | None, upto: int | None, seconds: float) -> str:
    """The payload of a NOTIFY on ``ANSWERED_CHANNEL`` after a round (read by
    ``intake._PgIntake._heard``): the organisation, the head of its line, the round's last basket
    (0: none) and the round's duration in seconds (0: unknown)."""
    return f"{organisation_id} {head or 0} {upto or 0} {seconds:.4f}"


def _drain_until(basket: Basket) -> None:
    """Answer the organisation's received baskets in seq order until ``basket`` is answered
    (a paper form, a counter's basket: ``basket_submit``). Each round tells every process what
    it answered, as the drainer's rounds do, so that a family whose basket it answered while it
    waited in a web process hears of it at once."""
    while True:
        answered = _drain_round(basket.organisation_id, until=basket.pk)
        if answered is None or basket.pk in answered:
            return


def basket_drain_round(organisation_id: int) -> list[int]:
    """One round of the queue: answers the organisation's oldest received baskets (at most
    ``DRAIN_BATCH``), in receipt order, in one transaction. Returns their primary keys (empty:
    nothing was waiting). What the drainer (``intake``) calls, round after round."""
    return _drain_round(organisation_id) or []


def _drain_round(organisation_id: int, *, until: int | None = None) -> list[int] | None:
    """The round itself, under the queue's lock. With ``until``: None (and nothing done) if that
    basket was answered meanwhile by someone else."""
    with transaction.atomic(durable=True):
        _advisory_lock(QUEUE_LOCK, organisation_id)
        if until is not None:
            status = Basket.objects.filter(pk=until).values_list("status", flat=True).first()
            if status == Basket.Status.DONE:
                return None
        pending = [
            _Received(*row) for row in
            Basket.objects.filter(organisation_id=organisation_id, status=Basket.Status.RECEIVED)
            .order_by("pk").values_list(*_RECEIVED_FIELDS)[:DRAIN_BATCH]
        ]
        if not pending:
            return []
        journal = _allocate_pending(pending)
        # Journal last: the chain's head lock is taken after every place lock (no deadlock
        # with a cancellation, which also takes its places first). Each basket's receipt is
        # journaled here, just before its answer, in the same transaction.
        journal_append_many(_journal_items(journal), returning=False)
        # Each basket is answered exactly once, by whichever process drains the queue: that
        # is where its confirmation is queued, so none is lost and none is sent twice.
        answered = [b.pk for b in pending]
        _queue_confirmations(answered)
        if until is not None and _is_postgres():
            # Sent at commit, as the drainer's: the head of the line is just behind this round.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [
                    ANSWERED_CHANNEL, answered_notice(organisation_id, answered[-1] + 1, answered[-1], 0.0)])
        return answered


_RECEIVED_FIELDS = ("pk", "organisation_id", "household_id", "household__organisation_id", "household__resident",
                    "mode", "items", "received_at", "channel", "actor_ref")


class _Household:
    """What the drain reads of a basket's household (``precheck``, ``opening_for``)."""

    __slots__ = ("organisation_id", "pk", "resident")

    def __init__(self, pk: int, organisation_id: int, resident: bool) -> None:
        self.pk, self.organisation_id, self.resident = pk, organisation_id, resident


class _Received:
    """A received basket as the drain reads it: its values, no model instance (a round reads
    hundreds). The set-based path answers these; the per-item path reads the models."""

    __slots__ = ("actor_ref", "answered_at", "channel", "household", "household_id", "items", "mode",
                 "organisation_id", "pk", "received_at", "result", "status")

    def __init__(self, pk, organisation_id, household_id, household_organisation_id, resident, mode, items,
                 received_at, channel, actor_ref) -> None:
        self.pk, self.organisation_id, self.household_id = pk, organisation_id, household_id
        self.household = _Household(household_id, household_organisation_id, resident)
        self.mode, self.items, self.received_at = mode, items, received_at
        self.channel, self.actor_ref = channel, actor_ref
        self.result, self.status, self.answered_at = None, Basket.Status.RECEIVED, None


def _allocate_pending(pending: list) -> list:
    """Answer ``pending`` (receipt order) inside the drain's transaction: set-based when possible,
    else (or on any conflict met by the batch's writes) one basket at a time. Returns one
    (basket, details, refs) per basket, in order."""
    if BATCH_ALLOCATION and pending:
        try:
            with transaction.atomic():
                return _allocate_batch(pending)
        except (_Conflict, IntegrityError):
            log.info("drain batch of %s baskets met a conflict; answered one by one", len(pending))
    if any(not isinstance(b, Basket) for b in pending):
        models = Basket.objects.select_related("household").in_bulk([b.pk for b in pending])
        pending = [models[b.pk] for b in pending]
    return [_allocate(b) for b in pending]


@dataclass
class _Line:
    child: int
    session: int
    unit: str
    outcome: str = "refused"
    code: str = ""
    message: str = ""
    booking: int | None = None
    waitlist: int | None = None
    position: int | None = None
    # resolved objects (not stored)
    objs: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "child": self.child, "session": self.session, "unit": self.unit, "outcome": self.outcome,
            "code": self.code, "message": self.message, "booking": self.booking, "waitlist": self.waitlist,
            "position": self.position,
        }


def _precheck(basket: Basket, line: _Line, seen: set) -> None:
    """Everything but capacity; raises BookingError."""
    household = basket.household
    now = basket.received_at
    child = Child.objects.filter(pk=line.child).first()
    if child is None or child.household_id != household.pk:
        raise BookingError("not_your_child", _("This child is not part of your household."), "child")
    session = (
        Session.objects.select_related("activity").filter(pk=line.session, organisation_id=household.organisation_id)
        .first()
    )
    if session is None:
        raise BookingError("unknown_session", _("This day does not exist."), "session")
    if (child.pk, session.pk) in seen:
        raise BookingError("duplicate", _("This day is asked twice for the same child."), "session")
    if (child.pk, session.activity_id, session.date) in seen:
        raise _duplicate_day()
    seen.update([(child.pk, session.pk), (child.pk, session.activity_id, session.date)])
    unit = _resolve_unit(session, line.unit)
    _check_common(household=household, child=child, session=session)
    _check_window(session, household, now)
    _check_deadline(session, now)
    line.objs = {"child": child, "session": session, "unit": unit}


def _duplicate_day() -> BookingError:
    return BookingError(
        "duplicate_day", _("This child is asked at two centres on the same day: choose one."), "session"
    )


def _book(basket: Basket, line: _Line) -> Booking:
    o = line.objs
    booking = Booking.objects.create(
        organisation_id=basket.organisation_id, household_id=basket.household_id, child=o["child"],
        session=o["session"], activity_id=o["session"].activity_id, date=o["session"].date, unit=o["unit"],
        basket=basket, booked_at=basket.received_at,
        channel=basket.channel, actor_ref=basket.actor_ref,
    )
    # A child booked from the basket leaves the session's waiting list.
    WaitlistEntry.objects.filter(
        child=o["child"], session=o["session"], status=WaitlistEntry.Status.WAITING
    ).update(status=WaitlistEntry.Status.WITHDRAWN)
    line.outcome, line.code, line.message, line.booking = "booked", "booked", _("Booked."), booking.pk
    return booking


def _full_message(line: _Line) -> str:
    """A full day in "all or nothing" mode (in "partial" mode a full day is waitlisted)."""
    return _("No place left on this day. You chose all or nothing: nothing was booked and nothing was put on "
             "the waiting list.")


def _incomplete_message() -> str:
    return _("Not booked: another day of this request is full or refused (you chose all or nothing).")


def _allocate(basket: Basket):
    """Answer one basket (inside the drain's transaction). Returns (basket, details, refs)."""
    lines = [_Line(i["child"], i["session"], i["unit"]) for i in basket.items]
    seen: set = set()
    ok: list[_Line] = []
    for line in lines:
        try:
            _precheck(basket, line, seen)
            ok.append(line)
        except BookingError as e:
            line.outcome, line.code, line.message = "refused", e.code, e.message
    refs: list = []
    if basket.mode == Basket.Mode.ALL_OR_NOTHING:
        _allocate_all_or_nothing(basket, lines, ok, refs)
    else:
        _allocate_partial(basket, ok, refs)
    basket.result = {"items": [line.as_dict() for line in lines]}
    basket.status = Basket.Status.DONE
    basket.answered_at = basket.received_at
    basket.save(update_fields=["result", "status", "answered_at"])
    counts = {k: sum(1 for line in lines if line.outcome == k) for k in ("booked", "waitlisted", "refused")}
    return basket, {"mode": basket.mode, **counts}, refs


def _allocate_all_or_nothing(basket, lines, ok, refs) -> None:
    incomplete = _incomplete_message()
    if len(ok) != len(lines):
        for line in ok:
            line.outcome, line.code, line.message = "refused", "basket_incomplete", incomplete
        return
    full: list[_Line] = []
    try:
        with transaction.atomic():
            for line in ok:
                o = line.objs
                if _waitlist_has_priority(o["session"], o["unit"]):
                    full.append(line)
                    continue
                try:
                    _take(o["session"], o["unit"])
                except _Full:
                    full.append(line)
            if full:
                raise _Full
            bookings = [_book(basket, line) for line in ok]
    except _Full:
        for line in ok:
            line.outcome, line.booking = "refused", None
            if line in full:
                line.code, line.message = "full", _full_message(line)
            else:
                line.code, line.message = "basket_incomplete", incomplete
        return
    except IntegrityError:  # a booking made meanwhile outside the queue (an agent, an offer)
        for line in ok:
            line.outcome, line.booking = "refused", None
            booked = _booked_that_day(line.child, line.objs["session"])
            if booked is None:
                line.code, line.message = "basket_incomplete", incomplete
            else:
                error = _already_booked(booked, line.objs["session"])
                line.code, line.message = error.code, error.message
        return
    refs.extend(bookings)


def _allocate_partial(basket, ok, refs) -> None:
    for line in ok:
        o = line.objs
        try:
            with transaction.atomic():
                if _waitlist_has_priority(o["session"], o["unit"]):
                    raise _Full
                _take(o["session"], o["unit"])
                refs.append(_book(basket, line))
        except _Full:
            _waitlist(basket, line, refs)
        except IntegrityError:  # a booking made meanwhile outside the queue (an agent, an offer)
            error = _already_booked(_booked_that_day(line.child, o["session"]), o["session"])
            line.outcome, line.booking = "refused", None
            line.code, line.message = error.code, error.message


def _waitlist(basket: Basket, line: _Line, refs) -> None:
    o = line.objs
    try:
        with transaction.atomic():
            entry = WaitlistEntry.objects.create(
                organisation_id=basket.organisation_id, household_id=basket.household_id, child=o["child"],
                session=o["session"], unit=o["unit"], basket=basket, requested_at=basket.received_at,
            )
    except IntegrityError:
        line.outcome, line.code = "refused", "already_waitlisted"
        line.message = _("This child is already on the waiting list for this day.")
        return
    from .selectors import waitlist_position

    refs.append(entry)
    line.outcome, line.code, line.waitlist = "waitlisted", "full", entry.pk
    line.position = waitlist_position(entry)
    line.message = _("No place left: on the waiting list, position %(position)s.") % {"position": line.position}


# --- set-based allocation of a drain batch ------------------------------------------------------
#
# The same rules as ``_allocate`` (and its helpers), in the same order, with the same outcomes,
# codes and messages, but against values loaded once for the whole batch: children, sessions
# (+ activity), units, the session parts (locked FOR UPDATE, primary-key order), registration
# windows, active bookings and waiting entries. Capacity is decided in memory, basket after
# basket in receipt order (an earlier basket's places count against a later one's), then
# written with one UPDATE of the touched parts, bulk inserts of bookings and waiting entries,
# one UPDATE of withdrawn waiting entries and one bulk update of the baskets. Anything
# unexpected (an UPDATE that does not touch every part, the CHECK constraint, a unique
# constraint hit by a concurrent agent or offer) raises: the savepoint is rolled back and the
# batch is answered by the per-item path instead.


_Conflict = Conflict  # a batch that cannot be answered set-based: the per-item path answers


_WAITING = "waiting"
_OFFERED = "offered"


def _batch_lines(pending: list[Basket]) -> list[list[_Line]]:
    out = []
    for b in pending:
        if not isinstance(b.items, list):
            raise _Conflict
        lines = []
        for i in b.items:
            if not isinstance(i, dict):
                raise _Conflict
            child, session, unit = i.get("child"), i.get("session"), i.get("unit")
            if type(child) is not int or type(session) is not int or not isinstance(unit, str):
                raise _Conflict  # not what _clean_items stores: let the reference path judge it
            lines.append(_Line(child, session, unit))
        out.append(lines)
    return out


_BOOKING_NAMES = ("organisation", "household", "child", "session", "activity", "date", "unit", "basket",
                  "booked_at", "channel", "actor_ref")
_ENTRY_NAMES = ("organisation", "household", "child", "session", "unit", "basket", "requested_at", "status")
_ENTRY_STATUS = _ENTRY_NAMES.index("status")
# The batch's reads of plain values (common.fastread: one SQL text per statement, built once from
# the models; identifiers quoted, every value a parameter, a list of ids ONE parameter).


def _column(model, qn, name: str) -> str:
    return f"{qn(model._meta.db_table)}.{qn(model._meta.get_field(name).column)}"


def _children_sql(qn, columns, member) -> str:
    return f"SELECT {', '.join(columns)} FROM {qn(Child._meta.db_table)} WHERE {_column(Child, qn, 'id')} {member}"  # noqa: S608


def _parts_sql(qn, columns, member) -> str:
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    pk = _column(SessionPart, qn, "id")
    return (f"SELECT {', '.join(columns)} FROM {qn(SessionPart._meta.db_table)} "  # noqa: S608
            f"WHERE {_column(SessionPart, qn, 'session')} {member} ORDER BY {pk}{lock}")


def _booked_days_sql(qn, columns, member) -> str:
    col = partial(_column, Booking, qn)
    return (f"SELECT {', '.join(columns)} FROM {qn(Booking._meta.db_table)} "  # noqa: S608
            f"WHERE {col('child')} {member} AND {col('activity')} {member} AND {col('date')} {member} "
            f"AND {col('status')} = %s")


def _waiting_counts_sql(qn, columns, member) -> str:
    col = partial(_column, WaitlistEntry, qn)
    return (f"SELECT {', '.join(columns)}, COUNT(*) FROM {qn(WaitlistEntry._meta.db_table)} "  # noqa: S608
            f"WHERE {col('session')} {member} AND {col('status')} = %s GROUP BY {', '.join(columns)}")


def _active_entries_sql(qn, columns, member) -> str:
    col = partial(_column, WaitlistEntry, qn)
    return (f"SELECT {', '.join(columns)} FROM {qn(WaitlistEntry._meta.db_table)} "  # noqa: S608
            f"WHERE {col('session')} {member} AND {col('status')} IN (%s, %s) AND {col('child')} {member} "
            f"ORDER BY {col('id')}")


class _BatchState:
    """What the batch knows of the database, kept up to date as baskets are answered."""

    def __init__(self, pending: list[Basket], lines_by_basket: list[list[_Line]]):
        conn = connections[connection.alias]
        child_ids = {line.child for lines in lines_by_basket for line in lines}
        session_ids = {line.session for lines in lines_by_basket for line in lines}
        children = fastread.members(conn, child_ids)
        self.children = dict(fastread.read_values(Child, "drain.children", _children_sql, [children],
                                                  ("id", "household")))
        organisations = {b.household.organisation_id for b in pending}
        self.sessions = Session.objects.select_related("activity").filter(organisation_id__in=organisations).in_bulk(
            session_ids
        )
        activity_ids = {s.activity_id for s in self.sessions.values()}
        units = list(Unit.objects.filter(activity_id__in=activity_ids))
        self.units = {(u.activity_id, u.code): u for u in units}
        self.units_by_id = {u.pk: u for u in units}
        sessions = fastread.members(conn, list(self.sessions))
        # part name -> [pk, capacity, booked]; locked in primary-key order (ADR 5, lock order).
        self.parts: dict[int, dict[str, list]] = {sid: {} for sid in self.sessions}
        for pk, sid, name, capacity, booked in fastread.read_values(
            SessionPart, "drain.parts", _parts_sql, [sessions], ("id", "session", "part", "capacity", "booked")
        ):
            self.parts[sid][name] = [pk, capacity, booked]
        self.initial = {p[0]: p[2] for parts in self.parts.values() for p in parts.values()}
        self.windows = list(RegistrationWindow.objects.filter(activity_id__in=activity_ids).order_by("opens_at", "pk"))
        self.window_of: dict[int, RegistrationWindow | None] = {}
        self.rules: dict[str, object] = {}
        self.limits: dict[int, dt.datetime | None] = {}
        # (child, activity, date) -> the session of the child's active booking that day (any site)
        days = {s.date for s in self.sessions.values()}
        self.booked_days: dict[tuple, int] = {
            (child_id, activity_id, date): session_id
            for child_id, activity_id, date, session_id in fastread.read_values(
                Booking, "drain.booked_days", _booked_days_sql,
                [children, fastread.members(conn, activity_ids), fastread.members(conn, days), Booking.Status.BOOKED.value],
                ("child", "activity", "date", "session"),
            )
        }
        # (child, session) -> waiting/offered entry: [pk or NewRow, status, unit_id]
        self.active_entries: dict[tuple[int, int], list] = {}
        # session -> unit_id -> number of WAITING entries
        self.waiting: dict[int, dict[int, int]] = {sid: {} for sid in self.sessions}
        self.waiting_total: dict[int, int] = dict.fromkeys(self.sessions, 0)
        # The sessions' waiting lists are read as counts (they grow long during a rush); the
        # entries themselves only for the batch's children.
        counts = fastread.read_values(WaitlistEntry, "drain.waiting_counts", _waiting_counts_sql,
                                      [sessions, _WAITING], ("session", "unit"))
        rows = fastread.read_values(WaitlistEntry, "drain.active_entries", _active_entries_sql,
                                    [sessions, _WAITING, _OFFERED, children],
                                    ("id", "child", "session", "unit", "status"))
        missing = {r[1] for r in counts} - set(self.units_by_id)
        if missing:
            self.units_by_id.update(Unit.objects.in_bulk(missing))
        for sid, unit_id, n in counts:
            self.waiting[sid][unit_id] = n
            self.waiting_total[sid] += n
        for pk, child_id, sid, unit_id, status in rows:
            self.active_entries[(child_id, sid)] = [pk, status, unit_id]
        self.withdrawn: list[int] = []
        self.bookings_insert = row_insert(Booking, _BOOKING_NAMES)
        self.entries_insert = row_insert(WaitlistEntry, _ENTRY_NAMES)
        self.new_bookings: list[NewRow] = []
        self.new_entries: list[NewRow] = []
        # The answers' texts, translated once per round (the language does not change within one).
        self.booked_text = _("Booked.")
        self.waitlisted_text = _("No place left: on the waiting list, position %(position)s.")
        self.incomplete_text = _incomplete_message()
        self.full_text: str | None = None

    # -- rules

    def window(self, session: Session) -> RegistrationWindow | None:
        if session.pk not in self.window_of:
            self.window_of[session.pk] = window_for(session, self.windows)
        return self.window_of[session.pk]

    def before_deadline(self, session: Session, now) -> bool:
        """``is_before_deadline`` with the rule parsed and the limit computed once per session."""
        if session.pk not in self.limits:
            text = session.activity.booking_rule
            if text not in self.rules:
                self.rules[text] = _rule(text)
            rule = self.rules[text]
            self.limits[session.pk] = (
                None if rule is None
                else rule.deadline(session.date).astimezone(dt.UTC) + dt.timedelta(minutes=1)
            )
        limit = self.limits[session.pk]
        return limit is not None and now < limit

    def precheck(self, basket: Basket, line: _Line, seen: set) -> None:
        """``_precheck`` against the loaded values: same checks, same order, same errors."""
        household = basket.household
        now = basket.received_at
        household_id = self.children.get(line.child)
        if household_id is None or household_id != household.pk:
            raise BookingError("not_your_child", _("This child is not part of your household."), "child")
        session = self.sessions.get(line.session)
        if session is None or session.organisation_id != household.organisation_id:
            raise BookingError("unknown_session", _("This day does not exist."), "session")
        key, day = (line.child, session.pk), (line.child, session.activity_id, session.date)
        if key in seen:
            raise BookingError("duplicate", _("This day is asked twice for the same child."), "session")
        if day in seen:
            raise _duplicate_day()
        seen.update([key, day])
        unit = self.units.get((session.activity_id, line.unit))
        if unit is None or not set(_unit_parts(unit)) <= set(self.parts[session.pk]):
            raise BookingError("unit_not_offered", _("This choice is not offered for this day."), "unit")
        if session.closed:
            raise BookingError("session_closed", _("The centre is closed on this day."), "session")
        if day in self.booked_days:
            raise _already_booked(self.booked_days[day], session)
        window = self.window(session)
        _check_window(session, household, now, [window] if window is not None else [])
        if not self.before_deadline(session, now):
            _check_deadline(session, now)  # raises the reference error (with its message)
        line.objs = {"session": session, "unit": unit}

    # -- capacity, in memory

    def has_priority(self, session_id: int, unit: Unit) -> bool:
        """``_waitlist_has_priority`` on the in-memory view."""
        counts = self.waiting[session_id]
        if not any(counts.values()):
            return False
        free = {name: p[1] - p[2] for name, p in self.parts[session_id].items()}
        mine = set(_unit_parts(unit))
        for unit_id, n in counts.items():
            if n > 0:
                other = self.units_by_id[unit_id]
                if _fits(other, free) and mine & set(_unit_parts(other)):
                    return True
        return False

    def take(self, session_id: int, unit: Unit) -> bool:
        """``_take`` on the in-memory view: every part of the unit, or none."""
        wanted = set(_unit_parts(unit))
        parts = self.parts[session_id]
        if not wanted or not wanted <= set(parts):
            return False
        if any(parts[name][2] >= parts[name][1] for name in wanted):
            return False
        for name in wanted:
            parts[name][2] += 1
        return True

    def give_back(self, session_id: int, unit: Unit) -> None:
        for name in set(_unit_parts(unit)):
            self.parts[session_id][name][2] -= 1

    def book(self, basket: Basket, line: _Line) -> NewRow:
        session, unit = line.objs["session"], line.objs["unit"]
        booking = NewRow(self.bookings_insert.label, [  # in the order of _BOOKING_NAMES
            basket.organisation_id, basket.household_id, line.child, session.pk, session.activity_id, session.date,
            unit.pk, basket.pk, basket.received_at, basket.channel, basket.actor_ref,
        ])
        self.new_bookings.append(booking)
        key = (line.child, session.pk)
        self.booked_days[(line.child, session.activity_id, session.date)] = session.pk
        # A child booked from the basket leaves the session's waiting list.
        entry = self.active_entries.get(key)
        if entry is not None and entry[1] == _WAITING:
            del self.active_entries[key]
            self._unwait(session.pk, entry[2])
            if isinstance(entry[0], NewRow):
                entry[0].row[_ENTRY_STATUS] = WaitlistEntry.Status.WITHDRAWN
            else:
                self.withdrawn.append(entry[0])
        line.outcome, line.code, line.message = "booked", "booked", self.booked_text
        line.objs["record"] = booking
        return booking

    def _unwait(self, session_id: int, unit_id: int) -> None:
        self.waiting[session_id][unit_id] -= 1
        self.waiting_total[session_id] -= 1

    def waitlist(self, basket: Basket, line: _Line, refs: list) -> None:
        session, unit = line.objs["session"], line.objs["unit"]
        key = (line.child, session.pk)
        if key in self.active_entries:
            line.outcome, line.code = "refused", "already_waitlisted"
            line.message = _("This child is already on the waiting list for this day.")
            return
        entry = NewRow(self.entries_insert.label, [  # in the order of _ENTRY_NAMES
            basket.organisation_id, basket.household_id, line.child, session.pk, unit.pk, basket.pk,
            basket.received_at, WaitlistEntry.Status.WAITING,
        ])
        self.new_entries.append(entry)
        self.active_entries[key] = [entry, _WAITING, unit.pk]
        self.waiting[session.pk][unit.pk] = self.waiting[session.pk].get(unit.pk, 0) + 1
        self.waiting_total[session.pk] += 1
        refs.append(entry)
        line.objs["record"] = entry
        line.outcome, line.code = "waitlisted", "full"
        line.position = self.waiting_total[session.pk]
        line.message = self.waitlisted_text % {"position": line.position}

    # -- writes

    def write(self) -> None:
        deltas = []
        for parts in self.parts.values():
            for pk, _capacity, booked in parts.values():
                if booked != self.initial[pk]:
                    deltas.append((pk, booked - self.initial[pk]))
        if deltas:
            # One statement for every part: the ORM's CASE WHEN per row cost more to build than
            # the rest of the round (identifiers from the model, quoted; values are parameters).
            qn = connection.ops.quote_name
            meta = SessionPart._meta
            table, booked, pk = qn(meta.db_table), qn(meta.get_field("booked").column), qn(meta.pk.column)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET {booked} = {table}.{booked} + d.delta "  # noqa: S608
                    f"FROM unnest(%s::bigint[], %s::integer[]) AS d(id, delta) WHERE {table}.{pk} = d.id"
                    if _is_postgres() else
                    f"UPDATE {table} SET {booked} = {booked} + (SELECT value FROM json_each(%s) "  # noqa: S608
                    f"WHERE json_each.key = CAST({table}.{pk} AS TEXT)) WHERE {pk} IN (SELECT CAST(key AS INTEGER) "
                    "FROM json_each(%s))",
                    [[pk for pk, _n in deltas], [n for _pk, n in deltas]] if _is_postgres()
                    else [json.dumps(dict(deltas))] * 2,
                )
                changed = cursor.rowcount
            if changed != len(deltas):
                raise _Conflict
        if self.withdrawn:
            WaitlistEntry.objects.filter(pk__in=self.withdrawn, status=WaitlistEntry.Status.WAITING).update(
                status=WaitlistEntry.Status.WITHDRAWN
            )
        if self.new_bookings:
            self.bookings_insert.insert(self.new_bookings)
        if self.new_entries:
            self.entries_insert.insert(self.new_entries)


def _allocate_batch(pending: list[Basket]) -> list:
    """Answer every basket of ``pending`` (receipt order) set-based. Same results as calling
    ``_allocate`` on each in turn. Raises ``_Conflict``/``IntegrityError`` (caller's savepoint
    rolls back and falls back to the per-item path)."""
    lines_by_basket = _batch_lines(pending)
    state = _BatchState(pending, lines_by_basket)
    answered = []
    for basket, lines in zip(pending, lines_by_basket, strict=True):
        seen: set = set()
        ok: list[_Line] = []
        for line in lines:
            try:
                state.precheck(basket, line, seen)
                ok.append(line)
            except BookingError as e:
                line.outcome, line.code, line.message = "refused", e.code, e.message
        refs: list = []
        if basket.mode == Basket.Mode.ALL_OR_NOTHING:
            _batch_all_or_nothing(state, basket, lines, ok, refs)
        else:
            for line in ok:
                session_id, unit = line.session, line.objs["unit"]
                if not state.has_priority(session_id, unit) and state.take(session_id, unit):
                    refs.append(state.book(basket, line))
                else:
                    state.waitlist(basket, line, refs)
        answered.append((basket, lines, refs))
    state.write()
    out = []
    for basket, lines, refs in answered:
        for line in lines:
            record = line.objs.get("record") if line.objs else None
            if record is not None and record.label == state.bookings_insert.label:
                line.booking = record.pk
            elif record is not None:
                line.waitlist = record.pk
        basket.result = {"items": [line.as_dict() for line in lines]}
        basket.status = Basket.Status.DONE
        basket.answered_at = basket.received_at
        counts = {k: sum(1 for line in lines if line.outcome == k) for k in ("booked", "waitlisted", "refused")}
        out.append((basket, {"mode": basket.mode, **counts}, [r.ref() for r in refs]))
    _save_answers(pending)
    return out


def _save_answers(baskets: list[Basket]) -> None:
    """``basket.save(update_fields=["result", "status", "answered_at"])`` for every basket. On
    PostgreSQL one UPDATE for all of them, the answers in one JSON document (serialised at C
    speed; ``bulk_update`` would build one huge CASE per field, slower to compile and to run);
    elsewhere one prepared statement executed many times."""
    meta = Basket._meta
    conn = connections[connection.alias]  # the wrapper itself: no thread-local look-up per value
    qn = conn.ops.quote_name
    result, status, answered = (meta.get_field(name) for name in ("result", "status", "answered_at"))
    # Identifiers from the model, quoted; values are parameters.
    names = [qn(name) for name in (meta.db_table, result.column, status.column, answered.column, meta.pk.column)]
    if conn.vendor == "postgresql" and result.encoder is None:
        times: dict = {}
        rows = []
        for b in baskets:
            at = b.answered_at
            if at is not None:
                if at not in times:
                    times[at] = answered.get_db_prep_save(at, conn).isoformat()
                at = times[at]
            rows.append([b.pk, b.result, status.get_db_prep_save(b.status, conn), at])
        sql = (  # noqa: S608
            "UPDATE {0} SET {1} = NULLIF(d.e->1, 'null'::jsonb), {2} = (d.e->>2)::varchar, "
            "{3} = (d.e->>3)::timestamptz FROM jsonb_array_elements(%s::jsonb) AS d(e) "
            "WHERE {0}.{4} = (d.e->>0)::bigint"
        ).format(*names)
        with conn.cursor() as cursor:
            cursor.execute(sql, [json.dumps(rows, ensure_ascii=False, separators=(",", ":"))])
        return
    sql = "UPDATE {} SET {} = %s, {} = %s, {} = %s WHERE {} = %s".format(*names)  # noqa: S608
    rows = [
        (result.get_db_prep_save(b.result, conn), status.get_db_prep_save(b.status, conn),
         answered.get_db_prep_save(b.answered_at, conn), b.pk)
        for b in baskets
    ]
    with conn.cursor() as cursor:
        cursor.executemany(sql, rows)


def _batch_all_or_nothing(state: _BatchState, basket: Basket, lines, ok, refs) -> None:
    """``_allocate_all_or_nothing`` on the in-memory view."""
    incomplete = state.incomplete_text
    if len(ok) != len(lines):
        for line in ok:
            line.outcome, line.code, line.message = "refused", "basket_incomplete", incomplete
        return
    full: list[_Line] = []
    taken: list[_Line] = []
    for line in ok:
        session_id, unit = line.session, line.objs["unit"]
        if state.has_priority(session_id, unit):
            full.append(line)
        elif state.take(session_id, unit):
            taken.append(line)
        else:
            full.append(line)
    if full:
        for line in taken:
            state.give_back(line.session, line.objs["unit"])
        for line in ok:
            line.outcome, line.booking = "refused", None
            if any(line is f for f in full):
                if state.full_text is None:
                    state.full_text = _full_message(line)
                line.code, line.message = "full", state.full_text
            else:
                line.code, line.message = "basket_incomplete", incomplete
        return
    refs.extend(state.book(basket, line) for line in ok)


# --- cancellation and agent bookings ----------------------------------------------------------------


def booking_cancel(*, booking: Booking, actor: Actor, now: dt.datetime, reason: str = "") -> Booking:
    """Cancel a booking. After the activity's cancellation deadline it is still cancelled but
    marked ``late`` (billable unless justified in time). The freed place goes to the waiting
    list first."""
    _check_now(now)
    with transaction.atomic(durable=True):
        booking = Booking.objects.select_for_update().select_related("session__activity", "unit").get(pk=booking.pk)
        if booking.status != Booking.Status.BOOKED:
            raise BookingError("not_booked", _("This booking is already cancelled."), "booking")
        session = booking.session
        if now.astimezone(PARIS).date() > session.date:
            raise BookingError("session_over", _("This day is over: it can no longer be cancelled."), "booking")
        booking.late = not _before(session.activity.cancellation_rule, session, now)
        booking.status = Booking.Status.CANCELLED
        booking.cancelled_at = now
        booking.reason = str(reason or "")[:300]
        booking.save(update_fields=["status", "cancelled_at", "late", "reason"])
        _release(session, booking.unit)
        journal_append(
            actor=actor, operation="bookings.booking.cancel", objects=[booking, session],
            details={"late": booking.late}, organisation_id=booking.organisation_id, now=now,
        )
        if session.activity.waitlist_mode == Activity.WaitlistMode.AUTOMATIC:
            _offer_next(session, actor, now)
    return booking


def booking_create_by_agent(
    *, household: Household, child: Child, session: Session, unit, actor: Actor, now: dt.datetime, reason: str
) -> Booking:
    """An agent books for a family, also after the booking deadline (then ``reason`` is
    required and recorded). Capacity is still enforced. A place offered to this child from the
    waiting list for this session and unit is the one taken (the offer is accepted at the
    counter: the way to take it while online booking is suspended)."""
    _check_now(now)
    reason = str(reason or "").strip()
    with transaction.atomic(durable=True):
        session = Session.objects.select_related("activity").get(pk=session.pk)
        unit = _resolve_unit(session, unit)
        _check_common(household=household, child=child, session=session)
        after = not _before(session.activity.booking_rule, session, now)
        if after and not reason:
            raise BookingError(
                "reason_required", _("Booking after the deadline: give the reason."), "reason"
            )
        offer = (
            WaitlistEntry.objects.select_for_update()
            .filter(child=child, session=session, unit=unit, status=WaitlistEntry.Status.OFFERED).first()
        )
        if offer is None:
            try:
                _take(session, unit)
            except _Full:
                raise BookingError("full", _("No place left on this day."), "session") from None
        try:
            with transaction.atomic():
                booking = Booking.objects.create(
                    organisation_id=household.organisation_id, household=household, child=child, session=session,
                    activity_id=session.activity_id, date=session.date, unit=unit, booked_at=now,
                    after_deadline=after, reason=reason[:300], channel="agent", actor_ref=actor.ref,
                )
        except IntegrityError:  # booked meanwhile (another agent, the queue, an offer)
            raise _already_booked(_booked_that_day(child.pk, session), session) from None
        if offer is not None:  # the held place is now this booking (the counter is unchanged)
            offer.status = WaitlistEntry.Status.ACCEPTED
            offer.save(update_fields=["status"])
        WaitlistEntry.objects.filter(child=child, session=session, status=WaitlistEntry.Status.WAITING).update(
            status=WaitlistEntry.Status.WITHDRAWN
        )
        journal_append(
            actor=actor, operation="bookings.booking.create_by_agent",
            objects=[booking, session, household, *([offer] if offer is not None else [])],
            details={"after_deadline": after, "offer_accepted": offer is not None},
            organisation_id=household.organisation_id, now=now,
        )
    return booking


# --- justifications and attendance -------------------------------------------------------------------


def justification_deadline(booking: Booking) -> dt.datetime:
    """The last moment (Paris) a justification counts: the end of the session day plus the
    activity's ``justification_days``."""
    session = booking.session
    last = session.date + dt.timedelta(days=session.activity.justification_days)
    return dt.datetime(last.year, last.month, last.day, 23, 59, 59, tzinfo=PARIS)


def justification_record(*, booking: Booking, kind: str, document, actor: Actor, now: dt.datetime) -> Justification:
    """Record a medical certificate or serious-event attestation for a booking (late
    cancellation or absence), within the activity's justification days after the session."""
    _check_now(now)
    if kind not in Justification.Kind.values:
        raise BookingError("invalid_kind", _("Choose the kind of document."), "kind")
    with transaction.atomic(durable=True):
        booking = Booking.objects.select_related("session__activity").get(pk=booking.pk)
        if now > justification_deadline(booking):
            raise BookingError(
                "justification_too_late",
                _("Too late: a justification had to be given by %(when)s.")
                % {"when": format_deadline(justification_deadline(booking), with_year=True)},
                "document",
            )
        j = Justification(
            organisation_id=booking.organisation_id, booking=booking, kind=kind, received_at=now, actor_ref=actor.ref
        )
        if document:
            j.document = document
        j.save()
        journal_append(
            actor=actor, operation="bookings.justification.record", objects=[j, booking],
            details={"kind": kind, "document": bool(document)}, organisation_id=booking.organisation_id,
            payload={"document": getattr(j.document, "name", "")}, now=now,
        )
    return j


def attendance_record(*, booking: Booking, present: bool, actor: Actor, now: dt.datetime) -> Attendance:
    _check_now(now)
    with transaction.atomic(durable=True):
        booking = Booking.objects.select_related("session").get(pk=booking.pk)
        if booking.status != Booking.Status.BOOKED:
            raise BookingError("not_booked", _("This booking was cancelled."), "booking")
        if now.astimezone(PARIS).date() < booking.session.date:
            raise BookingError("session_not_started", _("Attendance is taken on the day itself."), "booking")
        attendance, _created = Attendance.objects.update_or_create(
            booking=booking,
            defaults={"organisation_id": booking.organisation_id, "present": bool(present), "recorded_at": now,
                      "actor_ref": actor.ref},
        )
        journal_append(
            actor=actor, operation="bookings.attendance.record", objects=[attendance, booking],
            details={"present": bool(present)}, organisation_id=booking.organisation_id, now=now,
        )
    return attendance


# --- waiting lists -------------------------------------------------------------------------------------


# Once online booking reopens, a family whose offer was paused has at least this long to answer
# (or the activity's ``offer_hours`` when shorter), whatever time the offer had left.
OFFER_RESUME_MIN_HOURS = 24


def _eve_end(day: dt.date) -> dt.datetime:
    eve = day - dt.timedelta(days=1)
    return dt.datetime(eve.year, eve.month, eve.day, 23, 59, 59, tzinfo=PARIS)


def offer_expiry(session: Session, now: dt.datetime) -> dt.datetime | None:
    """Until when a place offered ``now`` is kept: ``offer_hours`` later, but never past the eve
    of the session (23:59:59, Paris): the family must know before the day whether the child
    comes, and the centre whether the place is taken. None when that moment is already past
    (the day itself: the place is not offered, an agent can still book it)."""
    expires = min(now + dt.timedelta(hours=session.activity.offer_hours), _eve_end(session.date))
    return expires if expires > now else None


def offer_resumed_expiry(
    *, expires_at: dt.datetime, paused_at: dt.datetime, now: dt.datetime, session_date: dt.date, offer_hours: int
) -> dt.datetime | None:
    """Until when an offer paused at ``paused_at`` (online booking suspended) is kept once booking
    reopens at ``now``: the time it had left when it was paused is given back (the offer is
    extended by the time booking was suspended), and never less than ``OFFER_RESUME_MIN_HOURS``
    (``offer_hours`` when shorter) from ``now``; never past the eve of the session. None when
    the eve is already past (the place is no longer offered; the counter can still book it)."""
    left = max(expires_at - paused_at, dt.timedelta(0))
    floor = dt.timedelta(hours=min(offer_hours, OFFER_RESUME_MIN_HOURS))
    until = min(now + max(left, floor), _eve_end(session_date))
    return until if until > now else None


def _booking_suspended(*, organisation_id: int, activity, now: dt.datetime) -> bool:
    """Is online booking of ``activity`` (an Activity or its id) suspended by the status board?
    No query when no gate is configured (``recovery.gates`` caches them)."""
    from guichet.recovery import gates

    return gates.gate(organisation_id=organisation_id, function="booking", now=now, activity=activity).closed


def _offer_still_open(entry: WaitlistEntry, now: dt.datetime) -> bool:
    """A paused offer has not run out (it gets its time back when booking reopens) unless the
    eve of its session is past; any other offer runs until ``offer_expires_at``."""
    if entry.offer_paused_at is not None:
        return now < _eve_end(entry.session.date)
    return not (entry.offer_expires_at and now > entry.offer_expires_at)


def _offer_next(session: Session, actor: Actor, now) -> WaitlistEntry | None:
    """Offer free places to the first waiting entries (receipt order) whose unit fits; the
    places are held for them until ``offer_expiry``. Returns the first entry offered. Inside the
    caller's transaction."""
    session = Session.objects.select_related("activity").get(pk=session.pk)
    expires = offer_expiry(session, now)
    if session.closed or expires is None:
        return None
    # Freed while online booking is suspended: the offer is paused from the start (see
    # ``waitlist_expire_offers``); the family can still take it at the counter.
    paused = _booking_suspended(organisation_id=session.organisation_id, activity=session.activity, now=now)
    first = None
    for entry in WaitlistEntry.objects.filter(session=session, status=WaitlistEntry.Status.WAITING).select_related(
        "unit"
    ).order_by("pk"):
        if not _fits(entry.unit, _free_by_part(session)):
            continue
        try:
            _take(session, entry.unit)
        except _Full:
            continue
        entry.status = WaitlistEntry.Status.OFFERED
        entry.offered_at = now
        entry.offer_expires_at = expires
        entry.offer_paused_at = now if paused else None
        entry.save(update_fields=["status", "offered_at", "offer_expires_at", "offer_paused_at"])
        journal_append(
            actor=actor, operation="bookings.waitlist.offer", objects=[entry, session],
            details={"hours": session.activity.offer_hours, "until": expires.isoformat(), "paused": paused},
            organisation_id=entry.organisation_id, now=now,
        )
        _queue_offer_mail(entry.pk)
        first = first or entry
        if session.activity.waitlist_mode == Activity.WaitlistMode.AGENT:
            break  # an agent offers one place at a time
    return first


def waitlist_offer_next(*, session: Session, actor: Actor, now: dt.datetime) -> WaitlistEntry | None:
    """Offer a free place to the first waiting family that fits (agents call this in "agent"
    mode; automatic mode calls it on every freed place). None when nobody can be offered."""
    _check_now(now)
    with transaction.atomic(durable=True):
        return _offer_next(session, actor, now)


def waitlist_accept(*, entry: WaitlistEntry, actor: Actor, now: dt.datetime) -> Booking:
    _check_now(now)
    with transaction.atomic(durable=True):
        entry = WaitlistEntry.objects.select_for_update().select_related("session", "unit").get(pk=entry.pk)
        if entry.status != WaitlistEntry.Status.OFFERED:
            raise BookingError("not_offered", _("No place is offered to you for this day."), "entry")
        if not _offer_still_open(entry, now):
            raise BookingError("offer_expired", _("This offer has expired."), "entry")
        session = entry.session
        booked = _booked_that_day(entry.child_id, session)
        if booked is None:
            try:
                with transaction.atomic():
                    booking = Booking.objects.create(
                        organisation_id=entry.organisation_id, household_id=entry.household_id,
                        child_id=entry.child_id, session=session, activity_id=session.activity_id, date=session.date,
                        unit=entry.unit, basket_id=entry.basket_id, booked_at=now, channel="waitlist",
                        actor_ref=actor.ref,
                    )
            except IntegrityError:  # booked meanwhile (an agent, the queue)
                booked = _booked_that_day(entry.child_id, session) or session.pk
        if booked is not None:
            # The offer stays open (the place stays held until it expires or is declined): the
            # family may cancel the other booking, then accept this place, or decline it.
            if booked != session.pk:
                raise BookingError(
                    "already_booked_elsewhere",
                    _("This child is already booked at another centre on this day: cancel that booking "
                      "first to take this place, or decline it."),
                    "entry",
                )
            raise _already_booked(booked, session, "entry")
        entry.status = WaitlistEntry.Status.ACCEPTED
        entry.save(update_fields=["status"])
        journal_append(
            actor=actor, operation="bookings.waitlist.accept", objects=[entry, booking],
            organisation_id=entry.organisation_id, now=now,
        )
    return booking


def _give_back(entry: WaitlistEntry, status: str, actor: Actor, now, operation: str) -> WaitlistEntry:
    was_offered = entry.status == WaitlistEntry.Status.OFFERED
    entry.status = status
    entry.save(update_fields=["status"])
    journal_append(actor=actor, operation=operation, objects=[entry], details={"was_offered": was_offered},
                   organisation_id=entry.organisation_id, now=now)
    if was_offered:
        _release(entry.session, entry.unit)
        if entry.session.activity.waitlist_mode == Activity.WaitlistMode.AUTOMATIC:
            _offer_next(entry.session, actor, now)
    return entry


def waitlist_decline(*, entry: WaitlistEntry, actor: Actor, now: dt.datetime) -> WaitlistEntry:
    """Decline an offered place (it goes to the next family) or leave the waiting list."""
    _check_now(now)
    with transaction.atomic(durable=True):
        entry = WaitlistEntry.objects.select_for_update().select_related("session__activity", "unit").get(pk=entry.pk)
        if entry.status == WaitlistEntry.Status.OFFERED:
            return _give_back(entry, WaitlistEntry.Status.DECLINED, actor, now, "bookings.waitlist.decline")
        if entry.status == WaitlistEntry.Status.WAITING:
            return _give_back(entry, WaitlistEntry.Status.WITHDRAWN, actor, now, "bookings.waitlist.withdraw")
        raise BookingError("not_waiting", _("This request is no longer on the waiting list."), "entry")


@dataclass(frozen=True)
class OfferSweep:
    """What one run of ``waitlist_expire_offers`` did: offers expired, paused, resumed."""

    expired: int = 0
    paused: int = 0
    resumed: int = 0


def waitlist_expire_offers(*, now: dt.datetime, actor: Actor) -> OfferSweep:
    """Expire the offers not accepted in time: their places go back (and, in automatic mode,
    to the next family). One transaction per offer. Returns how many offers it expired, paused
    and resumed.

    An offer does not run out while online booking of its activity is suspended (degraded mode:
    the status board's gate is closed), since the family cannot accept it through no fault of
    its own: it is *paused* (``offer_paused_at``). When booking reopens, the next run gives it
    back the time it had left, at least ``OFFER_RESUME_MIN_HOURS`` (``offer_hours`` if shorter),
    never past the eve of the session, and e-mails the family the new time limit. Run every few
    minutes: a pause or a reopening is seen at the next run."""
    _check_now(now)
    expired = paused_count = resumed = 0
    rows = list(
        WaitlistEntry.objects.filter(status=WaitlistEntry.Status.OFFERED)
        .order_by("offer_expires_at", "pk")
        .values_list("pk", "organisation_id", "session__activity_id", "session__date", "offer_expires_at",
                     "offer_paused_at")
    )
    suspended: dict[tuple[int, int], bool] = {}
    for pk, organisation_id, activity_id, day, expires, paused in rows:
        if (organisation_id, activity_id) not in suspended:
            suspended[(organisation_id, activity_id)] = _booking_suspended(
                organisation_id=organisation_id, activity=activity_id, now=now)
        closed = suspended[(organisation_id, activity_id)]
        eve_past = now >= _eve_end(day)
        if closed and not eve_past and paused is not None:
            continue  # paused already
        if not closed and paused is None and (expires is None or expires >= now):
            continue  # running, still in time
        with transaction.atomic(durable=True):
            entry = (
                WaitlistEntry.objects.select_for_update().select_related("session__activity", "unit")
                .filter(pk=pk, status=WaitlistEntry.Status.OFFERED).first()
            )
            if entry is None:
                continue
            if closed and not eve_past:
                _offer_pause(entry, actor, now)
                paused_count += 1
            elif not closed and entry.offer_paused_at is not None and not eve_past:
                _offer_resume(entry, actor, now)
                resumed += 1
            elif eve_past or (entry.offer_expires_at is not None and entry.offer_expires_at < now):
                _give_back(entry, WaitlistEntry.Status.EXPIRED, actor, now, "bookings.waitlist.expire")
                expired += 1
    return OfferSweep(expired=expired, paused=paused_count, resumed=resumed)


def _offer_pause(entry: WaitlistEntry, actor: Actor, now: dt.datetime) -> None:
    entry.offer_paused_at = now
    entry.save(update_fields=["offer_paused_at"])
    journal_append(actor=actor, operation="bookings.waitlist.offer_pause", objects=[entry],
                   details={"until_was": entry.offer_expires_at.isoformat() if entry.offer_expires_at else None},
                   organisation_id=entry.organisation_id, now=now)


def _offer_resume(entry: WaitlistEntry, actor: Actor, now: dt.datetime) -> None:
    until = offer_resumed_expiry(
        expires_at=entry.offer_expires_at or entry.offer_paused_at, paused_at=entry.offer_paused_at, now=now,
        session_date=entry.session.date, offer_hours=entry.session.activity.offer_hours,
    )
    paused_since = entry.offer_paused_at
    entry.offer_expires_at, entry.offer_paused_at = until, None
    entry.save(update_fields=["offer_expires_at", "offer_paused_at"])
    journal_append(actor=actor, operation="bookings.waitlist.offer_resume", objects=[entry],
                   details={"paused_since": paused_since.isoformat(), "until": until.isoformat()},
                   organisation_id=entry.organisation_id, now=now)
    _queue_offer_mail(entry.pk)  # the family is told its new time limit
