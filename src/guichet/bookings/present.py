"""What the family and agent screens show, shaped from ``selectors`` (reads only, no writes).

Kept apart from the views so that the HTML pages and the JSON API present the same facts:
a session's state in words, its deadlines in plain French, whether a cancellation is late and
therefore billed, until when a justification is accepted.
"""

from __future__ import annotations

import calendar as pycalendar
import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from . import selectors, services
from .deadlines import RuleError, describe_deadline, format_deadline, parse_rule
from .models import Activity, Booking, Child, Session, Unit

PARIS = ZoneInfo("Europe/Paris")

# State codes shared by the calendar page and the API, with their words (never colour alone).
STATES = {
    "booked": gettext_lazy("Booked"),
    "waitlisted": gettext_lazy("On the waiting list"),
    "offered": gettext_lazy("Place offered"),
    "free": gettext_lazy("Places available"),
    "full": gettext_lazy("Full"),
    "closed": gettext_lazy("Closed"),
    "deadline_passed": gettext_lazy("Booking closed (deadline passed)"),
    "not_open": gettext_lazy("Not open yet"),
    "suspended": gettext_lazy("Online booking suspended"),
    "booked_elsewhere": gettext_lazy("Booked at another centre"),
}


def state_label(code: str) -> str:
    return str(STATES.get(code, code))


# --- Periods -------------------------------------------------------------------------------------

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_month(text: str) -> tuple[int, int] | None:
    m = _MONTH.match(text or "")
    if not m or not (1 <= int(m.group(2)) <= 12) or not (2000 <= int(m.group(1)) <= 2100):
        return None
    return int(m.group(1)), int(m.group(2))


def parse_day(text: str) -> dt.date | None:
    m = _DAY.match(text or "")
    if not m:
        return None
    try:
        day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
    return day if 2000 <= day.year <= 2100 else None


def parse_week(text: str) -> dt.date | None:
    day = parse_day(text)
    return None if day is None else day - dt.timedelta(days=day.weekday())


def month_bounds(year: int, month: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, month, 1), dt.date(year, month, pycalendar.monthrange(year, month)[1])


def week_bounds(monday: dt.date) -> tuple[dt.date, dt.date]:
    return monday, monday + dt.timedelta(days=6)


# --- Deadlines of one session ------------------------------------------------------------------


def _rule(text: str):
    try:
        return parse_rule(text)
    except RuleError:
        return None


def booking_deadline(session: Session) -> dt.datetime | None:
    rule = _rule(session.activity.booking_rule)
    return rule.deadline(session.date) if rule else None


def cancellation_deadline(session: Session) -> dt.datetime | None:
    rule = _rule(session.activity.cancellation_rule)
    return rule.deadline(session.date) if rule else None


def justification_deadline(booking: Booking, now: dt.datetime) -> dt.datetime:
    """Until when a justification is accepted after a late cancellation (or an absence)."""
    return services.justification_deadline(booking)


@dataclass
class BookingFacts:
    booking: Booking
    state: str
    state_label: str
    cancel_deadline: dt.datetime | None
    cancel_text: str
    late: bool  # cancelling now (or the cancellation made) is after the deadline
    billable: bool
    justified: bool
    justify_until: dt.datetime | None
    justify_until_text: str
    can_cancel: bool
    can_justify: bool
    cancel_gate: object = None  # set by a family page when the status board suspends cancelling


def booking_facts(booking: Booking, now: dt.datetime) -> BookingFacts:
    session = booking.session
    deadline = cancellation_deadline(session)
    cancelled = booking.status == Booking.Status.CANCELLED
    late = booking.late if cancelled else (deadline is not None and now > deadline)
    justified = booking.justifications.exists() if booking.pk else False
    until = justification_deadline(booking, now) if late else None
    today = now.astimezone(PARIS).date()
    return BookingFacts(
        booking=booking,
        state="cancelled" if cancelled else "booked",
        state_label=_("Cancelled") if cancelled else _("Booked"),
        cancel_deadline=deadline,
        cancel_text=describe_deadline(deadline, "cancel", session_date=session.date, now=now) if deadline else "",
        late=late,
        billable=selectors.billable(booking, now) if cancelled else True,
        justified=justified,
        justify_until=until,
        justify_until_text=format_deadline(until) if until else "",
        can_cancel=not cancelled and session.date >= today,
        can_justify=bool(late and not justified and until and now <= until),
    )


# --- Waiting-list offers -----------------------------------------------------------------------


