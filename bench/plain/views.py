"""``POST`` a week-basket, the plain Django way: no queue, no raw SQL, no pool tricks.

Same request as Guichet's ``POST /api/v1/bookings/baskets``: a signed-in guardian (session
cookie; Django's CSRF middleware checks ``X-CSRFToken``), an ``Idempotency-Key`` header and a
JSON body ``{"mode": "all_or_nothing" | "partial", "items": [{"child", "session", "unit"}]}``.

1. Everything but capacity is checked with a few read queries (the child is the family's, the
   day exists and is open, the window is open, the deadline has not passed, the unit is offered,
   the child is not booked elsewhere that day, nothing asked twice).
2. One ``transaction.atomic()``: the session parts concerned are locked with
   ``select_for_update()`` in primary-key order (no deadlock between two baskets), the basket is
   created (its primary key, taken while the locks are held, is its turn: first come, first
   served), capacity is decided, the bookings and waiting-list entries are inserted in bulk, the
   counters written, the answer stored on the basket.
3. ``200 {"status": "done", "basket", "items": [{..., "outcome": booked|waitlisted|refused}]}``.

A retry with the same key answers the stored basket (looked up first; the unique constraint
settles two concurrent retries). A deadlock or serialization failure retries the transaction
a few times, then answers 503 + ``Retry-After`` (nothing stored): never a 500.

Not done, on purpose (the rush never needs them, and they would only slow this reference down):
waiting families' priority over a newcomer when a place frees up, and withdrawing a child's own
waiting entry when the child gets booked.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections import Counter, defaultdict

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Count
from django.http import JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from guichet.bookings.deadlines import RuleError, is_before_deadline, parse_rule
from guichet.bookings.models import (
    Basket,
    Booking,
    Child,
    Guardian,
    RegistrationWindow,
    Session,
    SessionPart,
    Unit,
    WaitlistEntry,
)

MAX_ITEMS = 100
MAX_KEY_LENGTH = 100
MAX_ID = 2**53
ATTEMPTS = 5  # a deadlock or serialization failure: the whole transaction again, then 503
RETRY_AFTER = 1


def _error(status: int, path: str, message: str, code: str, **headers) -> JsonResponse:
    response = JsonResponse({"errors": [{"path": path, "message": str(message), "code": code}]}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _busy() -> JsonResponse:
    return _error(503, "", _("The server is busy; try again in a moment."), "busy", Retry_After=str(RETRY_AFTER))


def login_required_json(view):
    """``@login_required`` for a JSON endpoint: 401 rather than a redirect to the login page."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _error(401, "", _("Sign in first."), "unauthorized")
        return view(request, *args, **kwargs)

    return wrapper


class BadRequest(Exception):
    def __init__(self, path: str, message: str, code: str):
        super().__init__(message)
        self.path, self.message, self.code = path, message, code


