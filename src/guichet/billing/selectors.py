"""Read-only questions about billing: a household's balance (computed, never stored), what an
invoice still owes, its lines by month, a run's progress and summary, a household's statement.
A fixed number of queries each, whatever the number of rows."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Q, Sum

from guichet.bookings.models import Activity, Household

from .models import Allocation, Invoice, InvoiceLine, InvoiceRun, Payment, RunAnomaly


@dataclass(frozen=True)
class Balance:
    """All amounts in cents. ``balance`` > 0: the household owes it; < 0: it is in credit.
    balance = invoiced - credited - received + refunded. ``available_credit`` is what can still
    be applied to invoices or refunded; ``due`` what issued invoices still owe."""

    invoiced: int
    credited: int
    received: int
    refunded: int
    due: int
    available_credit: int

    @property
    def balance(self) -> int:
        return self.invoiced - self.credited - self.received + self.refunded


def household_balance(*, household: Household) -> Balance:
    final = Invoice.objects.filter(household=household, status=Invoice.Status.FINAL)
    invoiced = final.filter(kind=Invoice.Kind.INVOICE).aggregate(s=Sum("total_cents"))["s"] or 0
    credited = final.filter(kind=Invoice.Kind.CREDIT_NOTE).aggregate(s=Sum("total_cents"))["s"] or 0
    money = dict(Payment.objects.filter(household=household).values("kind").annotate(s=Sum("amount_cents"))
                 .values_list("kind", "s"))
    received = (money.get("deposit") or 0) + (money.get("payment") or 0)
    refunded = money.get("refund") or 0
    allocated = Allocation.objects.filter(household=household).aggregate(
        to_invoices=Sum("amount_cents", filter=Q(invoice__isnull=False)),
        all=Sum("amount_cents"))
    to_invoices = allocated["to_invoices"] or 0
    return Balance(invoiced=invoiced, credited=credited, received=received, refunded=refunded,
                   due=invoiced - to_invoices, available_credit=received + credited - (allocated["all"] or 0))


def invoice_paid(invoice: Invoice) -> int:
    """Cents settled on an invoice (deposits, payments, credit notes applied)."""
    return Allocation.objects.filter(invoice=invoice).aggregate(s=Sum("amount_cents"))["s"] or 0


def invoice_due(invoice: Invoice) -> int:
    """What an issued invoice still owes (0 for drafts and credit notes)."""
    if invoice.kind != Invoice.Kind.INVOICE or invoice.status != Invoice.Status.FINAL:
        return 0
    return invoice.total_cents - invoice_paid(invoice)


@dataclass
class InvoiceView:
    invoice: Invoice
    months: list[tuple[dt.date, list[InvoiceLine]]]
    paid_cents: int
    due_cents: int
    allocations: list[Allocation] = field(default_factory=list)


def invoice_detail(invoice: Invoice) -> InvoiceView:
    """An invoice with its lines grouped by month of service (oldest first) and what settled it
    (allocations with their deposit/payment receipt or credit-note number)."""
    lines = list(InvoiceLine.objects.filter(invoice=invoice)
                 .select_related("activity", "unit", "child").order_by("month", "child__birth_date", "child_id",
                                                                       "activity__position", "kind", "pk"))
    by_month: dict[dt.date, list] = defaultdict(list)
    for line in lines:
        by_month[line.month].append(line)
    allocations = list(Allocation.objects.filter(invoice=invoice).select_related("payment", "credit_note")
                       .order_by("pk"))
    paid = sum(a.amount_cents for a in allocations)
    due = invoice.total_cents - paid if invoice.kind == Invoice.Kind.INVOICE and invoice.status == "final" else 0
    return InvoiceView(invoice, sorted(by_month.items()), paid, due, allocations)


def household_invoices(*, household: Household, include_drafts: bool = False) -> list[tuple[Invoice, int]]:
    """A household's invoices and credit notes, newest first, with what each still owes."""
    qs = Invoice.objects.filter(household=household)
    if not include_drafts:
        qs = qs.filter(status=Invoice.Status.FINAL)
    invoices = list(qs.order_by("-issue_date", "-pk"))
    paid = dict(Allocation.objects.filter(invoice__in=invoices).values("invoice_id")
                .annotate(s=Sum("amount_cents")).values_list("invoice_id", "s"))
    return [(i, i.total_cents - (paid.get(i.pk) or 0)
             if i.kind == Invoice.Kind.INVOICE and i.status == Invoice.Status.FINAL else 0) for i in invoices]


