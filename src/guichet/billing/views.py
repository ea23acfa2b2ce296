"""The family portal's billing pages ("Mes factures"): invoices (HTML and PDF), deposits,
payments and balance. A parent reaches only the household their account is linked to
(another household's invoice answers 404, never 403). Works without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from guichet.bookings.models import Guardian, Household
from guichet.catalog.models import Portal

from . import pdf, present, selectors
from .models import Invoice


@dataclass
class Family:
    portal: Portal
    household: Household


def _family(request, portal_slug: str) -> Family:
    portal = get_object_or_404(Portal, slug=portal_slug)
    guardian = (Guardian.objects.select_related("household__organisation__portal")
                .filter(user=request.user, household__organisation__portal=portal).order_by("pk").first())
    if guardian is None:
        raise Http404
    return Family(portal, guardian.household)


def _invoice(family: Family, pk: int) -> Invoice:
    return get_object_or_404(Invoice.objects.select_related("organisation__portal", "household", "corrects"),
                             pk=pk, household=family.household, status=Invoice.Status.FINAL)


def _ctx(family: Family, **extra) -> dict:
    return {"portal": family.portal, "household": family.household, "nav": "billing", **extra}


@login_required
def account(request, portal):
    family = _family(request, portal)
    today = timezone.now().astimezone(present.PARIS).date()
    balance = selectors.household_balance(household=family.household)
    rows = selectors.household_invoices(household=family.household)
    notes = present.credit_notes_by_invoice(inv for inv, _due in rows)
    invoices = [{"invoice": inv, "due": due, "state": present.due_state(inv, due, today, notes.get(inv.pk, ())),
                 "period": present.period_label(inv.first_month, inv.last_month)} for inv, due in rows]
    payments = [{"payment": p, "kind": present.kind_label(p.kind), "method": present.method_label(p.method),
                 "available": selectors.payment_available(p) if p.kind == "deposit" else 0}
                for p in selectors.household_payments(household=family.household)]
    return render(request, "billing/family/account.html", _ctx(
        family, balance=balance, invoices=invoices, payments=payments,
        issuer=present.issuer_for(family.household.organisation),
        overdue=any(i["state"][0] == "overdue" for i in invoices)))


@login_required
def invoice(request, portal, pk):
    family = _family(request, portal)
    inv = _invoice(family, pk)
    today = timezone.now().astimezone(present.PARIS).date()
    doc = present.invoice_doc(inv)
    return render(request, "billing/family/invoice.html", _ctx(
        family, doc=doc, issuer=doc.issuer, state=present.due_state(inv, doc.due_now_cents, today,
                                                                  present.credit_notes_by_invoice([inv]).get(inv.pk, ()))))


@login_required
def invoice_pdf(request, portal, pk):
    family = _family(request, portal)
    inv = _invoice(family, pk)
    response = HttpResponse(pdf.invoice_pdf(inv), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{pdf.download_name(inv)}"'
    return response
