"""Staff screens of childhood billing, under ``/manage/billing/<portal>/<organisation>/``.

- Counter agents (``counter`` role) and finance (``finance`` role): find a household, see its
  billing account and balance, record a deposit (cash, cheque, card) with a printable receipt,
  record a payment of an issued invoice.
- Finance only: invoice runs (create over a range of months and activities, follow the
  progress, review the drafts and anomalies, finalise or cancel), credit notes, refunds, the
  treasury export of unpaid invoices.

Roles come from ``guichet.accounts`` (``StaffRole``); another organisation's objects answer 404.
Every write goes through ``guichet.billing.services``; a refused action is shown as a form
error and changes nothing. Works without JavaScript (the run page refreshes itself while the
run is billing).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from guichet.accounts.access import record_access
from guichet.accounts.selectors import organisations_for
from guichet.bookings.models import Activity, Household
from guichet.catalog.models import Organisation, Portal
from guichet.common.actor import Actor
from guichet.common.money import MoneyError, format_euros, parse_euros
from guichet.common.postdata import post_values

from . import pdf, present, selectors, services, tasks, treasury
from .errors import BillingError
from .models import Invoice, InvoiceLine, InvoiceRun, Payment

COUNTER_METHODS = (Payment.Method.CASH, Payment.Method.CHEQUE, Payment.Method.CARD)
PAYMENT_METHODS = (Payment.Method.CASH, Payment.Method.CHEQUE, Payment.Method.CARD, Payment.Method.TRANSFER)
DRAFTS_PER_PAGE = 50


@dataclass
class Staff:
    portal: Portal
    organisation: Organisation
    finance: bool
    counter: bool


def _allowed(user, portal: Portal) -> tuple[set[int], set[int]]:
    return (set(organisations_for(user, "finance", portal).values_list("pk", flat=True)),
            set(organisations_for(user, "counter", portal).values_list("pk", flat=True)))


def _staff(request, portal: str, organisation: str, *, finance_only: bool = False) -> Staff:
    page = Portal.objects.filter(slug=portal).first()
    if page is None:
        raise Http404
    finance, counter = _allowed(request.user, page)
    if not finance and not counter:
        raise PermissionDenied
    org = Organisation.objects.filter(portal=page, slug=organisation).select_related("portal").first()
    if org is None or org.pk not in finance | counter:
        raise Http404
    if finance_only and org.pk not in finance:
        raise PermissionDenied
    return Staff(page, org, org.pk in finance, org.pk in counter)


def _actor(request) -> Actor:
    return Actor.for_user(request.user, "counter")


def _today() -> dt.date:
    return timezone.now().astimezone(present.PARIS).date()


def _ctx(staff: Staff, **extra) -> dict:
    return {"portal": staff.portal, "organisation": staff.organisation, "staff": staff, **extra}


def _amount(text: str, errors: dict, field: str = "amount") -> int | None:
    if field in errors:  # sent twice, or with control characters: already said
        return None
    try:
        cents = parse_euros(text)
    except MoneyError:
        errors[field] = _("Enter the amount in euros, e.g. 45,50.")
        return None
    if cents <= 0:
        errors[field] = _("The amount must be more than 0.")
        return None
    return cents


def _key(value: str) -> str:
    value = (value or "").strip()
    return value if 1 <= len(value) <= 100 and "\x00" not in value else uuid.uuid4().hex


def _form_key_label() -> str:
    return _("The form's key (hidden field)")


def _field_of(exc: BillingError, known: tuple[str, ...], default: str) -> str:
    name = {"amount_cents": "amount"}.get(exc.field, exc.field)
    return name if name in known else default


# --- entry points ---------------------------------------------------------------------------------


@login_required
def portal_home(request, portal):
    page = Portal.objects.filter(slug=portal).first()
    if page is None:
        raise Http404
    finance, counter = _allowed(request.user, page)
    orgs = list(Organisation.objects.filter(portal=page, pk__in=finance | counter).order_by("position", "name"))
    if not orgs:
        raise PermissionDenied
    if len(orgs) == 1:
        return redirect("billing:staff-home", portal=portal, organisation=orgs[0].slug)
    return render(request, "billing/staff/portal.html", {"portal": page, "organisations": orgs})


@login_required
def home(request, portal, organisation):
    staff = _staff(request, portal, organisation)
    q = request.GET.get("q", "").strip()[:60]
    found = []
    if q:
        found = list(Household.objects.filter(organisation=staff.organisation).filter(
            Q(reference__iexact=q) | Q(reference__istartswith=q) | Q(display_name__icontains=q))
            .order_by("reference")[:30])
        if len(found) == 1 and found[0].reference.lower() == q.lower():
            return redirect("billing:staff-household", portal=portal, organisation=organisation,
                            reference=found[0].reference)
    runs = list(InvoiceRun.objects.filter(organisation=staff.organisation)[:5]) if staff.finance else []
    return render(request, "billing/staff/home.html", _ctx(
        staff, q=q, found=found, searched=bool(q), runs=[(r, present.run_status_label(r.status)) for r in runs],
        issuer=present.issuer_for(staff.organisation)))


# --- a household's account, deposits, payments, refunds ---------------------------------------------


def _household(staff: Staff, reference: str) -> Household:
    return get_object_or_404(Household, organisation=staff.organisation, reference=reference)


def _account_ctx(staff: Staff, household: Household, **extra) -> dict:
    today = _today()
    rows = selectors.household_invoices(household=household, include_drafts=staff.finance)
    notes = present.credit_notes_by_invoice(inv for inv, _due in rows)
    invoices = [{"invoice": inv, "due": due, "state": present.due_state(inv, due, today, notes.get(inv.pk, ())),
                 "period": present.period_label(inv.first_month, inv.last_month)} for inv, due in rows]
    payments = [{"payment": p, "kind": present.kind_label(p.kind), "method": present.method_label(p.method)}
                for p in selectors.household_payments(household=household)]
    values = {"amount": "", "method": "", "reference": "", "key": uuid.uuid4().hex}
    forms = {"errors": {}, "values": values, "refund_errors": {},
             "refund_values": {**values, "key": uuid.uuid4().hex, "reason": ""}, **extra}
    return _ctx(staff, household=household, balance=selectors.household_balance(household=household),
                invoices=invoices, payments=payments, methods=[(m.value, m.label) for m in COUNTER_METHODS],
                refund_methods=[(m.value, m.label) for m in PAYMENT_METHODS], **forms)


@login_required
def household(request, portal, organisation, reference):
    """The household's account page (its postal address, invoices and money): each opening is
    recorded as an access to the family's record. A form sent back with its errors re-shows it
    without a new record: a refused post writes nothing, the journal included."""
    staff = _staff(request, portal, organisation)
    hh = _household(staff, reference)
    record_access(user=request.user, household=hh, what="billing.household")
    return render(request, "billing/staff/household.html", _account_ctx(staff, hh))


def _money_in(request, *, methods, method_error: str, record, done_message: str):
    """The deposit and payment forms: check the fields, call ``record(cents, method, key,
    reference)``; (payment, {}, values) on success, (None, errors, values) otherwise."""
    errors: dict[str, str] = {}
    values = post_values(request.POST, {"amount": _("Amount (€)"), "method": _("Paid by"),
                                        "reference": _("Cheque number or card slip"), "key": _form_key_label()},
                         errors)
    values["key"] = _key(values["key"])
    cents = _amount(values["amount"], errors)
    if values["method"] not in methods:
        errors.setdefault("method", method_error)
    if values["method"] == Payment.Method.CHEQUE and not values["reference"]:
        errors.setdefault("reference", _("Enter the cheque number."))
    if errors:
        return None, errors, values
    try:
        payment = record(cents, values["method"], values["key"], values["reference"])
    except BillingError as exc:
        errors[_field_of(exc, ("amount", "method", "reference"), "amount")] = exc.message
        return None, errors, values
    messages.success(request, done_message % {"receipt": payment.receipt_number,
                                              "amount": format_euros(payment.amount_cents)})
    return payment, errors, values


@login_required
@require_POST
def deposit(request, portal, organisation, reference):
    staff = _staff(request, portal, organisation)
    hh = _household(staff, reference)
    payment, errors, values = _money_in(
        request, methods=COUNTER_METHODS, method_error=_("Choose how the deposit was paid: cash, cheque or card."),
        done_message=_("Deposit recorded: receipt %(receipt)s, %(amount)s."),
        record=lambda cents, method, key, ref: services.deposit_record(
            household=hh, amount_cents=cents, method=method, actor=_actor(request), now=timezone.now(),
            idempotency_key=key, reference=ref))
    if payment is not None:
        return redirect("billing:staff-receipt", portal=portal, organisation=organisation,
                        receipt=payment.receipt_number)
    return render(request, "billing/staff/household.html", _account_ctx(staff, hh, errors=errors, values=values),
                  status=400)


@login_required
@require_POST
def refund(request, portal, organisation, reference):
    staff = _staff(request, portal, organisation, finance_only=True)
    hh = _household(staff, reference)
    errors: dict[str, str] = {}
    values = post_values(request.POST, {"amount": _("Amount (€)"), "method": _("Paid back by"),
                                        "reason": _("Reason"), "key": _form_key_label()}, errors)
    values["key"] = _key(values["key"])
    cents = _amount(values["amount"], errors)
    if values["method"] not in PAYMENT_METHODS:
        errors.setdefault("method", _("Choose how the money is paid back."))
    if not values["reason"]:
        errors.setdefault("reason", _("Give the reason."))
    if not errors:
        try:
            payment = services.refund_record(household=hh, amount_cents=cents, method=values["method"],
                                             actor=_actor(request), now=timezone.now(), idempotency_key=values["key"],
                                             reason=values["reason"])
        except BillingError as exc:
            errors[_field_of(exc, ("amount", "method", "reason"), "amount")] = exc.message
        else:
            messages.success(request, _("Refund recorded: receipt %(receipt)s, %(amount)s.")
                             % {"receipt": payment.receipt_number, "amount": format_euros(payment.amount_cents)})
            return redirect("billing:staff-receipt", portal=portal, organisation=organisation,
                            receipt=payment.receipt_number)
    return render(request, "billing/staff/household.html",
                  _account_ctx(staff, hh, refund_errors=errors, refund_values=values), status=400)


@login_required
def receipt(request, portal, organisation, receipt):
    staff = _staff(request, portal, organisation)
    payment = get_object_or_404(Payment.objects.select_related("household", "invoice"),
                                organisation=staff.organisation, receipt_number=receipt)
    allocations = list(payment.allocations.select_related("invoice").order_by("pk"))
    return render(request, "billing/staff/receipt.html", _ctx(
        staff, payment=payment, kind=present.kind_label(payment.kind), method=present.method_label(payment.method),
        received=present.datetime_label(payment.received_at), allocations=allocations,
        available=selectors.payment_available(payment), issuer=present.issuer_for(staff.organisation),
        balance=selectors.household_balance(household=payment.household)))


# --- invoices: detail, PDF, payment, credit note ---------------------------------------------------------


def _invoice(staff: Staff, pk: int) -> Invoice:
    qs = Invoice.objects.select_related("household", "organisation__portal", "corrects", "run")
    inv = get_object_or_404(qs, organisation=staff.organisation, pk=pk)
    if inv.status == Invoice.Status.DRAFT and not staff.finance:
        raise Http404
    return inv


def _invoice_ctx(staff: Staff, inv: Invoice, **extra) -> dict:
    doc = present.invoice_doc(inv)
    notes = list(Invoice.objects.filter(corrects=inv).order_by("pk"))
    return _ctx(staff, doc=doc, issuer=doc.issuer, state=present.due_state(inv, doc.due_now_cents, _today(), notes),
                credit_notes=notes, methods=[(m.value, m.label) for m in PAYMENT_METHODS],
                **{"errors": {}, "values": {"amount": "", "method": "", "reference": "", "key": uuid.uuid4().hex},
                   **extra})


@login_required
def invoice(request, portal, organisation, pk):
    """One invoice or credit note with the family's postal address: each opening is recorded as
    an access to the family's record (a payment form sent back with errors is not a new one)."""
    staff = _staff(request, portal, organisation)
    inv = _invoice(staff, pk)
    record_access(user=request.user, household=inv.household, what="billing.invoice")
    return render(request, "billing/staff/invoice.html", _invoice_ctx(staff, inv))


