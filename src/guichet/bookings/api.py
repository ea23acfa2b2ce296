"""The bookings JSON API, mounted on the project's API at ``/api/v1/bookings/`` (OpenAPI schema at
``/api/v1/openapi.json``).

Authentication: the browser session (with the CSRF header ``X-CSRFToken`` on writes) or
``Authorization: Bearer <token>`` (an ``accounts.ApiToken`` of a guardian's or an agent's
account). Families reach only their own household (404 otherwise). Agents (``AgentRole``) reach
the households, sessions and bookings of their organisations.

Errors: ``{"errors": [{"path", "message", "code"}]}``; never a 500 for bad input.

Baskets (``POST /baskets``, header ``Idempotency-Key`` required):
- 200 ``{"status": "done", "basket", "items": [...]}``: the definitive answer;
- 202 ``{"status": "received", "basket", "poll"}``: received, answer pending: GET ``poll`` after
  ``Retry-After`` seconds (a poll only reads; the process's drainer answers, see ``intake``);
  That is also the answer when the server is saturated ("busy, your place in line is kept"):
  the receipt needs no waiting slot, only waiting for the answer does;
- 503 + ``Retry-After``: the database could not take the request (nothing received): send the
  same request again, with the same key.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

from django.db import OperationalError
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from ninja import Field, Header, Query, Router, Schema
from ninja.security import django_auth

from guichet.accounts import sessions
from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.common.fastread import read_one
from guichet.recovery import gates
from guichet.status.api import bearer

from . import households, intake, selectors, services
from .models import (
    AgentRole,
    Attendance,
    Basket,
    Booking,
    Child,
    Guardian,
    Household,
    Session,
    Site,
    Unit,
    WaitlistEntry,
)
from .present import PARIS, booking_facts, state_label
from .present import elsewhere as present_elsewhere

router = Router(tags=["bookings"], auth=[bearer, django_auth])

MAX_DAYS = 93


# --- Errors ----------------------------------------------------------------------------------------


class ErrorItem(Schema):
    path: str = Field(description="The field at fault, e.g. `items[2].unit`, `Idempotency-Key`, `from`.")
    message: str
    code: str = Field(description="Stable code, e.g. `deadline_passed`, `full`, `not_found`, `busy`.")


class ErrorOut(Schema):
    errors: list[ErrorItem]


def _errors(request, http_status: int, path: str, message: str, code: str, headers: dict | None = None, **extra):
    from guichet.status.api import api

    body = {"errors": [{"path": path, "message": str(message), "code": code}], **extra}
    response = api.create_response(request, body, status=http_status)
    for k, v in (headers or {}).items():
        response[k] = v
    return response


class Problem(Exception):
    def __init__(self, status: int, path: str, message: str, code: str):
        super().__init__(message)
        self.status, self.path, self.message, self.code = status, path, message, code


def _problem(request, exc: Problem):
    return _errors(request, exc.status, exc.path, exc.message, exc.code)


def _booking_error(exc: services.BookingError, prefix: str = "") -> Problem:
    path = exc.field or "body"
    if prefix and exc.field and not exc.field.startswith("items"):
        path = f"{prefix}.{exc.field}"
    return Problem(422 if exc.code not in ("not_found",) else 404, path, exc.message, exc.code)


def handle(fn):
    """Maps Problem and BookingError to the error shape (ninja's handlers are per API object,
    which the status board owns)."""
    import functools

    @functools.wraps(fn)
    def wrapper(request, *args, **kwargs):
        try:
            return fn(request, *args, **kwargs)
        except Problem as exc:
            return _problem(request, exc)
        except services.BookingError as exc:
            return _problem(request, _booking_error(exc))
        except OperationalError:  # database saturated (lock timeout...): busy, not a 500
            response = _errors(request, 503, "", "The server is busy; try again in a moment.", "busy",
                               headers={"Retry-After": str(intake.RETRY_AFTER)})
            return intake.busy_logged(response, what="booking API: database busy", level=logging.WARNING)

    return wrapper


# --- Who is asking -----------------------------------------------------------------------------


def _household(request) -> Household:
    guardian = Guardian.objects.select_related("household").filter(user=request.auth).order_by("pk").first()
    if guardian is None:
        raise Problem(404, "household", "No family file is linked to this account.", "not_found")
    return guardian.household


# The two requests of the opening rush (a basket, its poll) read the household and the basket
# with plain SQL (``common.fastread``): the ORM would spend more time building each query than
# the database spends answering it (docs/benchmarks.md).


def _family_household(request) -> Household:
    """``_household``, with only the household's id and organisation loaded: read with the
    session when the request signed in with one (``selectors.FAMILY_HOUSEHOLD``), else on its own."""
    household = sessions.preloaded_value(getattr(request, "session", None), request.auth,
                                        selectors.FAMILY_HOUSEHOLD)
    if household is sessions.NOT_READ:
        household = selectors.family_household(request.auth)
    if household is None:
        raise Problem(404, "household", "No family file is linked to this account.", "not_found")
    return household


_BASKET_FIELDS = ("id", "organisation", "household", "mode", "status", "result", "received_at", "answered_at")


def _family_basket(request, basket_id: int) -> Basket | None:
    """The basket, if it belongs to a household of which the signed-in account is a guardian."""

    def build(qn, columns):
        b, g = Basket._meta, Guardian._meta
        basket, guardian = qn(b.db_table), qn(g.db_table)
        household = qn(b.get_field("household").column)
        # Identifiers from the models, quoted; values are parameters.
        return " ".join([
            f"SELECT {columns} FROM {basket} WHERE {basket}.{qn(b.pk.column)} = %s",  # noqa: S608
            f"AND EXISTS (SELECT 1 FROM {guardian}",  # noqa: S608
            f"WHERE {guardian}.{qn(g.get_field('household').column)} = {basket}.{household}",
            f"AND {guardian}.{qn(g.get_field('user').column)} = %s)",
        ])

    return read_one(Basket, "family-basket", build, [basket_id, request.auth.pk], fields=_BASKET_FIELDS)


def _agent_orgs(request) -> list[int]:
    user = request.auth
    if getattr(user, "is_superuser", False):
        return list(Organisation.objects.values_list("pk", flat=True))
    orgs = list(AgentRole.objects.filter(user=user).values_list("organisation_id", flat=True).distinct())
    if not orgs:
        raise Problem(403, "Authorization", "This account may not act for families.", "forbidden")
    return orgs


def _agent_sites(request, org_ids) -> set[int] | None:
    user = request.auth
    if getattr(user, "is_superuser", False):
        return None
    roles = list(AgentRole.objects.filter(user=user, organisation_id__in=org_ids))
    if any(r.site_id is None for r in roles):
        return None
    return {r.site_id for r in roles}


def _actor(request, channel="api") -> Actor:
    return Actor.for_user(request.auth, channel)


# --- Schemas ---------------------------------------------------------------------------------------


class ChildOut(Schema):
    id: int
    first_name: str
    birth_date: dt.date
    school: str


class HouseholdOut(Schema):
    id: int
    reference: str
    display_name: str
    postal_address: str = Field(description=(
        "The postal address printed on invoices under `display_name`: at most 5 lines of at most 38 "
        "characters, separated by `\\n` (street, then postcode and town). Empty when none is on file "
        "(invoices are then printed without one)."))
    children: list[ChildOut]


class HouseholdAddressIn(Schema):
    postal_address: str = Field(max_length=1000, description=(
        "The new postal address, one line per address line separated by `\\n` (at most 5 lines of at "
        "most 38 characters once spaces are tidied; no tabs or control characters). Empty removes it."))


class HouseholdAddressOut(Schema):
    postal_address: str = Field(description="The address as stored (lines tidied, blank lines dropped).")
    changed: bool = Field(description="False when the address was already this one (nothing recorded).")


class UnitOut(Schema):
    code: str
    name: str
    free: int | None = None


class BookedElsewhereOut(Schema):
    session: int = Field(description="The session the child is booked in that day, at another centre.")
    site: str = Field(description="That centre's name.")
    booking: int = Field(description="The booking there (cancel it to book this centre instead).")


class CalendarSession(Schema):
    session: int
    date: dt.date
    activity: str
    site: str
    state: str = Field(description=(
        "booked, waitlisted, offered, free, full, closed, deadline_passed, not_open, or booked_elsewhere: "
        "the child is already booked at another centre of the same activity that day (one place a day), "
        "so this one cannot be booked; `booked_elsewhere` says where. A waiting list or an offer here "
        "keeps its state (and `booked_elsewhere` too): an offer can be accepted only once the other "
        "booking is cancelled."))
    state_label: str
    position: int | None = None
    booking: int | None = None
    waitlist: int | None = None
    offer_expires_at: dt.datetime | None = Field(None, description=(
        "Until when an offered place is kept. While `offer_paused` is true this time does not run: "
        "it is the limit the offer had when it was paused."))
    offer_paused: bool = Field(False, description=(
        "An offer paused while online booking is suspended on the status board: it does not expire "
        "meanwhile, and once booking reopens it gets its time back (at least 24 hours, or the "
        "activity's offer time if shorter, never past the eve of the session). It can be accepted at "
        "the counter meanwhile."))
    booked_elsewhere: BookedElsewhereOut | None = Field(None, description=(
        "Where the child is booked that day for the same activity, when at another centre."))
    units: list[UnitOut]
    booking_deadline: dt.datetime | None = None
    booking_deadline_text: str = ""
    cancellation_deadline: dt.datetime | None = None
    cancellation_deadline_text: str = ""


class ChildCalendarOut(Schema):
    child: int
    first_name: str
    sessions: list[CalendarSession]


class CalendarOut(Schema):
    date_from: dt.date = Field(alias="from")
    date_to: dt.date = Field(alias="to")
    children: list[ChildCalendarOut]


class CalendarQuery(Schema):
    date_from: dt.date | None = Field(None, alias="from", description="First day (default: today).")
    date_to: dt.date | None = Field(None, alias="to", description="Last day (default: 31 days later; at most 93).")


class BasketItemIn(Schema):
    child: int = Field(ge=1, le=2**53)
    session: int = Field(ge=1, le=2**53)
    unit: str = Field(min_length=1, max_length=50)


class BasketIn(Schema):
    mode: Literal["all_or_nothing", "partial"]
    items: list[BasketItemIn] = Field(min_length=1, max_length=services.MAX_ITEMS)


class BasketItemOut(Schema):
    child: int
    session: int
    unit: str
    outcome: str = Field(description="booked, waitlisted or refused")
    code: str = ""
    message: str = ""
    booking: int | None = None
    waitlist: int | None = None
    position: int | None = None


class BasketOut(Schema):
    status: str = Field(description="`done` (answered) or `received` (in line: poll)")
    basket: int
    received_at: dt.datetime
    mode: str
    poll: str
    items: list[BasketItemOut] = []


class CancelOut(Schema):
    booking: int
    status: str
    late: bool
    billable: bool
    justification_deadline: dt.datetime | None = None
    message: str


class WaitlistAnswerOut(Schema):
    waitlist: int
    status: str = Field(description="accepted or declined")
    booking: int | None = None
    message: str


class AgentBookIn(Schema):
    household: str = Field(description="The family file number (reference).", min_length=1, max_length=30)
    child: int = Field(ge=1, le=2**53)
    session: int = Field(ge=1, le=2**53)
    unit: str = Field(min_length=1, max_length=50)
    reason: str = Field("", max_length=300, description="Required after the booking deadline.")


class BookingOut(Schema):
    booking: int
    child: int
    session: int
    unit: str
    status: str
    after_deadline: bool
    reason: str


class AttendanceRow(Schema):
    booking: int
    child: int
    first_name: str
    household: str
    activity: str
    unit: str
    present: bool | None = None


class AttendanceOut(Schema):
    site: int
    date: dt.date
    rows: list[AttendanceRow]


class AttendanceItem(Schema):
    booking: int = Field(ge=1, le=2**53)
    present: bool


class AttendanceIn(Schema):
    items: list[AttendanceItem] = Field(min_length=1, max_length=500)


class FillRateOut(Schema):
    session: int
    site: str
    date: dt.date
    part: str
    capacity: int
    booked: int
    waiting: int
    closed: bool


# --- Families ---------------------------------------------------------------------------------------


@router.get("/households/me", response={200: HouseholdOut, 404: ErrorOut}, summary="My household and children")
@handle
def household_me(request):
    hh = _household(request)
    children = Child.objects.filter(household=hh).order_by("birth_date", "pk")
    return {
        "id": hh.pk, "reference": hh.reference, "display_name": hh.display_name,
        "postal_address": hh.postal_address,
        "children": [{"id": c.pk, "first_name": c.first_name, "birth_date": c.birth_date, "school": c.school}
                     for c in children],
    }


@router.put(
    "/households/me/address", response={200: HouseholdAddressOut, 404: ErrorOut, 422: ErrorOut},
    summary="Change my household's postal address (printed on invoices)",
    description=(
        "The same rules as the family portal's address page. 422 `invalid_address` (path "
        "`postal_address`): too many lines, a line too long, or control characters; nothing is "
        "changed. A change is recorded in the journal (a keyed digest, never the address itself)."
    ),
)
@handle
def household_address(request, payload: HouseholdAddressIn):
    hh = _household(request)
    try:
        changed = households.household_address_set(
            household=hh, postal_address=payload.postal_address, actor=_actor(request))
    except households.HouseholdError as exc:
        status, code = (404, "not_found") if exc.field == "household" else (422, "invalid_address")
        raise Problem(status, exc.field, exc.message, code) from None
    return {"postal_address": hh.postal_address, "changed": changed}


@router.get(
    "/households/me/calendar", response={200: CalendarOut, 404: ErrorOut, 422: ErrorOut},
    summary="Each child's sessions with their state and deadlines", by_alias=True,
)
@handle
def household_calendar(request, q: Query[CalendarQuery]):
    hh = _household(request)
    now = timezone.now()
    first = q.date_from or now.astimezone(PARIS).date()
    last = q.date_to or first + dt.timedelta(days=31)
    if last < first:
        raise Problem(422, "to", "`to` must not be before `from`.", "invalid_range")
    if (last - first).days > MAX_DAYS:
        raise Problem(422, "to", f"At most {MAX_DAYS} days at once.", "range_too_long")
    children = []
    for cal in selectors.household_calendar(household=hh, date_from=first, date_to=last, now=now):
        sessions = []
        # As the family's calendar page says (one place a day).
        for c, (elsewhere, state) in zip(cal.cells, present_elsewhere(cal.cells), strict=True):
            s = c.session
            sessions.append({
                "session": s.pk, "date": s.date, "activity": s.activity.name, "site": s.site.name,
                "state": state, "state_label": state_label(state), "position": c.position,
                "booking": c.booking.pk if c.booking else None, "waitlist": c.waitlist.pk if c.waitlist else None,
                "offer_expires_at": getattr(c.waitlist, "offer_expires_at", None),
                "offer_paused": c.state == "offered" and getattr(c.waitlist, "offer_paused_at", None) is not None,
                "booked_elsewhere": None if elsewhere is None else {
                    "session": elsewhere.session.pk, "site": elsewhere.session.site.name,
                    "booking": elsewhere.booking.pk},
                "units": [{"code": u.code, "name": u.name, "free": c.free.get(u.code)} for u in c.units],
                "booking_deadline": c.booking_deadline, "booking_deadline_text": c.booking_deadline_text,
                "cancellation_deadline": c.cancellation_deadline,
                "cancellation_deadline_text": c.cancellation_deadline_text,
            })
        children.append({"child": cal.child.pk, "first_name": cal.child.first_name, "sessions": sessions})
    return {"from": first, "to": last, "children": children}


_POLL_PATHS: dict[str, tuple[str, str]] = {}
_ANY_PK = 918273645546372819


def _poll_path(pk: int) -> str:
    """``reverse("api:basket_get", args=[pk])``, reversed once per script prefix (a site served
    under a path): every answer carries it."""
    prefix = get_script_prefix()
    parts = _POLL_PATHS.get(prefix)
    if parts is None:
        head, _, tail = reverse("api:basket_get", args=[_ANY_PK]).rpartition(str(_ANY_PK))
        parts = _POLL_PATHS[prefix] = (head, tail)
    return f"{parts[0]}{int(pk)}{parts[1]}"


def _basket_body(request, basket: Basket, state: str) -> dict:
    poll = request.build_absolute_uri(_poll_path(basket.pk))
    items = (basket.result or {}).get("items", []) if state == "done" else []
    return {
        "status": "done" if state == "done" else "received", "basket": basket.pk,
        "received_at": basket.received_at, "mode": basket.mode, "poll": poll, "items": items,
    }


def _answer_response(request, basket: Basket, state: str):
    """200 with the answer; otherwise the basket is received and keeps its place in line: 202
    with ``Retry-After`` (about when its turn comes) and the URL to poll. A full house (every
    waiting slot taken) is not an error: the receipt did not need a slot, only waiting did."""
    if state == "done":  # the answer as stored (checked when written): no second validation
        from guichet.status.api import api

        return api.create_response(request, _basket_body(request, basket, state), status=200)
    return _basket_response_202(request, basket)


def _basket_response_202(request, basket):
    from guichet.status.api import api

    body = _basket_body(request, basket, "received")
    response = api.create_response(request, body, status=202)
    response["Retry-After"] = str(intake.retry_after(basket))  # about when its turn should come
    response["Location"] = body["poll"]
    return response


@router.post(
    "/baskets", response={200: BasketOut, 202: BasketOut, 404: ErrorOut, 422: ErrorOut, 503: ErrorOut},
    summary="Book a basket (several days, several children)",
    description=(
        "Send the same `Idempotency-Key` to retry: the same basket is answered, never twice. "
        "200: answered. 202: received, in line (also when the server is busy): GET `poll` after "
        "`Retry-After` seconds. 503 + `Retry-After`: nothing received: retry with the same key."
    ),
)
@handle
def basket_post(request, payload: BasketIn, idempotency_key: str = Header(
    None, alias="Idempotency-Key", description="1 to 100 characters, unique per request of the family.")):
    key = (idempotency_key or "").strip()
    if not key or len(key) > services.MAX_KEY_LENGTH:
        raise Problem(422, "Idempotency-Key", "The Idempotency-Key header is required (1 to 100 characters).",
                      "invalid_key")
    hh = _family_household(request)
    items = [i.dict() for i in payload.items]
    closed = gates.basket_gate(household=hh, items=items, now=timezone.now(), idempotency_key=key)
    if closed:  # suspended on the status board: nothing is received
        return intake.busy_logged(_errors(request, 503, "items", closed.message, closed.code, **closed.as_api()),
                                  what="booking API: booking suspended on the status board")
    try:
        outcome = intake.submit(
            household=hh, items=items, mode=payload.mode, actor=_actor(request), idempotency_key=key,
            channel="api", wait=intake.answer_wait(),
        )
    except services.BookingError as exc:
        raise _booking_error(exc) from None
    return _answer_response(request, outcome.basket, outcome.state)


@router.get(
    "/baskets/{basket_id}", response={200: BasketOut, 202: BasketOut, 404: ErrorOut}, url_name="basket_get",
    summary="A basket's answer (poll after 202)",
)
@handle
def basket_get(request, basket_id: int):
    basket = _family_basket(request, basket_id) if 0 < basket_id < 2**63 else None
    if basket is None:
        _family_household(request)  # 404 "household" for an account without a family file
        raise Problem(404, "basket", "No such basket in your household.", "not_found")
    # A poll only reads: the process's drainer answers the queue (bookings/intake.py).
    return _answer_response(request, basket, "done" if basket.status == Basket.Status.DONE else "received")


@router.post(
    "/bookings/{booking_id}/cancel", response={200: CancelOut, 404: ErrorOut, 422: ErrorOut, 503: ErrorOut},
    summary="Cancel a booking (late: billed unless justified)",
)
@handle
def booking_cancel(request, booking_id: int):
    hh = _household(request)
    booking = Booking.objects.filter(pk=booking_id, household=hh).first()
    if booking is None:
        raise Problem(404, "booking", "No such booking in your household.", "not_found")
    now = timezone.now()
    closed = gates.cancellation_gate(booking=booking, now=now)
    if closed.closed:  # suspended on the status board: nothing is changed
        return intake.busy_logged(_errors(request, 503, "booking", closed.message, closed.code, **closed.as_api()),
                                  what="booking API: cancellation suspended on the status board")
    booking = services.booking_cancel(booking=booking, actor=_actor(request), now=now)
    facts = booking_facts(booking, now)
    return {
        "booking": booking.pk, "status": booking.status, "late": booking.late, "billable": facts.billable,
        "justification_deadline": facts.justify_until,
        "message": (f"Late cancellation: billed unless justified by {facts.justify_until_text}."
                    if facts.billable else "Cancelled; not billed."),
    }


def _entry(request, entry_id: int) -> WaitlistEntry:
    entry = WaitlistEntry.objects.filter(pk=entry_id, household=_household(request)).first()
    if entry is None:
        raise Problem(404, "waitlist", "No such waiting-list entry in your household.", "not_found")
    return entry


@router.post(
    "/waitlist/{entry_id}/accept", response={200: WaitlistAnswerOut, 404: ErrorOut, 422: ErrorOut, 503: ErrorOut},
    summary="Accept an offered place (it is booked)",
    description=(
        "422 `not_offered`, `offer_expired`, `already_booked_elsewhere` (the child is booked at another "
        "centre that day: cancel that booking first, or decline). 503: booking is suspended on the status "
        "board (nothing changed; the offer is kept, `offer_paused` in the calendar, until booking reopens)."
    ),
)
@handle
def waitlist_accept(request, entry_id: int):
    entry = _entry(request, entry_id)
    now = timezone.now()
    closed = gates.waitlist_accept_gate(entry=entry, now=now)
    if closed.closed:  # suspended on the status board: accepting is booking; nothing is changed
        return intake.busy_logged(_errors(request, 503, "waitlist", closed.message, closed.code, **closed.as_api()),
                                  what="booking API: waiting-list acceptance suspended on the status board")
    booking = services.waitlist_accept(entry=entry, actor=_actor(request), now=now)
    return {"waitlist": entry.pk, "status": "accepted", "booking": booking.pk,
            "message": "The place is yours: the booking is confirmed."}


@router.post(
    "/waitlist/{entry_id}/decline", response={200: WaitlistAnswerOut, 404: ErrorOut, 422: ErrorOut},
    summary="Decline an offered place, or leave the waiting list",
)
@handle
def waitlist_decline(request, entry_id: int):
    entry = services.waitlist_decline(entry=_entry(request, entry_id), actor=_actor(request), now=timezone.now())
    return {"waitlist": entry.pk, "status": entry.status, "booking": None,
            "message": "Done: the place goes to the next family on the list."}


# --- Agents ------------------------------------------------------------------------------------------


@router.post(
    "/agent/bookings", response={201: BookingOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Agent: book on behalf of a family (after the deadline: reason required)",
)
@handle
def agent_book(request, payload: AgentBookIn):
    orgs = _agent_orgs(request)
    sites = _agent_sites(request, orgs)
    hh = Household.objects.filter(organisation_id__in=orgs, reference=payload.household).first()
    if hh is None:
        raise Problem(404, "household", "No such family file.", "not_found")
    child = Child.objects.filter(household=hh, pk=payload.child).first()
    if child is None:
        raise Problem(404, "child", "No such child in this family file.", "not_found")
    session = Session.objects.filter(organisation_id=hh.organisation_id, pk=payload.session).first()
    if session is None or (sites is not None and session.site_id not in sites):
        raise Problem(404, "session", "No such session.", "not_found")
    unit = Unit.objects.filter(activity_id=session.activity_id, code=payload.unit).first()
    if unit is None:
        raise Problem(422, "unit", "This unit is not offered for this session.", "unit_not_offered")
    booking = services.booking_create_by_agent(
        household=hh, child=child, session=session, unit=unit, actor=_actor(request), now=timezone.now(),
        reason=payload.reason,
    )
    return 201, {
        "booking": booking.pk, "child": child.pk, "session": session.pk, "unit": unit.code,
        "status": booking.status, "after_deadline": booking.after_deadline, "reason": booking.reason,
    }


def _agent_site(request, site_id: int) -> Site:
    orgs = _agent_orgs(request)
    sites = _agent_sites(request, orgs)
    site = Site.objects.filter(pk=site_id, organisation_id__in=orgs).first()
    if site is None or (sites is not None and site.pk not in sites):
        raise Problem(404, "site", "No such site.", "not_found")
    return site


@router.get(
    "/agent/attendance", response={200: AttendanceOut, 403: ErrorOut, 404: ErrorOut},
    summary="Agent: children booked at a site on a day",
)
@handle
def attendance_get(request, site: int, date: dt.date):
    s = _agent_site(request, site)
    bookings = list(
        Booking.objects.filter(session__site=s, session__date=date, status=Booking.Status.BOOKED)
        .select_related("child", "household", "session__activity", "unit").order_by("child__first_name", "pk")
    )
    marks = dict(Attendance.objects.filter(booking__in=bookings).values_list("booking_id", "present"))
    return {"site": s.pk, "date": date, "rows": [
        {"booking": b.pk, "child": b.child_id, "first_name": b.child.first_name, "household": b.household.reference,
         "activity": b.session.activity.name, "unit": b.unit.name, "present": marks.get(b.pk)}
        for b in bookings
    ]}


@router.post(
    "/agent/attendance", response={200: AttendanceOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Agent: record present/absent",
)
@handle
def attendance_post(request, payload: AttendanceIn, site: int, date: dt.date):
    s = _agent_site(request, site)
    now = timezone.now()
    for i, item in enumerate(payload.items):
        booking = Booking.objects.filter(pk=item.booking, session__site=s, session__date=date).first()
        if booking is None:
            raise Problem(404, f"items[{i}].booking", "No such booking at this site on this day.", "not_found")
        try:
            services.attendance_record(booking=booking, present=item.present, actor=_actor(request), now=now)
        except services.BookingError as exc:
            raise Problem(422, f"items[{i}].booking", exc.message, exc.code) from None
    return attendance_get.__wrapped__(request, site=site, date=date)


@router.get(
    "/agent/fill-rates", response={200: list[FillRateOut], 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Agent: places booked per site, day and part, and waiting lists",
)
@handle
def fill_rates(request, activity: int, q: Query[CalendarQuery]):
    from .models import Activity

    if q.date_from is None or q.date_to is None:
        raise Problem(422, "from" if q.date_from is None else "to", "required", "missing")
    date_from, date_to = q.date_from, q.date_to
    orgs = _agent_orgs(request)
    sites = _agent_sites(request, orgs)
    act = Activity.objects.filter(pk=activity, organisation_id__in=orgs).first()
    if act is None:
        raise Problem(404, "activity", "No such activity.", "not_found")
    if date_to < date_from or (date_to - date_from).days > MAX_DAYS:
        raise Problem(422, "to", f"`to` must be after `from`, at most {MAX_DAYS} days later.", "invalid_range")
    return [
        {"session": r.session_id, "site": r.site.name, "date": r.date, "part": r.part, "capacity": r.capacity,
         "booked": r.booked, "waiting": r.waiting, "closed": r.closed}
        for r in selectors.fill_rates(activity=act, date_from=date_from, date_to=date_to)
        if sites is None or r.site.pk in sites
    ]
