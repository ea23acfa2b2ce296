"""The agents' screens of the family portal: act for a family (book or cancel on its behalf, also
after a deadline with a reason), record justifications, take attendance, follow fill rates and
waiting lists.

Access: staff holding an ``AgentRole`` for an organisation of the portal (optionally limited to
one site), or superusers. Every write goes through ``guichet.bookings.services``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from guichet.catalog.models import Organisation, Portal
from guichet.common.actor import Actor
from guichet.common.frdates import format_date_fr
from guichet.common.postdata import post_values

from . import households, search, selectors, services
from .forms import AgentBookForm, AgentJustificationForm
from .models import (
    Activity,
    AgentRole,
    Attendance,
    Booking,
    Child,
    Household,
    Session,
    Site,
    Unit,
    WaitlistEntry,
)
from .present import PARIS, booking_deadline, booking_facts, parse_day

REASON_MAX = Booking._meta.get_field("reason").max_length


@dataclass
class Agent:
    portal: Portal
    organisations: list[Organisation]
    site_ids: set[int] | None  # None: every site of those organisations

    def sites(self):
        qs = Site.objects.filter(organisation__in=self.organisations)
        return qs if self.site_ids is None else qs.filter(pk__in=self.site_ids)

    def may_site(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids


def agent_for(user, portal: Portal) -> Agent | None:
    if not user.is_authenticated or not user.is_active:
        return None
    orgs = list(Organisation.objects.filter(portal=portal))
    if user.is_superuser:
        return Agent(portal, orgs, None)
    roles = list(AgentRole.objects.filter(user=user, organisation__portal=portal))
    if not roles:
        return None
    org_ids = {r.organisation_id for r in roles}
    site_ids = None if any(r.site_id is None for r in roles) else {r.site_id for r in roles}
    return Agent(portal, [o for o in orgs if o.pk in org_ids], site_ids)


def _agent(request, slug: str) -> Agent:
    portal = get_object_or_404(Portal, slug=slug)
    agent = agent_for(request.user, portal)
    if agent is None:
        raise PermissionDenied
    return agent


def _actor(request) -> Actor:
    return Actor.for_user(request.user, "counter")


def _ctx(agent: Agent, **extra) -> dict:
    return {"portal": agent.portal, "agent": agent, **extra}


def _today() -> dt.date:
    return timezone.now().astimezone(PARIS).date()


# --- Home and household ------------------------------------------------------------------------


@login_required
def home(request, portal):
    """The search: file number, family name, a child's first name or a guardian's e-mail
    (``guichet.bookings.search``), results paginated. Listing a family shows its name: each
    household listed is recorded as accessed, like an opened record."""
    agent = _agent(request, portal)
    query = (request.GET.get("q") or request.GET.get("ref") or "").strip()[:search.MAX_QUERY]
    page = None
    if query:
        found = search.households_matching(organisations=agent.organisations, query=query)
        first = list(found[:2])
        if len(first) == 1 and first[0].reference.lower() == query.lower():  # the file number typed
            return redirect("bookings:agent-household", portal=portal, reference=first[0].reference)
        page = Paginator(found.prefetch_related("children"), search.PAGE_SIZE).get_page(request.GET.get("page"))
        from guichet.accounts.access import record_access  # staff access to a record is recorded

        for hh in page.object_list:
            record_access(user=request.user, household=hh, what="bookings.search")
    return render(request, "bookings/agent/home.html", _ctx(
        agent, q=query, page=page, searched=bool(query), short=len(search.fold(query)) < search.MIN_TEXT,
    ))


def _household(agent: Agent, reference: str) -> Household:
    return get_object_or_404(Household, organisation__in=agent.organisations, reference=reference)


def _household_page(request, agent, household, *, error=None, status=200, day=None):
    now = timezone.now()
    today = now.astimezone(PARIS).date()
    day = day or parse_day(request.GET.get("date", "")) or today
    children = list(Child.objects.filter(household=household).order_by("birth_date", "pk"))
    bookings = [
        booking_facts(b, now)
        for b in Booking.objects.filter(household=household, session__date__gte=today - dt.timedelta(days=31))
        .select_related("child", "session__activity", "session__site", "unit")
        .order_by("session__date", "pk")[:100]
    ]
    sessions = []
    for s in (
        Session.objects.filter(organisation__in=agent.organisations, date=day, site__in=agent.sites())
        .select_related("activity", "site").order_by("activity__position", "site__name")
    ):
        deadline = booking_deadline(s)
        units = list(Unit.objects.filter(activity=s.activity).order_by("position", "pk"))
        sessions.append({
            "session": s, "units": units, "free": _free_by_unit(units, selectors.free_places(s)),
            "late": deadline is not None and now > deadline,
            # After a refused booking, its form shows again what the agent chose and wrote.
            "posted": request.POST if error and request.POST.get("session") == str(s.pk) else {},
        })
    waiting = WaitlistEntry.objects.filter(
        household=household, status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED]
    ).select_related("child", "session__activity", "session__site", "unit")
    return render(request, "bookings/agent/household.html", _ctx(
        agent, household=household, children=children, bookings=bookings, sessions=sessions, day=day,
        waiting=waiting, error=error, justification_form=AgentJustificationForm(), post=request.POST,
    ), status=status)


def _free_by_unit(units: list[Unit], free: dict[str, int]) -> list[tuple[Unit, int]]:
    """Free places per unit, as (unit, places) in the activity's order: the page names the unit
    (``name`` or ``name_en``), never its code."""
    return [(u, free[u.code]) for u in units if u.code in free]


@login_required
def household(request, portal, reference):
    agent = _agent(request, portal)
    hh = _household(agent, reference)
    from guichet.accounts.access import record_access  # staff access to a record is recorded

    record_access(user=request.user, household=hh, what="bookings.household")
    return _household_page(request, agent, hh)


def _posted_session(agent: Agent, data) -> tuple[Session | None, str]:
    """The session an agent's booking form names (a hidden field), among the agent's towns; or
    None and the error naming the field (sent twice, a control character, not one of them)."""
    errors: dict[str, str] = {}
    label = _("Session")
    value = post_values(data, {"session": label}, errors)["session"]
    session = None
    if not errors:
        try:
            pk = forms.IntegerField(min_value=1, max_value=2**31 - 1).clean(value)
        except forms.ValidationError:
            pk = None
        session = Session.objects.select_related("activity", "site").filter(
            organisation__in=agent.organisations, pk=pk).first() if pk else None
    if session is None:
        errors.setdefault("session", _("%(field)s: choose a day, then one of its sessions.") % {"field": label})
    return session, errors.get("session", "")


@login_required
@require_POST
def book(request, portal, reference):
    agent = _agent(request, portal)
    hh = _household(agent, reference)
    session, error = _posted_session(agent, request.POST)
    if session is None:
        return _household_page(request, agent, hh, error=error, status=400)
    if not agent.may_site(session.site_id):
        raise PermissionDenied
    children = list(Child.objects.filter(household=hh).order_by("birth_date", "pk"))
    form = AgentBookForm(request.POST, children=children,
                         units=Unit.objects.filter(activity=session.activity).order_by("position", "pk"))
    if not form.is_valid():
        return _household_page(request, agent, hh, error=form.error_text(), status=400, day=session.date)
    child = next(c for c in children if c.pk == form.cleaned_data["child"])
    try:
        booking = services.booking_create_by_agent(
            household=hh, child=child, session=session, unit=form.cleaned_data["unit"], actor=_actor(request),
            now=timezone.now(), reason=form.cleaned_data["reason"].strip(),
        )
    except services.BookingError as exc:
        return _household_page(request, agent, hh, error=exc.message, status=400, day=session.date)
    messages.success(request, _("Booked: %(child)s, %(date)s.") % {
        "child": child.first_name, "date": format_date_fr(session.date, weekday=True)})
    return redirect(reverse("bookings:agent-household", args=[portal, hh.reference]) + f"?date={session.date:%Y-%m-%d}#b{booking.pk}")


@login_required
@require_POST
def address(request, portal, reference):
    """Change the household's postal address (printed on its invoices)."""
    agent = _agent(request, portal)
    hh = _household(agent, reference)
    try:
        changed = households.household_address_set(
            household=hh, postal_address=households.posted_postal_address(request.POST), actor=_actor(request))
    except households.HouseholdError as exc:
        return _household_page(request, agent, hh, error=exc.message, status=400)
    if changed:
        messages.success(request, _("Postal address saved."))
    return redirect(reverse("bookings:agent-household", args=[portal, hh.reference]) + "#h-address")