def offer_answer_by(entry, session: Session, now: dt.datetime) -> dt.datetime | None:
    """Until when the family can answer an offer. An offer paused while online booking was
    suspended gets its time back when booking reopens (``services.waitlist_expire_offers``); until
    the next run of that job, the page already shows the time it will get. While booking is
    still suspended the page says the offer is kept instead (``Cell.offer_kept``)."""
    if entry is None:
        return None
    if entry.offer_paused_at is not None:
        return services.offer_resumed_expiry(
            expires_at=entry.offer_expires_at or entry.offer_paused_at, paused_at=entry.offer_paused_at, now=now,
            session_date=session.date, offer_hours=session.activity.offer_hours,
        )
    return entry.offer_expires_at


def offer_resume_hours(session: Session) -> int:
    """The least number of hours a family has to answer a kept offer once booking reopens."""
    return min(session.activity.offer_hours, services.OFFER_RESUME_MIN_HOURS)


# --- The calendar ------------------------------------------------------------------------------


@dataclass
class Cell:
    child: Child
    session: Session
    state: str
    label: str
    units: list[Unit]
    free: dict
    position: int | None = None
    booking: Booking | None = None
    entry: object = None
    book_text: str = ""
    cancel_text: str = ""
    offer_until: str = ""
    reason: str = ""
    gate: object = None  # the status board's closed gate: booking (or cancellation, if booked)
    elsewhere: str = ""  # the centre where the child is already booked that day for this activity
    offer_kept: bool = False  # an offer that cannot be accepted online now: it does not run out

    @property
    def resume_hours(self) -> int:
        return offer_resume_hours(self.session)

    @property
    def selectable(self) -> bool:
        return self.state in ("free", "full")

    @property
    def field_name(self) -> str:
        return f"item-{self.child.pk}-{self.session.pk}"


@dataclass
class Day:
    date: dt.date
    cells: list[Cell] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        """Nothing to do that day: every centre is past its deadline or closed, nothing booked.
        Shown as one line instead of one card per centre, so a phone screen stays short."""
        return bool(self.cells) and all(c.state in ("deadline_passed", "closed") for c in self.cells)

    @property
    def closed_text(self) -> str:
        return next((c.book_text for c in self.cells if c.book_text), "")


@dataclass
class ChildCalendar:
    child: Child
    days: list[Day]


@dataclass
class CalendarView:
    kind: str
    first: dt.date
    last: dt.date
    children: list[ChildCalendar]
    prev: str
    next: str
    holiday_weeks: list[dt.date]

    @property
    def empty(self) -> bool:
        return not any(c.days for c in self.children)

    @property
    def selectable(self) -> bool:
        """Some day can be put in a request (the request's options and button are shown)."""
        return any(cell.selectable for c in self.children for day in c.days for cell in day.cells)


def closed_gates(*, organisation_id: int, function: str, now) -> dict[int, object]:
    """The activities whose online ``function`` (booking, cancellation) the status board has
    suspended: activity id -> its closed ``recovery.gates.Gate`` (message, what to do instead).
    No query when no gate is configured (the gates are cached)."""
    from guichet.recovery import gates

    if not gates.configured_gates(organisation_id, function):
        return {}
    out = {}
    for activity in Activity.objects.filter(organisation_id=organisation_id).order_by("position", "pk"):
        gate = gates.gate(organisation_id=organisation_id, function=function, now=now, activity=activity)
        if gate.closed:
            out[activity.pk] = gate
    return out


def calendar_cells(*, household, children, date_from, date_to, now, gated: bool = False) -> dict[int, list[Cell]]:
    """Cells per child id, from ``selectors.household_calendar``. ``gated``: the family's pages
    ask the status board; a day it could book while online booking is suspended is shown
    "suspended" with the gate (no booking menu), and a booked day whose cancellation is
    suspended carries that gate (no cancel link). The counter's screens do not ask."""
    booking_closed = closed_gates(organisation_id=household.organisation_id, function="booking", now=now) if gated else {}
    cancel_closed = (
        closed_gates(organisation_id=household.organisation_id, function="cancellation", now=now) if gated else {}
    )
    out: dict[int, list[Cell]] = {c.pk: [] for c in children}
    for cal in selectors.household_calendar(
        household=household, date_from=date_from, date_to=date_to, now=now, children=children
    ):
        for c in cal.cells:
            entry = c.waitlist
            expires = offer_answer_by(entry, c.session, now) if c.state == "offered" else None
            reason = ""
            if c.state == "not_open" and c.opens_at:
                reason = _("Bookings open on %(when)s.") % {"when": format_deadline(c.opens_at)}
            state, gate = c.state, None
            if state in ("free", "full") and c.session.activity_id in booking_closed:
                state, gate = "suspended", booking_closed[c.session.activity_id]
            elif state == "booked":
                gate = cancel_closed.get(c.session.activity_id)
            elif state == "offered":  # accepting an offered place is booking (declining stays open)
                gate = booking_closed.get(c.session.activity_id)
            out[cal.child.pk].append(Cell(
                child=cal.child, session=c.session, state=state, label=state_label(state), units=c.units,
                free=c.free, position=c.position, booking=c.booking, entry=entry,
                book_text=c.booking_deadline_text, cancel_text=c.cancellation_deadline_text,
                offer_until=format_deadline(expires) if expires else "", reason=reason, gate=gate,
                offer_kept=state == "offered" and gate is not None,
            ))
    for cells in out.values():
        _mark_booked_elsewhere(cells)
    return out