@login_required
def invoice_pdf(request, portal, organisation, pk):
    staff = _staff(request, portal, organisation)
    inv = _invoice(staff, pk)
    response = HttpResponse(pdf.invoice_pdf(inv), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{pdf.download_name(inv)}"'
    return response


@login_required
@require_POST
def invoice_payment(request, portal, organisation, pk):
    staff = _staff(request, portal, organisation)
    inv = _invoice(staff, pk)
    payment, errors, values = _money_in(
        request, methods=PAYMENT_METHODS, method_error=_("Choose how the invoice was paid."),
        done_message=_("Payment recorded: receipt %(receipt)s, %(amount)s."),
        record=lambda cents, method, key, ref: services.payment_record(
            invoice=inv, amount_cents=cents, method=method, actor=_actor(request), now=timezone.now(),
            idempotency_key=key, reference=ref))
    if payment is not None:
        return redirect("billing:staff-receipt", portal=portal, organisation=organisation,
                        receipt=payment.receipt_number)
    return render(request, "billing/staff/invoice.html", _invoice_ctx(staff, inv, errors=errors, values=values),
                  status=400)


@login_required
@require_http_methods(["GET", "POST"])
def credit_note(request, portal, organisation, pk):
    staff = _staff(request, portal, organisation, finance_only=True)
    inv = _invoice(staff, pk)
    if inv.kind != Invoice.Kind.INVOICE or inv.status != Invoice.Status.FINAL:
        raise Http404
    lines = list(InvoiceLine.objects.filter(invoice=inv).select_related("activity", "unit", "child")
                 .order_by("month", "pk"))
    credited = {}
    for ln in InvoiceLine.objects.filter(corrects_line__invoice=inv, invoice__status=Invoice.Status.FINAL):
        credited[ln.corrects_line_id] = credited.get(ln.corrects_line_id, 0) + ln.amount_cents
    rows = [{"line": ln, "label": present.line_label(ln), "month": present.month_label(ln.month),
             "child": ln.child.first_name if ln.child_id else "", "left": ln.amount_cents - credited.get(ln.pk, 0)}
            for ln in lines]
    values = {"scope": "all", "reason": "", "rebill": "", "key": uuid.uuid4().hex}
    amounts_text: dict[int, str] = {}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = post_values(request.POST, {
            "scope": _("What to credit"), "reason": _("Reason (printed on the credit note)"),
            "rebill": _("Bill these items again in the next run (whole invoice only; e.g. after correcting the "
                        "family quotient)"), "key": _form_key_label()}, errors)
        values["key"] = _key(values["key"])
        if values["scope"] not in ("all", "lines"):
            errors.setdefault("scope", _("Credit the whole invoice or some lines."))
        if not values["reason"]:
            errors.setdefault("reason", _("Give the reason of the correction (the family reads it)."))
        amounts = None
        if values["scope"] == "lines":
            amounts = {}
            lines_text = post_values(request.POST, {
                f"line-{row['line'].pk}": _("Credit on %(label)s, %(month)s") % {"label": row["label"],
                                                                                  "month": row["month"]}
                for row in rows}, errors)
            for row in rows:
                text = lines_text[f"line-{row['line'].pk}"]
                amounts_text[row["line"].pk] = text
                if not text or f"line-{row['line'].pk}" in errors:
                    continue
                try:
                    cents = parse_euros(text)
                except MoneyError:
                    errors[f"line-{row['line'].pk}"] = _("Line %(label)s: enter an amount in euros.") % {
                        "label": row["label"]}
                    continue
                if cents:
                    amounts[row["line"].pk] = cents
            if not amounts and not errors:
                errors["scope"] = _("Enter the amount to credit on at least one line.")
        if not errors:
            try:
                note = services.credit_note_create(
                    invoice=inv, actor=_actor(request), now=timezone.now(), reason=values["reason"],
                    idempotency_key=values["key"], amounts=amounts, rebill=values["rebill"] == "1")
            except BillingError as exc:
                errors[_field_of(exc, ("reason", "rebill"), "scope")] = exc.message
            else:
                tasks.enqueue_invoice_pdfs([note.pk])
                messages.success(request, _("Credit note %(number)s issued: %(amount)s.")
                                 % {"number": note.number, "amount": format_euros(note.total_cents)})
                return redirect("billing:staff-invoice", portal=portal, organisation=organisation, pk=note.pk)
        status = 400
    for row in rows:
        row["value"] = amounts_text.get(row["line"].pk, "")
        row["error"] = errors.get(f"line-{row['line'].pk}", "")
    return render(request, "billing/staff/credit_note.html", _ctx(
        staff, invoice=inv, rows=rows, values=values, errors=errors,
        period=present.period_label(inv.first_month, inv.last_month)), status=status)


# --- invoice runs -------------------------------------------------------------------------------------------


def _parse_month(text: str) -> dt.date | None:
    try:
        year, month = text.strip().split("-")[:2]
        return dt.date(int(year), int(month), 1)
    except (ValueError, TypeError):
        return None


@login_required
@require_http_methods(["GET", "POST"])
def runs(request, portal, organisation):
    staff = _staff(request, portal, organisation, finance_only=True)
    activities = list(Activity.objects.filter(organisation=staff.organisation).order_by("position", "name"))
    today = _today()
    last = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    values = {"first_month": f"{last:%Y-%m}", "last_month": f"{last:%Y-%m}", "grouping": "run",
              "activities": [str(a.pk) for a in activities], "key": uuid.uuid4().hex}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {**post_values(request.POST, {"first_month": _("First month"),
                                               "last_month": _("Last month (included)"), "grouping": _("Invoices"),
                                               "key": _form_key_label()}, errors),
                  "activities": request.POST.getlist("activities")}  # the one field sent several times
        values["key"] = _key(values["key"])
        if "grouping" not in request.POST:
            values["grouping"] = "run"
        first, last_m = _parse_month(values["first_month"]), _parse_month(values["last_month"])
        if first is None:
            errors.setdefault("first_month", _("Enter the first month to bill (month and year)."))
        if last_m is None:
            errors.setdefault("last_month", _("Enter the last month to bill (month and year)."))
        chosen = [a for a in activities if str(a.pk) in values["activities"]]
        if not chosen:
            errors["activities"] = _("Choose at least one activity.")
        if values["grouping"] not in InvoiceRun.Grouping.values:
            errors.setdefault("grouping", _("Group invoices by run or by month."))
        if not errors:
            try:
                run = services.invoice_run_create(
                    organisation=staff.organisation, first_month=first, last_month=last_m, activities=chosen,
                    actor=_actor(request), now=timezone.now(), idempotency_key=values["key"],
                    grouping=values["grouping"])
            except BillingError as exc:
                errors[_field_of(exc, ("first_month", "last_month", "activities", "grouping"), "first_month")] = (
                    exc.message)
            else:
                if run.status in (InvoiceRun.Status.CREATED, InvoiceRun.Status.RUNNING):
                    tasks.execute_run.enqueue(run.pk, _actor(request).ref, request.user.pk)
                messages.success(request, _("Run %(run)s started: its progress is below.") % {"run": run.pk})
                return redirect("billing:staff-run", portal=portal, organisation=organisation, pk=run.pk)
        status = 400
    all_runs = list(InvoiceRun.objects.filter(organisation=staff.organisation).prefetch_related("activities")[:30])
    return render(request, "billing/staff/runs.html", _ctx(
        staff, activities=activities, values=values, errors=errors,
        runs=[{"run": r, "status": present.run_status_label(r.status),
               "period": present.period_label(r.first_month, r.last_month),
               "activities": ", ".join(str(a) for a in r.activities.all())} for r in all_runs]), status=status)


def _anomaly_about(key: str) -> str:
    """An anomaly's key in words: its month when it ends with one ("household:8:2024-03")."""
    month = _parse_month(key.rsplit(":", 1)[-1]) if key.count(":") and key[-3:-2] == "-" else None
    return present.month_label(month) if month else key


def _run(staff: Staff, pk: int) -> InvoiceRun:
    return get_object_or_404(InvoiceRun, organisation=staff.organisation, pk=pk)


def _run_ctx(staff: Staff, run: InvoiceRun, request, **extra) -> dict:
    progress = selectors.run_progress(run)
    run.refresh_from_db()
    summary = selectors.run_summary(run) if run.status in (InvoiceRun.Status.READY, InvoiceRun.Status.FINAL) else None
    anomalies = selectors.run_anomalies(run) if summary else []
    invoices_page = None
    if summary:
        paginator = Paginator(selectors.run_invoices(run), DRAFTS_PER_PAGE)
        invoices_page = paginator.get_page(request.GET.get("page"))
    pdfs = pdf.run_pdf_progress(run) if run.status == InvoiceRun.Status.FINAL else None
    by_month = []
    if summary:
        for name, month, cents, items in summary.by_activity_month:
            by_month.append({"activity": name, "month": present.month_label(_parse_month(month)) if _parse_month(month)
                             else month, "amount": cents, "items": items})
    return _ctx(
        staff, run=run, progress=progress, status_label=present.run_status_label(run.status), summary=summary,
        by_month=by_month, anomalies=[{"a": a, "label": a.get_kind_display(), "about": _anomaly_about(a.key)}
                                      for a in anomalies],
        invoices_page=invoices_page, pdfs=pdfs, period=present.period_label(run.first_month, run.last_month),
        activities=", ".join(str(a) for a in run.activities.all()),
        refresh=run.status in (InvoiceRun.Status.CREATED, InvoiceRun.Status.RUNNING),
        issuer=present.issuer_for(staff.organisation),
        **{"finalise_values": {"issue_date": _today().isoformat(), "due_days": str(services.DEFAULT_DUE_DAYS)},
           "finalise_errors": {}, **extra})


@login_required
def run_detail(request, portal, organisation, pk):
    staff = _staff(request, portal, organisation, finance_only=True)
    run = _run(staff, pk)
    return render(request, "billing/staff/run.html", _run_ctx(staff, run, request))


@login_required
def run_progress(request, portal, organisation, pk):
    """The progress fragment alone (for HTMX-style polling or a script)."""
    staff = _staff(request, portal, organisation, finance_only=True)
    run = _run(staff, pk)
    return render(request, "billing/staff/_run_progress.html", _run_ctx(staff, run, request))


@login_required
@require_POST
def run_finalise(request, portal, organisation, pk):
    staff = _staff(request, portal, organisation, finance_only=True)
    run = _run(staff, pk)
    errors: dict[str, str] = {}
    values = post_values(request.POST, {"issue_date": _("Issue date"), "due_days": _("Days to pay")}, errors)
    try:
        issue = present.parse_date(values["issue_date"])
    except ValueError:
        errors.setdefault("issue_date",
                          _("Enter the issue date of the invoices as DD/MM/YYYY (for example 24/11/2026)."))
        issue = None
    try:
        due_days = int(values["due_days"])
    except ValueError:
        errors.setdefault("due_days", _("Enter the number of days to pay, from 0 to 365."))
        due_days = None
    if not errors:
        try:
            run = services.invoice_run_finalise(run=run, actor=_actor(request), now=timezone.now(), issue_date=issue,
                                                due_days=due_days)
        except BillingError as exc:
            errors["due_days" if exc.field == "due_days" else "issue_date"] = exc.message
        else:
            batches = tasks.enqueue_run_pdfs(run.pk)
            messages.success(request, _("Run %(run)s finalised: %(n)s invoices issued; their PDFs are being prepared "
                                        "(%(batches)s batches).") % {"run": run.pk, "n": run.invoices_count,
                                                                     "batches": batches})
            return redirect("billing:staff-run", portal=portal, organisation=organisation, pk=run.pk)
    return render(request, "billing/staff/run.html",
                  _run_ctx(staff, run, request, finalise_values=values, finalise_errors=errors), status=400)


@login_required
@require_POST
def run_cancel(request, portal, organisation, pk):
    staff = _staff(request, portal, organisation, finance_only=True)
    run = _run(staff, pk)
    if run.status in (InvoiceRun.Status.CREATED, InvoiceRun.Status.RUNNING, InvoiceRun.Status.READY) and \
            request.POST.getlist("confirm") != ["yes"]:
        messages.error(request, _("Nothing was cancelled: tick the box to confirm that the drafts of this run will be "
                                  "deleted."))
        return redirect("billing:staff-run", portal=portal, organisation=organisation, pk=run.pk)
    try:
        services.invoice_run_cancel(run=run, actor=_actor(request), now=timezone.now())
    except BillingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Run %(run)s cancelled: its drafts are deleted and the items can be billed "
                                    "again.") % {"run": run.pk})
    return redirect("billing:staff-run", portal=portal, organisation=organisation, pk=run.pk)