def _agent_booking(agent: Agent, pk: int) -> Booking:
    booking = get_object_or_404(
        Booking.objects.select_related("household", "child", "session__activity", "session__site", "unit"),
        pk=pk, organisation__in=agent.organisations,
    )
    if not agent.may_site(booking.session.site_id):
        raise PermissionDenied
    return booking


@login_required
@require_POST
def cancel(request, portal, pk):
    agent = _agent(request, portal)
    booking = _agent_booking(agent, pk)
    errors: dict[str, str] = {}
    label = _("Reason for cancelling")
    reason = post_values(request.POST, {"reason": label}, errors)["reason"]
    if len(reason) > REASON_MAX:
        errors.setdefault("reason", _("%(field)s: at most %(n)s characters; shorten it.") % {"field": label, "n": REASON_MAX})
    if errors:
        return _household_page(request, agent, booking.household, error=errors["reason"], status=400)
    try:
        services.booking_cancel(booking=booking, actor=_actor(request), now=timezone.now(), reason=reason)
    except services.BookingError as exc:
        return _household_page(request, agent, booking.household, error=exc.message, status=400)
    messages.success(request, _("Booking cancelled."))
    return redirect("bookings:agent-household", portal=portal, reference=booking.household.reference)


@login_required
@require_POST
def justification(request, portal, pk):
    agent = _agent(request, portal)
    booking = _agent_booking(agent, pk)
    form = AgentJustificationForm(request.POST, request.FILES)
    if not form.is_valid():
        errors = "; ".join(f"{form.fields[f].label}: {' '.join(e)}" if f in form.fields else " ".join(e)
                           for f, e in form.errors.items())
        return _household_page(request, agent, booking.household, error=errors, status=400)
    try:
        services.justification_record(
            booking=booking, kind=form.cleaned_data["kind"], document=form.cleaned_data.get("document"),
            actor=_actor(request), now=timezone.now(),
        )
    except services.BookingError as exc:
        return _household_page(request, agent, booking.household, error=exc.message, status=400)
    messages.success(request, _("Justification recorded."))
    return redirect("bookings:agent-household", portal=portal, reference=booking.household.reference)


