"""Staff screens for degraded mode and coming back (under /manage/recovery/): one screen per
organisation that shows what was recorded while degraded, what is still to enter and what must
be caught up; and the entry of paper forms (bookings, deposits, void numbers, a CSV batch).

Access: the coming-back screen for agents, counter, finance, IT and administrators of the
organisation; paper bookings for booking agents; paper deposits for counter and finance staff.
"""

from __future__ import annotations

import itertools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from guichet.accounts.selectors import organisations_for
from guichet.bookings.models import Child, Household, Session
from guichet.catalog.models import Organisation, Portal
from guichet.common.actor import Actor

from . import selectors, services
from .forms import PaperBookingForm, PaperDepositForm, PaperImportForm, PaperVoidForm

SCREEN_KINDS = ("agent", "counter", "finance", "it", "admin")
BOOKING_KINDS = ("agent",)
DEPOSIT_KINDS = ("counter", "finance")
VOID_KINDS = ("agent", "counter", "finance")


def _organisations(user, portal: Portal, kinds) -> list[Organisation]:
    ids: set[int] = set()
    for kind in kinds:
        ids |= set(organisations_for(user, kind, portal).values_list("pk", flat=True))
    return list(Organisation.objects.filter(pk__in=ids).order_by("position", "name"))


def _scope(request, portal_slug: str, org_slug: str | None, kinds) -> tuple[Portal, Organisation, list]:
    portal = Portal.objects.filter(slug=portal_slug).first()
    if portal is None:
        raise Http404
    orgs = _organisations(request.user, portal, kinds)
    if not orgs:
        raise PermissionDenied
    if org_slug is None:
        return portal, orgs[0], orgs
    org = next((o for o in orgs if o.slug == org_slug), None)
    if org is None:
        if Organisation.objects.filter(portal=portal, slug=org_slug).exists():
            raise PermissionDenied
        raise Http404
    return portal, org, orgs


def _actor(request) -> Actor:
    return Actor.for_user(request.user, "counter")


def _ctx(portal, org, orgs, request, **extra) -> dict:
    may = {what: org in _organisations(request.user, portal, kinds)
           for what, kinds in (("bookings", BOOKING_KINDS), ("deposits", DEPOSIT_KINDS), ("void", VOID_KINDS))}
    return {"portal": portal, "organisation": org, "organisations": orgs, "may": may, **extra}


@login_required
def home(request, portal):
    _portal, org, _orgs = _scope(request, portal, None, SCREEN_KINDS)
    return redirect("recovery:coming-back", portal=portal, organisation=org.slug)


@login_required
def coming_back(request, portal, organisation):
    portal_obj, org, orgs = _scope(request, portal, organisation, SCREEN_KINDS)
    data = selectors.coming_back(org, timezone.now())
    return render(request, "recovery/coming_back.html", _ctx(portal_obj, org, orgs, request, cb=data))


def _household(org: Organisation, form, field: str = "household") -> Household | None:
    ref = form.cleaned_data.get(field, "").strip()
    household = Household.objects.filter(organisation=org, reference__iexact=ref).first()
    if household is None:
        form.add_error(field, _("No family file %(ref)s in this organisation.") % {"ref": ref[:30]})
    return household


FIELDS = {"received_at": "received_on", "items": "children", "child": "children", "session": "dates",
          "unit": "unit", "amount_cents": "amount"}


def _service_error(form, exc: services.RecoveryError) -> None:
    """The service's field (``items[2].unit``, ``received_at``...) as the form's field."""
    path = exc.field or ""
    last = path.rsplit(".", 1)[-1].split("[")[0] if path else ""
    field = FIELDS.get(last, last)
    form.add_error(field if field in form.fields else None, exc.message)


