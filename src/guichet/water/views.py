"""The water service's staff screens: customers' accounts, the outage marking, the
regularisation runs' summaries, the direct-debit runs and their pain.008 files.

Access: the ``finance`` role of the organisation (``guichet.accounts``); another
organisation's objects answer 404. Every write goes through ``guichet.water.services``.
"""

from __future__ import annotations

import datetime as dt
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from guichet.accounts.selectors import staff_organisations
from guichet.common.actor import Actor
from guichet.common.money import format_euros
from guichet.common.postdata import post_values

from . import selectors, services
from .models import Customer, DebitRun, Invoice, RegularisationRun

ROLE = "finance"


def _scope(request, portal: str, organisation: str | None = None):
    page, orgs = staff_organisations(request.user, ROLE, portal)
    if organisation is None:
        return page, orgs, None
    org = next((o for o in orgs if o.slug == organisation), None)
    if org is None:
        raise Http404
    return page, orgs, org


def _ctx(page, org, **extra):
    return {"portal": page, "organisation": org, **extra}


@login_required
def portal_home(request, portal):
    page, orgs, _org = _scope(request, portal)
    if len(orgs) == 1:
        return redirect("water:home", portal=portal, organisation=orgs[0].slug)
    return render(request, "water/portal.html", {"portal": page, "organisations": orgs})


@login_required
def home(request, portal, organisation):
    page, _orgs, org = _scope(request, portal, organisation)
    q = request.GET.get("q", "").strip()[:60]
    found = []
    if q:
        found = list(Customer.objects.filter(organisation=org).filter(
            Q(reference__iexact=q) | Q(reference__istartswith=q) | Q(name__icontains=q)).order_by("reference")[:30])
        if len(found) == 1 and found[0].reference.lower() == q.lower():
            return redirect("water:customer", portal=portal, organisation=organisation, reference=found[0].reference)
    return render(request, "water/home.html", _ctx(page, org, q=q, found=found, searched=bool(q),
                                                   overview=selectors.overview(org)))


@login_required
def customer(request, portal, organisation, reference):
    page, _orgs, org = _scope(request, portal, organisation)
    cust = get_object_or_404(Customer, organisation=org, reference=reference)
    return render(request, "water/customer.html", _ctx(page, org, account=selectors.account(cust)))


@login_required
@require_http_methods(["POST"])
def plan(request, portal, organisation, reference, number):
    """Spread a balance due over monthly instalments (a household that cannot pay at once)."""
    page, _orgs, org = _scope(request, portal, organisation)
    cust = get_object_or_404(Customer, organisation=org, reference=reference)
    invoice = get_object_or_404(Invoice, organisation=org, contract__customer=cust, number=number)
    refused: dict[str, str] = {}
    values = post_values(request.POST, {"count": _("Monthly instalments"), "first_due": _("First due on")}, refused)
    first_due = _parse_date(values["first_due"])
    try:
        count = int(values["count"])
    except ValueError:
        count = 0
    error = None
    if refused:
        error = " ".join(refused.values())
    elif first_due is None:
        error = _("Enter the due date of the first instalment as a date, for example 24/11/2026.")
    elif not 2 <= count <= 12:
        error = _("An instalment plan has between 2 and 12 monthly instalments.")
    else:
        try:
            services.payment_plan_create(invoice=invoice, count=count, first_due=first_due,
                                         actor=Actor.for_user(request.user, "counter"), now=timezone.now())
        except services.WaterError as e:
            error = e.message
    if error:
        return render(request, "water/customer.html",
                      _ctx(page, org, account=selectors.account(cust), plan_error=error, plan_invoice=number),
                      status=400)
    messages.success(request, _("The balance of %(number)s is spread over %(count)s monthly instalments.")
                     % {"number": number, "count": count})
    return redirect("water:customer", portal=portal, organisation=organisation, reference=reference)


def _parse_date(text: str) -> dt.date | None:
    """A date typed as 24/11/2026 (French habit) or 2026-11-24 (what a date picker sends)."""
    text = text.strip()
    if french := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text):
        text = f"{french[3]}-{int(french[2]):02d}-{int(french[1]):02d}"
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


@login_required
@require_http_methods(["GET", "POST"])
def outage(request, portal, organisation):
    page, _orgs, org = _scope(request, portal, organisation)
    errors: dict[str, str] = {}
    values = {"due_from": "", "due_until": "", "reason": ""}
    status = 200
    if request.method == "POST":
        values = post_values(request.POST, {"due_from": _("First due date"), "due_until": _("Last due date"),
                                            "reason": _("Reason (shown on the customer's account)")}, errors)
        start, end = _parse_date(values["due_from"]), _parse_date(values["due_until"])
        if start is None:
            errors.setdefault("due_from",
                              _("Enter the first due date of the period as a date, for example 24/11/2026."))
        if end is None:
            errors.setdefault("due_until",
                              _("Enter the last due date of the period as a date, for example 24/11/2026."))
        if start and end and end < start:
            errors.setdefault("due_until", _("The last due date is before the first one."))
        if not values["reason"]:
            errors.setdefault("reason", _("Say why the instalments were not collected."))
        if not errors:
            try:
                count, amount = services.instalments_mark_not_collected(
                    organisation=org, due_from=start, due_until=end, reason=values["reason"],
                    actor=Actor.for_user(request.user), now=timezone.now())
            except services.WaterError as e:
                errors["due_until" if e.field == "due_until" else "reason"] = e.message
            else:
                messages.success(request, _("%(count)s instalment(s) marked not collected (%(amount)s); they will be "
                                            "settled at the annual regularisation.")
                                 % {"count": count, "amount": format_euros(amount)})
                return redirect("water:outage", portal=portal, organisation=organisation)
        status = 400
    return render(request, "water/outage.html",
                  _ctx(page, org, errors=errors, values=values, marked=selectors.not_collected_by_month(org)),
                  status=status)


@login_required
def regularisations(request, portal, organisation):
    page, _orgs, org = _scope(request, portal, organisation)
    runs = [selectors.regularisation_view(r) for r in RegularisationRun.objects.filter(organisation=org)[:20]]
    return render(request, "water/regularisations.html", _ctx(page, org, runs=runs))


@login_required
def debit_runs(request, portal, organisation):
    page, _orgs, org = _scope(request, portal, organisation)
    runs = list(DebitRun.objects.filter(organisation=org).defer("xml")[:50])
    return render(request, "water/debit_runs.html", _ctx(page, org, runs=selectors.debit_runs_view(runs)))


@login_required
def debit_file(request, portal, organisation, pk):
    _page, _orgs, org = _scope(request, portal, organisation)
    run = get_object_or_404(DebitRun, organisation=org, pk=pk)
    response = HttpResponse(bytes(run.xml), content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="pain008-{run.collection_date.isoformat()}-{run.pk}.xml"'
    return response