# --- Attendance --------------------------------------------------------------------------------


def _attendance_place(request, sites: list[Site], errors: dict[str, str]) -> tuple[Site | None, dt.date]:
    """The site and day of the attendance page: from the query string, or from the posted form,
    whose fields are read once (errors name them; the page then shows the first site, today)."""
    if request.method != "POST":
        day = parse_day(request.GET.get("date", "")) or _today()
        site = next((s for s in sites if str(s.pk) == request.GET.get("site", "")), sites[0] if sites else None)
        return site, day
    labels = {"site": _("Site"), "date": _("Day")}
    posted = post_values(request.POST, labels, errors)
    day = parse_day(posted["date"])
    if day is None:
        errors.setdefault("date", _("%(field)s: enter the day as a date, for example 2024-12-04.") % {"field": labels["date"]})
    site = next((s for s in sites if str(s.pk) == posted["site"]), None)
    if site is None:
        errors.setdefault("site", _("%(field)s: choose one of your sites.") % {"field": labels["site"]})
    return site or (sites[0] if sites else None), day or _today()


@login_required
def attendance(request, portal):
    agent = _agent(request, portal)
    sites = list(agent.sites())
    errors: dict[str, str] = {}
    site, day = _attendance_place(request, sites, errors)
    bookings = []
    if site is not None:
        bookings = list(
            Booking.objects.filter(session__site=site, session__date=day, status=Booking.Status.BOOKED)
            .select_related("child", "household", "session__activity", "unit")
            .order_by("session__activity__position", "child__first_name", "pk")
        )
    saved = 0
    if request.method == "POST" and not errors:
        labels = {f"present-{b.pk}": _("Attendance of %(child)s") % {"child": b.child.first_name} for b in bookings}
        posted = post_values(request.POST, labels, errors)
        for name, value in posted.items():
            if value not in ("", "1", "0"):
                errors.setdefault(name, _("%(field)s: choose present or absent.") % {"field": labels[name]})
        to_record = [] if errors else [(b, posted[f"present-{b.pk}"]) for b in bookings if posted[f"present-{b.pk}"]]
        now = timezone.now()
        for b, value in to_record:  # none when a field was refused
            try:
                services.attendance_record(booking=b, present=value == "1", actor=_actor(request), now=now)
                saved += 1
            except services.BookingError as exc:
                errors[f"present-{b.pk}"] = exc.message
        if not errors:
            messages.success(request, _("Attendance saved (%(n)s children).") % {"n": saved})
            return redirect(reverse("bookings:agent-attendance", args=[portal]) + f"?site={site.pk}&date={day:%Y-%m-%d}")
    marks = dict(Attendance.objects.filter(booking__in=bookings).values_list("booking_id", "present"))
    rows = [{"booking": b, "present": marks.get(b.pk)} for b in bookings]
    error = " ".join(errors.values()) or None
    return render(request, "bookings/agent/attendance.html", _ctx(
        agent, sites=sites, site=site, day=day, rows=rows, error=error,
        present_count=sum(1 for r in rows if r["present"] is True),
        absent_count=sum(1 for r in rows if r["present"] is False),
    ), status=400 if error else 200)