def _int(value, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise BadRequest(path, _("Each day must name a child, a day and a choice."), "invalid_item")
    return value


def parse_body(raw: bytes) -> tuple[str, list[dict]]:
    """The request body, checked as strictly as Guichet's schema; raises ``BadRequest``."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body", _("The request body is not valid JSON."), "invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("body", _("The request body is not valid JSON."), "invalid_json")
    mode = data.get("mode")
    if mode not in Basket.Mode.values:
        raise BadRequest("mode", _("Choose what to do if some days are full."), "invalid_mode")
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise BadRequest("items", _("Choose at least one day."), "empty_basket")
    if len(items) > MAX_ITEMS:
        raise BadRequest("items", _("At most %(n)s days in one request.") % {"n": MAX_ITEMS}, "too_many_items")
    cleaned = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"items[{i}]", _("Each day must name a child, a day and a choice."), "invalid_item")
        unit = item.get("unit")
        if not isinstance(unit, str) or not 1 <= len(unit) <= 50:
            raise BadRequest(f"items[{i}].unit", _("Choose what to book for this day."), "invalid_item")
        cleaned.append({"child": _int(item.get("child"), f"items[{i}].child"),
                        "session": _int(item.get("session"), f"items[{i}].session"), "unit": unit})
    return mode, cleaned


class Line:
    """One item of the basket and its outcome."""

    def __init__(self, item: dict):
        self.child, self.session, self.unit = item["child"], item["session"], item["unit"]
        self.outcome, self.code, self.message = "refused", "", ""
        self.booking = self.waitlist = self.position = None
        self.session_obj: Session | None = None
        self.unit_obj: Unit | None = None

    def refuse(self, code: str, message: str) -> None:
        self.outcome, self.code, self.message = "refused", code, str(message)

    def as_dict(self) -> dict:
        return {"child": self.child, "session": self.session, "unit": self.unit, "outcome": self.outcome,
                "code": self.code, "message": self.message, "booking": self.booking, "waitlist": self.waitlist,
                "position": self.position}


def _rule(text: str):
    try:
        return parse_rule(text)
    except RuleError:
        return None


def _check(household, lines: list[Line], now) -> list[Line]:
    """Everything but capacity, with one query per kind of thing; returns the lines still in."""
    children = set(Child.objects.filter(household=household, pk__in={ln.child for ln in lines})
                   .values_list("pk", flat=True))
    sessions = Session.objects.select_related("activity").filter(
        organisation_id=household.organisation_id).in_bulk({ln.session for ln in lines})
    activities = {s.activity_id for s in sessions.values()}
    dates = {s.date for s in sessions.values()}
    units = {(u.activity_id, u.code): u
             for u in Unit.objects.filter(activity_id__in=activities, code__in={ln.unit for ln in lines})}
    windows = list(RegistrationWindow.objects.filter(activity_id__in=activities).order_by("opens_at", "pk"))
    booked = set(Booking.objects.filter(child_id__in=children, activity_id__in=activities, date__in=dates,
                                        status=Booking.Status.BOOKED)
                 .values_list("child_id", "activity_id", "date"))
    seen: set = set()
    ok = []
    for ln in lines:
        session = sessions.get(ln.session)
        if ln.child not in children:
            ln.refuse("not_your_child", _("This child is not part of your household."))
            continue
        if session is None:
            ln.refuse("unknown_session", _("This day does not exist."))
            continue
        day = (ln.child, session.activity_id, session.date)
        if (ln.child, session.pk) in seen:
            ln.refuse("duplicate", _("This day is asked twice for the same child."))
            continue
        if day in seen:
            ln.refuse("duplicate_day", _("This child is asked at two centres on the same day: choose one."))
            continue
        seen.update([(ln.child, session.pk), day])
        unit = units.get((session.activity_id, ln.unit))
        if unit is None or not unit.parts:
            ln.refuse("unit_not_offered", _("This choice is not offered for this day."))
            continue
        if session.closed:
            ln.refuse("session_closed", _("The centre is closed on this day."))
            continue
        if day in booked:
            ln.refuse("already_booked", _("This child is already booked on this day."))
            continue
        window = next((w for w in windows if w.activity_id == session.activity_id
                       and w.first_date <= session.date <= w.last_date), None)
        if window is not None:
            opens = window.opens_at
            if household.resident and window.residents_open_at and window.residents_open_at < opens:
                opens = window.residents_open_at
            if now < opens:
                ln.refuse("window_not_open", _("Bookings for this period are not open yet."))
                continue
            if window.closes_at and now > window.closes_at:
                ln.refuse("window_closed", _("Bookings for this period are closed."))
                continue
        rule = _rule(session.activity.booking_rule)
        if rule is None or not is_before_deadline(rule, session.date, now):
            ln.refuse("deadline_passed", _("Bookings are closed for this day."))
            continue
        ln.session_obj, ln.unit_obj = session, unit
        ok.append(ln)
    return ok


def _allocate(household, mode: str, items: list[dict], key: str, actor_ref: str, now) -> Basket:
    lines = [Line(item) for item in items]
    ok = _check(household, lines, now)
    with transaction.atomic():
        # The places of every part concerned, locked in primary-key order (LockRows runs above
        # the sort): two baskets wanting the same days queue on the first part they share.
        parts = {(p.session_id, p.part): p for p in SessionPart.objects.select_for_update().filter(
            session_id__in={ln.session for ln in ok},
            part__in={part for ln in ok for part in ln.unit_obj.parts},
        ).order_by("pk")}
        basket = Basket.objects.create(
            organisation_id=household.organisation_id, household=household, idempotency_key=key, mode=mode,
            items=items, received_at=now, channel="api", actor_ref=actor_ref,
        )
        for ln in list(ok):
            if any((ln.session, part) not in parts for part in ln.unit_obj.parts):
                ln.refuse("unit_not_offered", _("This choice is not offered for this day."))
                ok.remove(ln)

        free = {k: p.capacity - p.booked for k, p in parts.items()}

        def take(ln: Line) -> bool:
            """Counts the line's places against ``free`` if they are all there."""
            keys = [(ln.session, part) for part in ln.unit_obj.parts]
            if any(free[k] <= 0 for k in keys):
                return False
            for k in keys:
                free[k] -= 1
            return True

        to_book: list[Line] = []
        to_wait: list[Line] = []
        if mode == Basket.Mode.ALL_OR_NOTHING:
            incomplete = _("Not booked: another day of this request is full or refused (you chose all or "
                           "nothing).")
            full = [] if len(ok) == len(lines) else ok
            if not full:
                full = [ln for ln in ok if not take(ln)]
            if full:
                for ln in ok:
                    if ln in full and len(ok) == len(lines):
                        ln.refuse("full", _("No place left on this day. You chose all or nothing: nothing was "
                                            "booked and nothing was put on the waiting list."))
                    else:
                        ln.refuse("basket_incomplete", incomplete)
            else:
                to_book = ok
        else:
            for ln in ok:
                (to_book if take(ln) else to_wait).append(ln)

        bookings = Booking.objects.bulk_create([
            Booking(organisation_id=household.organisation_id, household=household, child_id=ln.child,
                    session=ln.session_obj, activity_id=ln.session_obj.activity_id, date=ln.session_obj.date,
                    unit=ln.unit_obj, basket=basket, booked_at=now, channel="api", actor_ref=actor_ref)
            for ln in to_book
        ])
        for ln, booking in zip(to_book, bookings, strict=True):
            ln.outcome, ln.code, ln.message, ln.booking = "booked", "booked", _("Booked."), booking.pk
        if to_book:
            changed = [p for k, p in parts.items() if free[k] != p.capacity - p.booked]
            for p in changed:
                p.booked = p.capacity - free[(p.session_id, p.part)]
            SessionPart.objects.bulk_update(changed, ["booked"])
        if to_wait:
            entries = WaitlistEntry.objects.bulk_create([
                WaitlistEntry(organisation_id=household.organisation_id, household=household, child_id=ln.child,
                              session=ln.session_obj, unit=ln.unit_obj, basket=basket, requested_at=now)
                for ln in to_wait
            ])
            # Places in line: those already waiting (committed before this basket took the
            # lock), then this basket's own entries in order.
            ahead = Counter({row["session_id"]: row["n"] for row in WaitlistEntry.objects.filter(
                session_id__in={ln.session for ln in to_wait}, status=WaitlistEntry.Status.WAITING,
            ).exclude(basket=basket).values("session_id").annotate(n=Count("id"))})
            mine: defaultdict[int, int] = defaultdict(int)
            for ln, entry in zip(to_wait, entries, strict=True):
                mine[ln.session] += 1
                ln.outcome, ln.code, ln.waitlist = "waitlisted", "full", entry.pk
                ln.position = ahead[ln.session] + mine[ln.session]
                ln.message = _("No place left: on the waiting list, position %(position)s.") % {
                    "position": ln.position}
        basket.result = {"items": [ln.as_dict() for ln in lines]}
        basket.status, basket.answered_at = Basket.Status.DONE, timezone.now()
        basket.save(update_fields=["result", "status", "answered_at"])
    return basket


def _answer(basket: Basket) -> JsonResponse:
    if basket.status != Basket.Status.DONE:  # received by Guichet's own queue under this key
        return _error(409, "Idempotency-Key", _("This request is being answered elsewhere."), "conflict")
    return JsonResponse({"status": "done", "basket": basket.pk, "received_at": basket.received_at.isoformat(),
                         "mode": basket.mode, "items": (basket.result or {}).get("items", [])})


def _retryable(exc: OperationalError) -> bool:
    """A deadlock, a serialization failure or a lock timeout: the transaction may be run again."""
    return getattr(exc.__cause__, "sqlstate", None) in {"40P01", "40001", "55P03"}


@require_POST
@login_required_json
def basket_post(request):
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        return _error(422, "Idempotency-Key", _("The Idempotency-Key header is required (1 to 100 characters)."),
                      "invalid_key")
    try:
        mode, items = parse_body(request.body)
    except BadRequest as exc:
        return _error(422, exc.path, exc.message, exc.code)
    guardian = Guardian.objects.select_related("household").filter(user=request.user).order_by("pk").first()
    if guardian is None:
        return _error(404, "household", _("No family file is linked to this account."), "not_found")
    household = guardian.household
    try:
        existing = Basket.objects.filter(household=household, idempotency_key=key).first()
        if existing is not None:  # a retry: the same answer, nothing booked twice
            return _answer(existing)
        for attempt in range(ATTEMPTS):
            try:
                basket = _allocate(household, mode, items, key, f"user:{request.user.pk}", timezone.now())
            except IntegrityError:
                # The same key committed meanwhile (a concurrent retry): that one is the answer.
                # Otherwise the child was booked meanwhile by another request: checked again.
                existing = Basket.objects.filter(household=household, idempotency_key=key).first()
                if existing is not None:
                    return _answer(existing)
            except OperationalError as exc:
                if not _retryable(exc):
                    return _busy()
            else:
                return _answer(basket)
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not a secret
    except OperationalError:  # the database is unreachable or saturated: busy, not a 500
        return _busy()
    return _busy()