def _booking_items(org, form, household) -> list[dict] | None:
    activity, site = form.cleaned_data["activity"], form.cleaned_data["site"]
    children = []
    for name in form.cleaned_data["children"]:
        child = Child.objects.filter(household=household, first_name__iexact=name).order_by("pk").first()
        if child is None:
            form.add_error("children", _("No child called %(name)s in this family file.") % {"name": name[:40]})
            return None
        children.append(child)
    sessions = {s.date: s for s in Session.objects.filter(organisation=org, activity=activity, site=site,
                                                           date__in=form.cleaned_data["dates"])}
    missing = [d for d in form.cleaned_data["dates"] if d not in sessions]
    if missing:
        form.add_error("dates", _("No session of this activity at this centre on: %(days)s.")
                       % {"days": ", ".join(d.strftime("%d/%m/%Y") for d in missing)})
        return None
    return [{"child": c.pk, "session": sessions[d].pk, "unit": form.cleaned_data["unit"].strip()}
            for c, d in itertools.product(children, form.cleaned_data["dates"])]


@login_required
@require_http_methods(["GET", "POST"])
def paper_booking(request, portal, organisation):
    portal_obj, org, orgs = _scope(request, portal, organisation, BOOKING_KINDS)
    form = PaperBookingForm(request.POST or None, organisation=org)
    result = None
    if request.method == "POST" and form.is_valid():
        household = _household(org, form)
        items = _booking_items(org, form, household) if household else None
        if items:
            try:
                result = services.paper_booking_record(
                    organisation=org, series=form.cleaned_data["series"], number=form.cleaned_data["number"],
                    received_at=form.received_at(), household=household, items=items,
                    mode=form.cleaned_data["mode"], actor=_actor(request), now=timezone.now(),
                    duplicate=form.cleaned_data["duplicate"])
            except services.RecoveryError as exc:
                _service_error(form, exc)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "recovery/paper_booking.html",
                  _ctx(portal_obj, org, orgs, request, form=form, result=result), status=status)


@login_required
@require_http_methods(["GET", "POST"])
def paper_deposit(request, portal, organisation):
    portal_obj, org, orgs = _scope(request, portal, organisation, DEPOSIT_KINDS)
    form = PaperDepositForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        household = _household(org, form)
        if household:
            try:
                result = services.paper_deposit_record(
                    organisation=org, series=form.cleaned_data["series"], number=form.cleaned_data["number"],
                    received_at=form.received_at(), household=household, amount_cents=form.cleaned_data["amount"],
                    method=form.cleaned_data["method"], reference=form.cleaned_data["reference"],
                    actor=_actor(request), now=timezone.now(), duplicate=form.cleaned_data["duplicate"])
            except services.RecoveryError as exc:
                _service_error(form, exc)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "recovery/paper_deposit.html",
                  _ctx(portal_obj, org, orgs, request, form=form, result=result), status=status)


@login_required
@require_http_methods(["GET", "POST"])
def paper_void(request, portal, organisation):
    portal_obj, org, orgs = _scope(request, portal, organisation, VOID_KINDS)
    form = PaperVoidForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.paper_void(organisation=org, kind=form.cleaned_data["kind"], series=form.cleaned_data["series"],
                                number=form.cleaned_data["number"], reason=form.cleaned_data["reason"],
                                actor=_actor(request), now=timezone.now())
        except services.RecoveryError as exc:
            _service_error(form, exc)
        else:
            messages.success(request, _("Number %(label)s is recorded as void.") % {
                "label": f"{form.cleaned_data['series']}-{form.cleaned_data['number']}"})
            return redirect(reverse("recovery:coming-back", args=[portal, org.slug]) + "#numbering")
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "recovery/paper_void.html", _ctx(portal_obj, org, orgs, request, form=form),
                  status=status)


@login_required
@require_http_methods(["GET", "POST"])
def paper_import(request, portal, organisation):
    portal_obj, org, orgs = _scope(request, portal, organisation, BOOKING_KINDS)
    form = PaperImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        report = services.paper_bookings_import(organisation=org, text=form.cleaned_data["content"],
                                                actor=_actor(request), now=timezone.now(),
                                                mode=form.cleaned_data["mode"])
    status = 400 if (request.method == "POST" and (form.errors or (report and report.errors))) else 200
    return render(request, "recovery/paper_import.html",
                  _ctx(portal_obj, org, orgs, request, form=form, report=report, columns=services.COLUMNS),
                  status=status)