# What the family could do at a centre: none of it while the child is booked at another one.
_BOOKABLE_ELSEWHERE = ("free", "full", "suspended", "not_open", "deadline_passed", "closed")


def elsewhere(cells) -> list[tuple[object | None, str]]:
    """One place a day (ADR 12), for one child's cells (the selector's or this module's), in
    order: the cell of the same activity and day booked at another centre (or None), and the
    state to show. A child booked at centre A cannot be booked at centre B the same day, so a day
    B could otherwise offer is "booked_elsewhere"; a waiting list or an offer at B keeps its state
    (the family may prefer B; see the ADR). From the cells already read: no query."""
    booked = {(c.session.activity_id, c.session.date): c for c in cells if c.state == "booked"}
    out = []
    for c in cells:
        other = None if c.state == "booked" else booked.get((c.session.activity_id, c.session.date))
        out.append((other, "booked_elsewhere" if other is not None and c.state in _BOOKABLE_ELSEWHERE
                    else c.state))
    return out


def _mark_booked_elsewhere(cells: list[Cell]) -> None:
    """Shows a day booked at another centre as such, with no booking menu (``elsewhere``)."""
    for c, (other, state) in zip(cells, elsewhere(cells), strict=True):
        if other is None:
            continue
        c.elsewhere = other.session.site.name
        if state != c.state:
            c.state, c.gate, c.reason = state, None, ""
            c.label = state_label(state)  # the short word; the page names the centre


def calendar_view(*, household, children, date_from, date_to, now, kind, gated: bool = False) -> CalendarView:
    cells = calendar_cells(household=household, children=children, date_from=date_from, date_to=date_to, now=now,
                           gated=gated)
    out = []
    for child in children:
        days: dict[dt.date, Day] = {}
        for cell in sorted(cells[child.pk], key=lambda c: (c.session.date, c.session.activity.position, c.session.site.name)):
            days.setdefault(cell.session.date, Day(cell.session.date)).cells.append(cell)
        out.append(ChildCalendar(child, list(days.values())))
    if kind == "week":
        prev = f"semaine={date_from - dt.timedelta(days=7):%Y-%m-%d}"
        nxt = f"semaine={date_from + dt.timedelta(days=7):%Y-%m-%d}"
    else:
        before = date_from - dt.timedelta(days=1)
        after = date_to + dt.timedelta(days=1)
        prev, nxt = f"mois={before:%Y-%m}", f"mois={after:%Y-%m}"
    today = now.astimezone(PARIS).date()
    weeks = sorted({
        d - dt.timedelta(days=d.weekday())
        for d in Session.objects.filter(
            organisation=household.organisation, activity__kind="leisure_holidays",
            date__gte=today, date__lte=today + dt.timedelta(days=200),
        ).values_list("date", flat=True).distinct()[:400]
    })[:12]
    return CalendarView(kind, date_from, date_to, out, prev, nxt, weeks)


# --- A basket's answer -------------------------------------------------------------------------

OUTCOMES = {
    "booked": gettext_lazy("Booked"),
    "waitlisted": gettext_lazy("On the waiting list"),
    "refused": gettext_lazy("Not booked"),
}


def basket_lines(basket, children) -> list[dict]:
    names = {c.pk: c.first_name for c in children}
    result = basket.result or {}
    items = result.get("items") or [dict(i, outcome="received") for i in (basket.items or [])]
    sessions = Session.objects.select_related("activity", "site").in_bulk([i.get("session") for i in items])
    units = {
        (u.activity_id, u.code): u
        for u in Unit.objects.filter(activity__in={s.activity_id for s in sessions.values()})
    }
    lines = []
    for item in items:
        session = sessions.get(item.get("session"))
        unit = units.get((session.activity_id, item.get("unit"))) if session else None
        outcome = item.get("outcome", "received")
        lines.append({
            "child": names.get(item.get("child"), "?"),
            "session": session,
            "unit": unit.tr("name") if unit else item.get("unit"),
            "outcome": outcome,
            "outcome_label": str(OUTCOMES.get(outcome, _("Received, in line"))),
            "message": item.get("message") or "",
            "position": item.get("position"),
            "booking": item.get("booking"),
        })
    lines.sort(key=lambda line: (line["session"].date if line["session"] else dt.date.max, line["child"]))
    return lines


