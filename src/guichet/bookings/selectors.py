"""Read-only questions about bookings: free places, a household's calendar, billability, fill
rates, waiting-list positions. A month of calendar costs a fixed number of queries, not one per
day."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.db.models import Count

from .deadlines import RuleError, describe_deadline, is_before_deadline, parse_rule
from .models import (
    Activity,
    Booking,
    Child,
    Guardian,
    Household,
    Justification,
    RegistrationWindow,
    Session,
    SessionPart,
    Site,
    Unit,
    WaitlistEntry,
)
from .services import justification_deadline, opening_for, window_for

ACTIVE_WAIT = (WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED)


def _free(units, parts: list[SessionPart]) -> dict[str, int]:
    free_by_part = {p.part: max(p.capacity - p.booked, 0) for p in parts}
    out = {}
    for unit in units:
        names = unit.parts or []
        out[unit.code] = min((free_by_part.get(n, 0) for n in names), default=0) if names else 0
    return out


def free_places(session: Session) -> dict[str, int]:
    """Places left per unit code (the smallest free count of the unit's parts)."""
    units = list(Unit.objects.filter(activity_id=session.activity_id).order_by("position", "pk"))
    return _free(units, list(SessionPart.objects.filter(session=session)))


def waitlist_position(entry: WaitlistEntry) -> int:
    """1 for the first waiting family of the session (receipt order); 0 when not waiting."""
    if entry.status != WaitlistEntry.Status.WAITING:
        return 0
    return WaitlistEntry.objects.filter(
        session_id=entry.session_id, status=WaitlistEntry.Status.WAITING, pk__lte=entry.pk
    ).count()


def billable(booking: Booking, now: dt.datetime) -> bool:
    """A booked day is billed (unless the child was absent with a justification given in time);
    a cancelled one only when cancelled late and not justified in time."""
    if booking.status == Booking.Status.BOOKED:
        attendance = getattr(booking, "attendance", None) if _has_attendance(booking) else None
        if attendance is not None and not attendance.present:
            return not _justified_in_time(booking)
        return True
    if booking.late:
        return not _justified_in_time(booking)
    return False


def _has_attendance(booking: Booking) -> bool:
    try:
        booking.attendance  # noqa: B018 - reverse one-to-one access
    except Booking.attendance.RelatedObjectDoesNotExist:
        return False
    return True


def _justified_in_time(booking: Booking) -> bool:
    limit = justification_deadline(booking)
    return Justification.objects.filter(booking=booking, received_at__lte=limit).exists()


# --- the household calendar ----------------------------------------------------------------------


@dataclass
class Cell:
    """One session for one child."""

    session: Session
    state: str  # booked, offered, waitlisted, free, full, closed, deadline_passed, not_open
    units: list[Unit]
    free: dict[str, int]
    booking: Booking | None = None
    waitlist: WaitlistEntry | None = None
    position: int | None = None
    booking_deadline: dt.datetime | None = None
    booking_deadline_text: str = ""
    cancellation_deadline: dt.datetime | None = None
    cancellation_deadline_text: str = ""
    can_book: bool = False
    can_cancel_in_time: bool = False
    opens_at: dt.datetime | None = None

    @property
    def date(self) -> dt.date:
        return self.session.date


@dataclass
class ChildCalendar:
    child: Child
    cells: list[Cell] = field(default_factory=list)


def _parsed(text: str):
    try:
        return parse_rule(text)
    except RuleError:
        return None


def household_calendar(
    *, household: Household, date_from: dt.date, date_to: dt.date, now: dt.datetime, children=None
) -> list[ChildCalendar]:
    """Per child, every session of the household's organisation between the two dates, with its
    state for that child and its deadlines in plain words."""
    children = list(children) if children is not None else list(
        Child.objects.filter(household=household).order_by("birth_date", "pk")
    )
    sessions = list(
        Session.objects.filter(organisation_id=household.organisation_id, date__gte=date_from, date__lte=date_to)
        .select_related("activity", "site")
        .prefetch_related("parts")
        .order_by("date", "activity__position", "site__name", "pk")
    )
    activity_ids = {s.activity_id for s in sessions}
    units_by_activity: dict[int, list[Unit]] = defaultdict(list)
    for unit in Unit.objects.filter(activity_id__in=activity_ids).order_by("position", "pk"):
        units_by_activity[unit.activity_id].append(unit)
    windows = list(RegistrationWindow.objects.filter(activity_id__in=activity_ids).order_by("opens_at", "pk"))
    session_ids = [s.pk for s in sessions]
    bookings = {
        (b.child_id, b.session_id): b
        for b in Booking.objects.filter(
            household=household, session_id__in=session_ids, status=Booking.Status.BOOKED
        ).select_related("unit")
    }
    waits = {
        (w.child_id, w.session_id): w
        for w in WaitlistEntry.objects.filter(household=household, session_id__in=session_ids, status__in=ACTIVE_WAIT)
        .select_related("unit")
    }
    positions: dict[int, int] = {}
    waiting_sessions = {w.session_id for w in waits.values() if w.status == WaitlistEntry.Status.WAITING}
    if waiting_sessions:
        counter: dict[int, int] = defaultdict(int)
        for pk, sid in WaitlistEntry.objects.filter(
            session_id__in=waiting_sessions, status=WaitlistEntry.Status.WAITING
        ).order_by("pk").values_list("pk", "session_id"):
            counter[sid] += 1
            positions[pk] = counter[sid]
    rules: dict[int, tuple] = {}
    per_session = []
    for s in sessions:
        if s.activity_id not in rules:
            rules[s.activity_id] = (_parsed(s.activity.booking_rule), _parsed(s.activity.cancellation_rule))
        book_rule, cancel_rule = rules[s.activity_id]
        units = units_by_activity[s.activity_id]
        free = _free(units, list(s.parts.all()))
        bd = book_rule.deadline(s.date) if book_rule else None
        cd = cancel_rule.deadline(s.date) if cancel_rule else None
        window = window_for(s, windows)
        per_session.append((s, units, free, bd, cd, window, book_rule, cancel_rule))
    result = []
    for child in children:
        cal = ChildCalendar(child)
        for s, units, free, bd, cd, window, book_rule, cancel_rule in per_session:
            cell = Cell(session=s, state="free", units=units, free=free, booking_deadline=bd, cancellation_deadline=cd)
            if bd:
                cell.booking_deadline_text = describe_deadline(bd, "book", session_date=s.date, now=now)
            if cd:
                cell.cancellation_deadline_text = describe_deadline(cd, "cancel", session_date=s.date, now=now)
            booking = bookings.get((child.pk, s.pk))
            wait = waits.get((child.pk, s.pk))
            in_time = bool(book_rule) and is_before_deadline(book_rule, s.date, now)
            opens = opening_for(window, household) if window else None
            cell.can_cancel_in_time = bool(cancel_rule) and is_before_deadline(cancel_rule, s.date, now)
            if booking:
                cell.state, cell.booking = "booked", booking
            elif wait and wait.status == WaitlistEntry.Status.OFFERED:
                cell.state, cell.waitlist = "offered", wait
            elif wait:
                cell.state, cell.waitlist, cell.position = "waitlisted", wait, positions.get(wait.pk)
            elif s.closed:
                cell.state = "closed"
            elif not in_time:
                cell.state = "deadline_passed"
            elif opens and now < opens:
                cell.state, cell.opens_at = "not_open", opens
            elif window and window.closes_at and now > window.closes_at:
                cell.state = "deadline_passed"
            elif not any(free.values()):
                cell.state = "full"
            cell.can_book = cell.state in ("free", "full")  # full: the family may join the waiting list
            cal.cells.append(cell)
        result.append(cal)
    return result


# --- agents -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FillRow:
    session_id: int
    site: Site
    date: dt.date
    part: str
    capacity: int
    booked: int
    waiting: int
    closed: bool

    @property
    def rate(self) -> float:
        return self.booked / self.capacity if self.capacity else 0.0


def fill_rates(*, activity: Activity, date_from: dt.date, date_to: dt.date, site: Site | None = None) -> list[FillRow]:
    """One row per site, day and part: capacity, places taken (bookings and held offers) and the
    number of families waiting for a unit that uses that part."""
    parts = SessionPart.objects.filter(
        session__activity=activity, session__date__gte=date_from, session__date__lte=date_to
    ).select_related("session__site")
    if site is not None:
        parts = parts.filter(session__site=site)
    parts = list(parts.order_by("session__date", "session__site__name", "pk"))
    unit_parts = {u.pk: set(u.parts or []) for u in Unit.objects.filter(activity=activity)}
    waiting: dict[tuple[int, str], int] = defaultdict(int)
    for row in (
        WaitlistEntry.objects.filter(
            session__activity=activity, session__date__gte=date_from, session__date__lte=date_to,
            status=WaitlistEntry.Status.WAITING,
        ).values("session_id", "unit_id").annotate(n=Count("pk"))
    ):
        for part in unit_parts.get(row["unit_id"], ()):
            waiting[(row["session_id"], part)] += row["n"]
    return [
        FillRow(
            session_id=p.session_id, site=p.session.site, date=p.session.date, part=p.part, capacity=p.capacity,
            booked=p.booked, waiting=waiting.get((p.session_id, p.part), 0), closed=p.session.closed,
        )
        for p in parts
    ]


def waitlists(*, activity: Activity, date_from: dt.date, date_to: dt.date) -> dict[int, list[WaitlistEntry]]:
    """Active waiting-list entries per session id, in receipt order."""
    out: dict[int, list[WaitlistEntry]] = defaultdict(list)
    for e in WaitlistEntry.objects.filter(
        session__activity=activity, session__date__gte=date_from, session__date__lte=date_to, status__in=ACTIVE_WAIT
    ).select_related("child", "unit", "household").order_by("session_id", "pk"):
        out[e.session_id].append(e)
    return dict(out)


# --- The signed-in account's household, read with its session --------------------------------

FAMILY_HOUSEHOLD = "bookings.family_household"


def family_household_columns(qn, account: str) -> list[str]:
    """``accounts.sessions.also_read``: the household (id, organisation) of the account's first
    guardianship, as the API's ``_household`` picks it: two scalar subqueries on ``account``."""
    g, h = Guardian._meta, Household._meta
    guardian, household = qn(g.db_table), qn(h.db_table)
    account_pk = f"{account}.{qn(get_user_model()._meta.pk.column)}"
    # Identifiers from the models, quoted; no values. Each part is an index probe (the
    # household by its key, not joined: a join may scan households on a new database).
    household_id = (f"(SELECT {guardian}.{qn(g.get_field('household').column)} FROM {guardian} "  # noqa: S608
                    f"WHERE {guardian}.{qn(g.get_field('user').column)} = {account_pk} "
                    f"ORDER BY {guardian}.{qn(g.pk.column)} LIMIT 1)")
    organisation = (f"(SELECT {household}.{qn(h.get_field('organisation').column)} FROM {household} "  # noqa: S608
                    f"WHERE {household}.{qn(h.pk.column)} = {household_id})")
    return [household_id, organisation]


def family_household_from_row(connection, values) -> Household | None:
    """The household of ``family_household_columns``' values (id and organisation loaded; the
    rest on first use, as a queryset's ``only``), or None for an account without one."""
    household_id, organisation_id = values
    if household_id is None:
        return None
    return Household.from_db(connection.alias, ["id", "organisation_id"], [household_id, organisation_id])


def family_household(user) -> Household | None:
    """The same household, read on its own: for a request that was not signed in with a session
    (a bearer token)."""
    connection = connections[router.db_for_read(Household)]
    qn, account = connection.ops.quote_name, get_user_model()._meta
    # Identifiers from the models, quoted; the account's id is a parameter.
    sql = (f"SELECT {', '.join(family_household_columns(qn, 'u'))} FROM {qn(account.db_table)} u "  # noqa: S608
           f"WHERE u.{qn(account.pk.column)} = %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk])
        row = cursor.fetchone()
    return None if row is None else family_household_from_row(connection, row)
