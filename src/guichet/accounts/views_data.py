"""Personal data: the family downloads its data and asks for erasure; staff review requests."""

from __future__ import annotations

import datetime as dt
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from guichet.bookings.models import Guardian, Household
from guichet.catalog.models import Portal
from guichet.common.postdata import post_values

from . import personal_data
from .access import record_access
from .models import ErasureRequest
from .selectors import organisations_for


def _household(request, portal: Portal) -> Household:
    guardian = (Guardian.objects.select_related("household__organisation")
                .filter(user=request.user, household__organisation__portal=portal).order_by("pk").first())
    if guardian is None:
        raise Http404
    return guardian.household


@login_required
def family_data(request, portal):
    p = get_object_or_404(Portal, slug=portal)
    household = _household(request, p)
    if request.GET.get("download") == "json":
        doc = personal_data.household_export(household)
        personal_data.record_export(household=household, user=request.user)
        response = HttpResponse(json.dumps(doc, ensure_ascii=False, indent=2), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="guichet-{household.reference}.json"'
        response["Cache-Control"] = "private, no-store"
        return response
    open_request = ErasureRequest.objects.filter(household_id=household.pk).order_by("-requested_at").first()
    return render(request, "accounts/family_data.html", {
        "portal": p, "household": household, "request_": open_request, "nav": "data"})


@login_required
@require_POST
def family_erasure(request, portal):
    p = get_object_or_404(Portal, slug=portal)
    household = _household(request, p)
    personal_data.erasure_request(household=household, user=request.user)
    return redirect("accounts:family-data", p.slug)


def _reviewer_orgs(request, portal: Portal):
    orgs = list(organisations_for(request.user, "admin", portal)) + list(organisations_for(request.user, "agent", portal))
    if not orgs:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied
    return {o.pk for o in orgs}


@login_required
def staff_erasures(request, portal):
    p = get_object_or_404(Portal, slug=portal)
    org_ids = _reviewer_orgs(request, p)
    requests = list(ErasureRequest.objects.filter(organisation_id__in=org_ids)
                    .filter(Q(status="open") | Q(answered_at__gte=timezone.now() - dt.timedelta(days=90))))
    households = Household.objects.in_bulk([r.household_id for r in requests])
    return render(request, "accounts/staff_erasures.html", {
        "portal": p, "rows": [(r, households.get(r.household_id)) for r in requests]})


@login_required
@require_http_methods(["GET", "POST"])
def staff_erasure(request, portal, pk):
    p = get_object_or_404(Portal, slug=portal)
    org_ids = _reviewer_orgs(request, p)
    req = get_object_or_404(ErasureRequest, pk=pk, organisation_id__in=org_ids)
    household = Household.objects.filter(pk=req.household_id).first()
    error = None
    if request.method == "POST":
        errors: dict[str, str] = {}
        posted = post_values(request.POST, {"action": _("Action"), "confirm": _("Confirmation")}, errors)
        action = posted["action"] or "answer"  # the "mark as answered" button
        if action not in ("erase", "answer"):
            errors.setdefault("action", _("%(field)s: unknown; use one of the page's buttons.") % {"field": _("Action")})
        if errors:
            error = " ".join(errors.values())
        elif action == "answer":
            personal_data.erasure_answer(request_id=req.pk, organisation_ids=org_ids, user=request.user)
            return redirect("accounts:staff-erasure", p.slug, req.pk)
        elif posted["confirm"] != "yes":
            error = _("Tick the box to confirm the erasure: it cannot be undone.")
        else:
            try:
                personal_data.erasure_execute(request_id=req.pk, organisation_ids=org_ids, user=request.user)
            except personal_data.ErasureRefused as exc:
                error = exc.message
            else:
                messages.success(request, _("The family file's personal data has been erased; tell the family."))
                return redirect("accounts:staff-erasure", p.slug, req.pk)
    assessment = []
    if household is not None:
        record_access(user=request.user, household=household, what="accounts.erasure")
        assessment = personal_data.erasure_assessment(household)
    return render(request, "accounts/staff_erasure.html", {
        "portal": p, "req": req, "household": household, "assessment": assessment, "error": error,
        "blocked": any(row["blocks"] for row in assessment)}, status=400 if error else 200)