# --- The month grid ------------------------------------------------------------------------------

# One word per state for a day of the grid (a phone's seventh of a screen); the full words
# (``STATES``) are read out by screen readers and given in the legend.
SHORT_STATES = {
    "booked": pgettext_lazy("calendar grid", "Booked"),
    "offered": pgettext_lazy("calendar grid", "Offered"),
    "waitlisted": pgettext_lazy("calendar grid", "Waiting"),
    "free": pgettext_lazy("calendar grid", "Free"),
    "full": pgettext_lazy("calendar grid", "Full"),
    "not_open": pgettext_lazy("calendar grid", "Soon"),
    "deadline_passed": pgettext_lazy("calendar grid", "Closed"),
    "closed": pgettext_lazy("calendar grid", "Closed"),
    "suspended": pgettext_lazy("calendar grid", "Suspended"),
    "booked_elsewhere": pgettext_lazy("calendar grid", "Elsewhere"),
}
# The state a day shows when it has several sessions (activities, centres): what the family has
# (booked, an offer to answer, a waiting list) before what it could do.
# The legend under the grid: each state's icon, short word and full words.
STATES_LEGEND = [(code, SHORT_STATES[code], STATES[code]) for code in
                 ("booked", "offered", "waitlisted", "free", "full", "not_open", "deadline_passed", "closed")]
_DAY_PRIORITY = ["booked", "booked_elsewhere", "offered", "waitlisted", "free", "full", "suspended", "not_open", "deadline_passed", "closed"]


def legend(grids: list) -> list:
    """The legend under the month grid; "suspended" only when a day of the month shows it."""
    shown = {day.state for g in grids for week in g.weeks for day in week}
    extra = [("suspended", SHORT_STATES["suspended"], STATES["suspended"])] if "suspended" in shown else []
    return STATES_LEGEND + extra


@dataclass
class GridDay:
    date: dt.date
    in_month: bool
    state: str = ""  # "" when there is no session that day
    sessions: int = 0
    position: int | None = None
    link: str = ""  # the week's page, at this day, where it is booked or cancelled
    where: str = ""  # the centre where the child is booked that day

    @property
    def short(self) -> str:
        return str(SHORT_STATES.get(self.state, "")) if self.state else ""

    @property
    def label(self) -> str:
        if self.state == "booked" and self.where:
            return _("Booked: %(site)s") % {"site": self.where}
        return state_label(self.state) if self.state else ""


@dataclass
class ChildGrid:
    child: Child
    weeks: list[list[GridDay]]


def month_grid(view: CalendarView) -> list[ChildGrid]:
    """The month of ``view`` (a "month" calendar view) as weeks of seven days, Monday first,
    per child: each day with its state (the most telling of its sessions) and a link to the
    week where it is booked."""
    first, last = view.first, view.last
    start = first - dt.timedelta(days=first.weekday())
    end = last + dt.timedelta(days=6 - last.weekday())
    out = []
    for cc in view.children:
        by_date = {day.date: day for day in cc.days}
        weeks, week = [], []
        day = start
        while day <= end:
            cell = GridDay(day, first <= day <= last)
            found = by_date.get(day)
            if found is not None and cell.in_month:
                states = [c.state for c in found.cells]
                cell.state = min(states, key=lambda s: _DAY_PRIORITY.index(s) if s in _DAY_PRIORITY else 99)
                cell.sessions = len(found.cells)
                cell.where = ", ".join(dict.fromkeys(c.session.site.name for c in found.cells if c.state == "booked"))
                cell.position = next((c.position for c in found.cells if c.state == "waitlisted" and c.position), None)
                monday = day - dt.timedelta(days=day.weekday())
                cell.link = f"?semaine={monday:%Y-%m-%d}&enfant={cc.child.pk}#jour-{cc.child.pk}-{day:%Y-%m-%d}"
            week.append(cell)
            if len(week) == 7:
                weeks.append(week)
                week = []
            day += dt.timedelta(days=1)
        out.append(ChildGrid(cc.child, weeks))
    return out
