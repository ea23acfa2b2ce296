"""The family portal ("Espace famille"): thin views over ``selectors`` and ``services``.

A parent signs in; their account is linked to a household by a ``Guardian`` row. Every object
reached from a URL (child, booking, basket, justification, waiting-list entry) is looked up
*within that household*: another household's objects answer 404, never 403, so that ids do
not leak. Everything works without JavaScript.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from guichet.catalog.models import Portal
from guichet.common.actor import Actor
from guichet.common.postdata import post_values
from guichet.recovery import gates

from . import households, ical, intake, selectors, services
from .forms import BasketModeForm, JustificationForm, new_key
from .models import (
    AgentRole,
    Basket,
    Booking,
    Child,
    Guardian,
    Household,
    Justification,
    Unit,
    WaitlistEntry,
)
from .present import (
    PARIS,
    basket_lines,
    booking_facts,
    calendar_view,
    closed_gates,
    legend,
    month_bounds,
    month_grid,
    offer_answer_by,
    offer_resume_hours,
    parse_month,
    parse_week,
    week_bounds,
)

MAX_BASKET_ITEMS = 60
UNIT_CODE_MAX = Unit._meta.get_field("code").max_length


@dataclass
class Family:
    portal: Portal
    household: Household
    children: list


def _family(request, portal_slug: str) -> Family:
    portal = get_object_or_404(Portal, slug=portal_slug)
    guardian = (
        Guardian.objects.select_related("household")
        .filter(user=request.user, household__organisation__portal=portal)
        .order_by("pk")
        .first()
    )
    if guardian is None:
        raise Http404
    household = guardian.household
    return Family(portal, household, list(Child.objects.filter(household=household).order_by("birth_date", "pk")))


def _actor(request) -> Actor:
    return Actor.for_user(request.user, "web")


def _ctx(family: Family, **extra) -> dict:
    return {"portal": family.portal, "household": family.household, "children": family.children,
            "hide_banner": False, **extra}


# --- Home ---------------------------------------------------------------------------------------


@login_required
def home(request, portal):
    family = _family(request, portal)
    now = timezone.now()
    today = now.astimezone(PARIS).date()
    upcoming = list(
        Booking.objects.filter(household=family.household, status=Booking.Status.BOOKED, session__date__gte=today)
        .select_related("child", "session__activity", "session__site", "unit")
        .order_by("session__date", "child__birth_date", "pk")[:40]
    )
    cancel_closed = closed_gates(organisation_id=family.household.organisation_id, function="cancellation", now=now)
    per_child = []
    for child in family.children:
        mine = [b for b in upcoming if b.child_id == child.pk][:5]
        facts = [booking_facts(b, now) for b in mine]
        for f in facts:
            f.cancel_gate = cancel_closed.get(f.booking.session.activity_id)
        per_child.append({"child": child, "bookings": facts})
    waiting = list(
        WaitlistEntry.objects.filter(
            household=family.household, status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED]
        ).select_related("child", "session__activity", "session__site", "unit")
    )
    booking_closed = closed_gates(organisation_id=family.household.organisation_id, function="booking", now=now)
    waits = [
        {"entry": e, "position": selectors.waitlist_position(e) if e.status == "waiting" else None,
         "gate": booking_closed.get(e.session.activity_id) if e.status == "offered" else None,
         "until": offer_answer_by(e, e.session, now) if e.status == "offered" else None,
         "resume_hours": offer_resume_hours(e.session)}
        for e in waiting
    ]
    to_justify = [
        booking_facts(b, now)
        for b in Booking.objects.filter(household=family.household, status=Booking.Status.CANCELLED, late=True)
        .select_related("child", "session__activity", "session__site", "unit")
        .order_by("-cancelled_at")[:10]
    ]
    to_justify = [f for f in to_justify if f.billable and f.can_justify]
    feed = request.build_absolute_uri(
        reverse("bookings:ical", args=[portal, family.household.pk, ical.household_token(family.household.pk)])
    )
    return render(request, "bookings/home.html", _ctx(
        family, per_child=per_child, waits=waits, to_justify=to_justify, feed_url=feed,
    ))


# --- Calendar and basket ----------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def address(request, portal):
    """The family's postal address, printed on its invoices: shown and changed here."""
    family = _family(request, portal)
    if request.method == "POST":
        value = ""
        try:
            value = households.posted_postal_address(request.POST)
            changed = households.household_address_set(
                household=family.household, postal_address=value, actor=_actor(request))
        except households.HouseholdError as exc:
            return render(request, "bookings/address.html", _ctx(family, error=exc.message, value=value), status=400)
        return redirect(reverse("bookings:address", args=[portal]) + ("?enregistre=1" if changed else ""))
    return render(request, "bookings/address.html", _ctx(
        family, value=family.household.postal_address, saved=request.GET.get("enregistre") == "1"))