@login_required
@require_POST
def run_resume(request, portal, organisation, pk):
    staff = _staff(request, portal, organisation, finance_only=True)
    run = _run(staff, pk)
    if run.status in (InvoiceRun.Status.CREATED, InvoiceRun.Status.RUNNING):
        tasks.execute_run.enqueue(run.pk, _actor(request).ref, request.user.pk)
        messages.success(request, _("Run %(run)s continues where it stopped.") % {"run": run.pk})
    elif run.status == InvoiceRun.Status.FINAL:
        batches = tasks.enqueue_run_pdfs(run.pk)
        messages.success(request, _("The PDFs of run %(run)s are being prepared again (%(batches)s batches).")
                         % {"run": run.pk, "batches": batches})
    return redirect("billing:staff-run", portal=portal, organisation=organisation, pk=run.pk)


@login_required
@require_POST
def draft_discard(request, portal, organisation, pk):
    staff = _staff(request, portal, organisation, finance_only=True)
    inv = _invoice(staff, pk)
    errors: dict[str, str] = {}
    reason = post_values(request.POST, {"reason": _("Reason")}, errors)["reason"]
    run_pk = inv.run_id
    try:
        if errors:
            raise BillingError("bad_input", errors["reason"], field="reason")
        services.invoice_draft_discard(invoice=inv, actor=_actor(request), now=timezone.now(), reason=reason)
    except BillingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The draft of household %(ref)s was taken out of the run; its items will be "
                                    "billed by a later run.") % {"ref": inv.household.reference})
    if run_pk is None:
        return redirect("billing:staff-home", portal=portal, organisation=organisation)
    return redirect("billing:staff-run", portal=portal, organisation=organisation, pk=run_pk)


# --- treasury export ---------------------------------------------------------------------------------------------


@login_required
def treasury_export(request, portal, organisation):
    staff = _staff(request, portal, organisation, finance_only=True)
    text = request.GET.get("as_of", "").strip()
    errors: dict[str, str] = {}
    as_of = _today()
    if text:
        try:
            as_of = present.parse_date(text)
        except ValueError:
            errors["as_of"] = _("Enter a date as DD/MM/YYYY (for example 24/11/2026).")
    if request.GET.get("download") and not errors:
        data, _rows, _total = treasury.csv_bytes(staff.organisation, as_of=as_of)
        response = HttpResponse(data, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{treasury.file_name(staff.organisation, as_of)}"'
        return response
    rows = [] if errors else treasury.unpaid_past_due(staff.organisation, as_of=as_of)
    return render(request, "billing/staff/treasury.html", _ctx(
        staff, as_of=as_of, as_of_text=text or as_of.isoformat(), errors=errors, rows=rows[:200], count=len(rows),
        total=sum(r.outstanding_cents for r in rows)), status=400 if errors else 200)