def household_payments(*, household: Household) -> list[Payment]:
    """Deposits, payments and refunds of a household, newest first."""
    return list(Payment.objects.filter(household=household).order_by("-received_at", "-pk"))


def payment_available(payment: Payment) -> int:
    """What is left of a deposit or payment to apply (0 for refunds)."""
    if payment.kind == Payment.Kind.REFUND:
        return 0
    used = Allocation.objects.filter(payment=payment).aggregate(s=Sum("amount_cents"))["s"] or 0
    return payment.amount_cents - used


@dataclass(frozen=True)
class RunProgress:
    status: str
    households_done: int
    households_total: int
    invoices: int
    lines: int
    items: int
    amount_cents: int
    anomalies: int

    @property
    def percent(self) -> int:
        if self.status in (InvoiceRun.Status.READY, InvoiceRun.Status.FINAL):
            return 100
        return int(100 * self.households_done / self.households_total) if self.households_total else 0


def run_progress(run: InvoiceRun) -> RunProgress:
    """The run's progress as stored by its last committed chunk (one query)."""
    r = InvoiceRun.objects.get(pk=run.pk)
    return RunProgress(r.status, r.households_done, r.households_total, r.invoices_count, r.lines_count,
                       r.items_count, r.amount_cents, r.anomalies_count)


@dataclass
class RunSummary:
    run: InvoiceRun
    households: int
    invoices: int
    amount_cents: int
    # [(activity name, "YYYY-MM", amount cents, items)] sorted by activity position then month
    by_activity_month: list[tuple[str, str, int, int]]
    deposits_applied_cents: int
    anomalies: dict[str, int]
    numbers: list[str]


def run_summary(run: InvoiceRun) -> RunSummary:
    run = InvoiceRun.objects.get(pk=run.pk)
    s = run.summary or {}
    activities = {a.pk: a for a in Activity.objects.filter(pk__in=run.activities.values("pk"))}
    rows = []
    for key, (amount, items) in s.get("by_activity_month", {}).items():
        activity_id, month = key.split("|")
        a = activities.get(int(activity_id)) if activity_id != "None" else None
        rows.append(((a.position if a else 999, str(a) if a else "?"), month, amount, items))
    rows.sort()
    return RunSummary(
        run=run, households=s.get("households_invoiced", 0), invoices=run.invoices_count,
        amount_cents=run.amount_cents, by_activity_month=[(name, m, amt, n) for (_p, name), m, amt, n in rows],
        deposits_applied_cents=s.get("deposits_applied_cents", 0), anomalies=dict(s.get("anomalies", {})),
        numbers=list(s.get("numbers", [])))


def run_anomalies(run: InvoiceRun, kind: str | None = None) -> list[RunAnomaly]:
    qs = RunAnomaly.objects.filter(run=run).select_related("household")
    if kind:
        qs = qs.filter(kind=kind)
    return list(qs.order_by("kind", "key"))


def run_invoices(run: InvoiceRun):
    """The run's invoices (a queryset: page it), by household reference."""
    return Invoice.objects.filter(run=run).select_related("household").order_by("household__reference", "first_month")


def open_runs(organisation_id: int) -> list[InvoiceRun]:
    return list(InvoiceRun.objects.filter(organisation_id=organisation_id)
                .exclude(status__in=[InvoiceRun.Status.FINAL, InvoiceRun.Status.CANCELLED]).order_by("pk"))


def unpaid_invoices(*, organisation_id: int, due_before: dt.date) -> list[tuple[Invoice, int]]:
    """Issued invoices past due on ``due_before`` that still owe something, oldest first, with
    what they owe (for the treasury export)."""
    invoices = list(Invoice.objects.filter(organisation_id=organisation_id, kind=Invoice.Kind.INVOICE,
                                           status=Invoice.Status.FINAL, due_date__lt=due_before)
                    .select_related("household").order_by("due_date", "number"))
    paid = dict(Allocation.objects.filter(invoice__in=invoices).values("invoice_id")
                .annotate(s=Sum("amount_cents")).values_list("invoice_id", "s"))
    out = []
    for inv in invoices:
        left = inv.total_cents - (paid.get(inv.pk) or 0)
        if left > 0:
            out.append((inv, left))
    return out