def _period(request, today: dt.date):
    week = request.GET.get("semaine")
    if week:
        monday = parse_week(week)
        if monday is None:
            raise Http404
        return "week", *week_bounds(monday)
    month = parse_month(request.GET.get("mois", "")) if request.GET.get("mois") else (today.year, today.month)
    if month is None:
        raise Http404
    return "month", *month_bounds(*month)


def _chosen_children(request, family: Family) -> tuple[str | None, list]:
    """``?enfant=<id>``: one child of the household (404 for any other id), else all of them."""
    only = request.GET.get("enfant")
    if not only:
        return None, family.children
    children = [c for c in family.children if str(c.pk) == only]
    if not children:
        raise Http404
    return only, children


@login_required
def calendar_month(request, portal):
    """The month as a grid (weeks of seven days) per child: the state of each day in words,
    each day linking to its week, where it is booked or cancelled. The month links swap the
    grid in place with HTMX; without JavaScript they load the whole page."""
    family = _family(request, portal)
    now = timezone.now()
    today = now.astimezone(PARIS).date()
    month = parse_month(request.GET.get("mois", "")) if request.GET.get("mois") else (today.year, today.month)
    if month is None:
        raise Http404
    first, last = month_bounds(*month)
    only, children = _chosen_children(request, family)
    data = calendar_view(
        household=family.household, children=children, date_from=first, date_to=last, now=now, kind="month",
        gated=True,
    )
    partial = request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")
    grids = month_grid(data)
    response = render(
        request, "bookings/_month_grid.html" if partial else "bookings/calendar_month.html",
        _ctx(family, cal=data, grids=grids, only=only, legend=legend(grids), nav="calendar"),
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
def calendar(request, portal):
    family = _family(request, portal)
    now = timezone.now()
    today = now.astimezone(PARIS).date()
    kind, first, last = _period(request, today)
    only, children = _chosen_children(request, family)
    data = calendar_view(
        household=family.household, children=children, date_from=first, date_to=last, now=now, kind=kind,
        gated=True,
    )
    form = BasketModeForm(initial={"idempotency_key": new_key()})  # the family chooses the mode
    return render(request, "bookings/calendar.html", _ctx(family, cal=data, form=form, only=only))


def _basket_items(post, family: Family, errors: dict[str, str]) -> list[dict]:
    """Items from the calendar's selects named ``item-<child>-<session>`` (value: unit code), each
    read once: a repeated select, a control character or a value no unit code can be is an error
    naming the child in ``errors``."""
    children = {c.pk: c for c in family.children}
    fields: dict[str, tuple[int, int]] = {}
    for key in post:
        if not key.startswith("item-"):
            continue
        try:
            _prefix, child, session = key.split("-")
            child, session = int(child), int(session)
        except ValueError:
            continue
        if child not in children:
            raise Http404
        fields[key] = (child, session)
    labels = {key: _("Unit for %(child)s") % {"child": children[child].first_name} for key, (child, _s) in fields.items()}
    values = post_values(post, labels, errors)
    items = []
    for key, (child, session) in fields.items():
        if len(values[key]) > UNIT_CODE_MAX:
            errors.setdefault(key, _("%(field)s: choose one of the units of the list.") % {"field": labels[key]})
        if values[key] and key not in errors:
            items.append({"child": child, "session": session, "unit": values[key]})
    items.sort(key=lambda i: (i["session"], i["child"]))
    return items


@login_required
@require_POST
def basket_submit(request, portal):
    family = _family(request, portal)
    form = BasketModeForm(request.POST)
    errors: dict[str, str] = {}
    items = _basket_items(request.POST, family, errors)
    back = reverse("bookings:calendar", args=[portal])
    posted_back = post_values(request.POST, {"back": _("Page to return to")}, errors)["back"]
    if posted_back.startswith(back) and "back" not in errors:
        back = posted_back
    if errors or not form.is_valid() or not items or len(items) > MAX_BASKET_ITEMS:
        if errors:
            error = " ".join(errors.values())
        elif not items:
            error = _("Choose at least one day: pick a unit in the list for each day you want.")
        elif len(items) > MAX_BASKET_ITEMS:
            error = _("At most %(n)s days in one request.") % {"n": MAX_BASKET_ITEMS}
        else:
            error = _("Choose what to do if some days are full.")
        return render(request, "bookings/basket_error.html", _ctx(family, error=error, back=back), status=400)
    closed = gates.basket_gate(household=family.household, items=items, now=timezone.now(),
                               idempotency_key=form.cleaned_data["idempotency_key"])
    if closed:  # suspended on the status board: nothing is received (docs/guide-degraded-mode.md)
        return intake.busy_logged(
            render(request, "recovery/closed_family.html", _ctx(family, gate=closed, back=back), status=503),
            what="family portal: booking suspended on the status board")
    try:
        # Received first (its place in line), then answered; when the server is saturated the
        # result page says "in line, your place is kept" and answers on refresh.
        basket = intake.submit(
            household=family.household, items=items, mode=form.cleaned_data["mode"], actor=_actor(request),
            idempotency_key=form.cleaned_data["idempotency_key"], channel="portal", wait=None,
        ).basket
    except services.BookingError as exc:
        return render(request, "bookings/basket_error.html", _ctx(family, error=exc.message, back=back), status=400)
    return redirect("bookings:basket", portal=portal, pk=basket.pk)


@login_required
def basket_result(request, portal, pk):
    family = _family(request, portal)
    basket = get_object_or_404(Basket.objects.select_related("household"), pk=pk, household=family.household)
    if basket.status != Basket.Status.DONE:
        basket = intake.answer(basket, actor=_actor(request), wait=None).basket
    lines = basket_lines(basket, family.children)
    counts = {o: sum(1 for line in lines if line["outcome"] == o) for o in ("booked", "waitlisted", "refused")}
    return render(request, "bookings/basket.html", _ctx(family, basket=basket, lines=lines, counts=counts))


# --- Cancel, justify, waiting list -------------------------------------------------------------


def _booking(family: Family, pk: int) -> Booking:
    return get_object_or_404(
        Booking.objects.select_related("child", "session__activity", "session__site", "unit"),
        pk=pk, household=family.household,
    )


@login_required
@require_http_methods(["GET", "POST"])
def cancel(request, portal, pk):
    family = _family(request, portal)
    booking = _booking(family, pk)
    now = timezone.now()
    facts = booking_facts(booking, now)
    closed = gates.cancellation_gate(booking=booking, now=now)
    facts.cancel_gate = closed if closed.closed else None  # the page then offers no cancel button
    if request.method == "POST" and booking.status == Booking.Status.BOOKED:
        if closed.closed:  # suspended on the status board: nothing is changed
            back = reverse("bookings:home", args=[portal])
            return intake.busy_logged(
                render(request, "recovery/closed_family.html", _ctx(family, gate=closed, back=back), status=503),
                what="family portal: cancellation suspended on the status board")
        try:
            booking = services.booking_cancel(booking=booking, actor=_actor(request), now=now)
        except services.BookingError as exc:
            return render(request, "bookings/cancel.html", _ctx(family, b=facts, error=exc.message), status=400)
        return render(request, "bookings/cancelled.html", _ctx(family, b=booking_facts(booking, now)))
    return render(request, "bookings/cancel.html", _ctx(family, b=facts))


@login_required
@require_http_methods(["GET", "POST"])
def justify(request, portal, pk):
    family = _family(request, portal)
    booking = _booking(family, pk)
    now = timezone.now()
    form = JustificationForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.justification_record(
                booking=booking, kind=form.cleaned_data["kind"], document=form.cleaned_data["document"],
                actor=_actor(request), now=now,
            )
        except services.BookingError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return render(request, "bookings/justified.html", _ctx(family, b=booking_facts(booking, now)))
    status = 400 if request.method == "POST" else 200
    return render(request, "bookings/justify.html", _ctx(family, b=booking_facts(booking, now), form=form), status=status)


def _may_read_document(user, justification: Justification) -> bool:
    if not user.is_authenticated:
        return False
    if Guardian.objects.filter(user=user, household_id=justification.booking.household_id).exists():
        return True
    if user.is_superuser:
        return True
    site_id = justification.booking.session.site_id
    return AgentRole.objects.filter(user=user, organisation_id=justification.organisation_id).filter(
        site__isnull=True
    ).exists() or AgentRole.objects.filter(user=user, organisation_id=justification.organisation_id, site_id=site_id).exists()


@login_required
def document(request, portal, pk):
    """A justification's file, for its household and the agents only (never a public URL)."""
    get_object_or_404(Portal, slug=portal)
    justification = get_object_or_404(
        Justification.objects.select_related("booking__session"), pk=pk, organisation__portal__slug=portal
    )
    if not justification.document or not _may_read_document(request.user, justification):
        raise Http404
    if not Guardian.objects.filter(user=request.user, household_id=justification.booking.household_id).exists():
        from guichet.accounts.access import record_access  # an agent opened a family's file

        record_access(user=request.user, household=justification.booking.household, what="bookings.document")
    try:
        handle = justification.document.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    name = justification.document.name.rsplit("/", 1)[-1]
    response = FileResponse(handle, as_attachment=True, filename=name)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def waitlist_answer(request, portal, pk, answer):
    family = _family(request, portal)
    entry = get_object_or_404(WaitlistEntry, pk=pk, household=family.household)
    now = timezone.now()
    if answer == "accepter":
        closed = gates.waitlist_accept_gate(entry=entry, now=now)
        if closed.closed:  # booking suspended on the status board: accepting is booking; nothing changes
            back = reverse("bookings:home", args=[portal])
            return intake.busy_logged(
                render(request, "recovery/closed_family.html", _ctx(family, gate=closed, back=back), status=503),
                what="family portal: waiting-list acceptance suspended on the status board")
    try:
        if answer == "accepter":
            services.waitlist_accept(entry=entry, actor=_actor(request), now=now)
            message = _("The place is yours: the booking is confirmed.")
        elif answer == "refuser":
            services.waitlist_decline(entry=entry, actor=_actor(request), now=now)
            message = _("You declined the place; it goes to the next family on the list.")
        else:
            raise Http404
    except services.BookingError as exc:
        return render(request, "bookings/basket_error.html", _ctx(
            family, error=exc.message, back=reverse("bookings:home", args=[portal])), status=400)
    return render(request, "bookings/waitlist_done.html", _ctx(family, message=message))


# --- iCalendar feed ---------------------------------------------------------------------------


def ical_feed(request, portal, household, token):
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if not ical.check_token(household, token):
        raise Http404
    hh = get_object_or_404(Household, pk=household, organisation__portal__slug=portal)
    now = timezone.now()
    since = now.astimezone(PARIS).date() - dt.timedelta(days=60)
    bookings = (
        Booking.objects.filter(household=hh, status=Booking.Status.BOOKED, session__date__gte=since)
        .select_related("child", "session__activity", "session__site", "unit")
        .order_by("session__date", "pk")
    )
    events = [
        {
            "uid": f"booking-{b.pk}",
            "date": b.session.date,
            "summary": f"{b.child.first_name} — {b.session.activity.name} ({b.unit.name})",
            "location": ", ".join(x for x in (b.session.site.name, b.session.site.address) if x),
            "description": b.session.activity.name,
            "parts": b.unit.parts,
        }
        for b in bookings
    ]
    body = ical.build_calendar(name=_("Family bookings"), events=events, now=now, host=request.get_host().split(":")[0])
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response