# --- Fill rates --------------------------------------------------------------------------------


@login_required
def fill_rates(request, portal):
    agent = _agent(request, portal)
    activities = list(Activity.objects.filter(organisation__in=agent.organisations))
    activity = next((a for a in activities if str(a.pk) == request.GET.get("activity", "")), None)
    today = _today()
    date_from = parse_day(request.GET.get("from", "")) or today
    date_to = parse_day(request.GET.get("to", "")) or date_from + dt.timedelta(days=13)
    if date_to < date_from or (date_to - date_from).days > 92:
        date_to = date_from + dt.timedelta(days=13)
    if activity is None and activities:
        # The first activity with sessions in the period, so the page is never empty by default.
        with_sessions = set(
            Session.objects.filter(activity__in=activities, date__gte=date_from, date__lte=date_to)
            .values_list("activity_id", flat=True).distinct()
        )
        activity = next((a for a in activities if a.pk in with_sessions), activities[0])
    rows = []
    if activity is not None:
        for r in selectors.fill_rates(activity=activity, date_from=date_from, date_to=date_to):
            site = _field(r, "site")
            if not agent.may_site(getattr(site, "pk", site)):
                continue
            capacity = _field(r, "capacity") or 0
            booked = _field(r, "booked") or 0
            rows.append({
                "site": site, "date": _field(r, "date"), "part": _field(r, "part"),
                "capacity": capacity, "booked": booked, "waiting": _field(r, "waiting") or 0,
                "percent": round(100 * booked / capacity) if capacity else 0,
            })
    bar_width = 200
    for r in rows:
        r["bar"] = round(bar_width * min(r["booked"], r["capacity"]) / r["capacity"]) if r["capacity"] else 0
    return render(request, "bookings/agent/fill_rates.html", _ctx(
        agent, activities=activities, activity=activity, date_from=date_from, date_to=date_to, rows=rows,
        bar_width=bar_width, total_waiting=sum(r["waiting"] for r in rows),
    ))


def _field(row, name):
    return row.get(name) if isinstance(row, dict) else getattr(row, name, None)


# --- Waiting lists -----------------------------------------------------------------------------


@login_required
def waitlists(request, portal):
    agent = _agent(request, portal)
    today = _today()
    sessions = (
        Session.objects.filter(organisation__in=agent.organisations, date__gte=today, site__in=agent.sites())
        .annotate(
            n_waiting=Count("waitlist", filter=Q(waitlist__status=WaitlistEntry.Status.WAITING)),
            n_offered=Count("waitlist", filter=Q(waitlist__status=WaitlistEntry.Status.OFFERED)),
        )
        .filter(Q(n_waiting__gt=0) | Q(n_offered__gt=0))
        .select_related("activity", "site")
        .order_by("date", "site__name")[:200]
    )
    groups = []
    units_of: dict[int, list[Unit]] = {}
    for s in sessions:
        entries = list(
            WaitlistEntry.objects.filter(
                session=s, status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED]
            ).select_related("child", "household", "unit").order_by("requested_at", "pk")
        )
        units = units_of.setdefault(s.activity_id, list(
            Unit.objects.filter(activity_id=s.activity_id).order_by("position", "pk")))
        groups.append({"session": s, "entries": entries, "free": _free_by_unit(units, selectors.free_places(s))})
    return render(request, "bookings/agent/waitlists.html", _ctx(agent, groups=groups))


@login_required
@require_POST
def offer_next(request, portal, session):
    agent = _agent(request, portal)
    s = get_object_or_404(Session, pk=session, organisation__in=agent.organisations)
    if not agent.may_site(s.site_id):
        raise PermissionDenied
    try:
        entry = services.waitlist_offer_next(session=s, actor=_actor(request), now=timezone.now())
    except services.BookingError as exc:
        messages.error(request, exc.message)
    else:
        if entry is None:
            messages.info(request, _("No place to offer: the session is full or nobody is waiting."))
        else:
            messages.success(request, _("Place offered to family %(ref)s.") % {"ref": entry.household.reference})
    return redirect("bookings:agent-waitlists", portal=portal)
