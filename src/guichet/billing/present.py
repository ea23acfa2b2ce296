"""How billing is shown to people: invoice documents (PDF and HTML), the issuer's legal
mentions, labels of lines, methods and statuses, month names. Pure presentation over
``selectors``; no writes.

The issuer's details (who issues the invoice, the public accountant who collects it, how to
pay, where to contest) are not in the database: each organisation describes them in the YAML
file named by the ``GUICHET_BILLING_ISSUERS_FILE`` setting (format in docs/guide-finance.md).
Without it, invoices carry generic mentions and the finance screens say what is missing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from guichet.common.money import format_euros

from . import selectors
from .models import Allocation, Invoice, InvoiceLine, InvoiceRun, Payment

PARIS = ZoneInfo("Europe/Paris")
log = logging.getLogger(__name__)

# What a family reads for each kind of line (the activity and unit come before it).
LINE_KIND_WORDS = {
    InvoiceLine.Kind.BOOKED: "",
    InvoiceLine.Kind.LATE_CANCELLATION: gettext_lazy("cancelled too late"),
    InvoiceLine.Kind.UNJUSTIFIED_ABSENCE: gettext_lazy("absent without justification"),
    InvoiceLine.Kind.LATE_PENALTY: gettext_lazy("late-cancellation penalty"),
    InvoiceLine.Kind.ABSENCE_PENALTY: gettext_lazy("absence penalty"),
    InvoiceLine.Kind.CRECHE_CONTRACT: gettext_lazy("contract hours"),
    InvoiceLine.Kind.CORRECTION: gettext_lazy("correction"),
}

ISSUER_FIELDS = ("name", "address", "siret", "ordonnateur", "comptable", "payfip_id", "payfip_url", "cheque_payee",
                 "counter", "transfer_iban", "contact", "court")


class IssuerFileError(ValueError):
    pass


@dataclass(frozen=True)
class Issuer:
    """Who issues an organisation's invoices and how they are paid (see the module docstring)."""

    name: str
    address: tuple[str, ...] = ()
    siret: str = ""
    ordonnateur: str = ""  # "Jeanne Martin, maire" (name, first name and capacity: CGCT L1617-5)
    comptable: str = ""  # the public accountant who collects: "Service de gestion comptable de ..."
    comptable_address: tuple[str, ...] = ()
    payfip_id: str = ""  # the DGFiP online payment identifier of the organisation
    payfip_url: str = "https://www.payfip.gouv.fr"
    cheque_payee: str = "Trésor public"
    counter: str = ""  # where to pay in person (cash, cheque, card)
    transfer_iban: str = ""
    contact: str = ""  # phone / e-mail for questions about an invoice
    court: str = ""  # "Tribunal administratif de Melun"
    configured: bool = False
    problem: str = ""  # why the issuer file could not be used

    @property
    def missing(self) -> list[str]:
        """The legal mentions that fall back to generic words (the finance screens list them)."""
        out = [_("the issuer file cannot be read: %(problem)s") % {"problem": self.problem}] if self.problem else []
        if not self.ordonnateur:
            out.append(_("the name and capacity of the person issuing the invoices (ordonnateur)"))
        if not self.comptable:
            out.append(_("the public accountant who collects them (comptable public)"))
        if not self.court:
            out.append(_("the court where an invoice can be contested"))
        return out


def _lines(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.splitlines() if part.strip())
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v).strip() for v in value if str(v).strip())
    raise IssuerFileError("an address is a text or a list of lines")


def parse_issuers(text: str) -> dict[str, Issuer]:
    """``{"portal/organisation": Issuer}`` from the YAML text; raises ``IssuerFileError`` naming
    the entry and field at fault."""
    import yaml

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise IssuerFileError(f"not YAML: {exc}") from None
    if not isinstance(data, dict):
        raise IssuerFileError("the file maps 'portal/organisation' to the issuer's details")
    out = {}
    for key, entry in data.items():
        if not isinstance(key, str) or key.count("/") != 1:
            raise IssuerFileError(f"{key!r}: the key is 'portal/organisation', e.g. 'maisons-alfort/ville'")
        if not isinstance(entry, dict):
            raise IssuerFileError(f"{key}: the details are a mapping")
        unknown = set(entry) - set(ISSUER_FIELDS) - {"comptable_address"}
        if unknown:
            raise IssuerFileError(f"{key}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                                  f"known: {', '.join(ISSUER_FIELDS)}, comptable_address")
        if not isinstance(entry.get("name", ""), str) or not str(entry.get("name", "")).strip():
            raise IssuerFileError(f"{key}: 'name' (the organisation as printed on invoices) is required")
        values = {}
        for name in ISSUER_FIELDS + ("comptable_address",):
            if name not in entry:
                continue
            if name in ("address", "comptable_address"):
                try:
                    values[name] = _lines(entry[name])
                except IssuerFileError as exc:
                    raise IssuerFileError(f"{key}: {name}: {exc}") from None
            else:
                if not isinstance(entry[name], str | int):
                    raise IssuerFileError(f"{key}: {name}: a text is expected")
                values[name] = str(entry[name]).strip()
        out[key] = Issuer(configured=True, **values)
    return out


@lru_cache(maxsize=4)
def _issuers_from(path: str, mtime: float) -> dict[str, Issuer]:
    return parse_issuers(Path(path).read_text(encoding="utf-8"))


def issuer_for(organisation) -> Issuer:
    """The organisation's issuer details (generic ones when the file does not describe it)."""
    path = getattr(settings, "GUICHET_BILLING_ISSUERS_FILE", "") or ""
    problem = ""
    if path:
        try:
            found = _issuers_from(path, Path(path).stat().st_mtime)
        except OSError as exc:
            found, problem = {}, f"{path}: {exc.strerror}"
        except IssuerFileError as exc:
            found, problem = {}, f"{path}: {exc}"
        if problem:
            log.error("billing issuer file unusable: %s", problem)
        issuer = found.get(f"{organisation.portal.slug}/{organisation.slug}")
        if issuer is not None:
            return issuer
    return Issuer(name=organisation.name, problem=problem)


# --- words ------------------------------------------------------------------------------------


def month_label(month: dt.date) -> str:
    return formats.date_format(month, "YEAR_MONTH_FORMAT")


def date_label(day: dt.date | None) -> str:
    return formats.date_format(day, "DATE_FORMAT") if day else ""


def datetime_label(when: dt.datetime | None) -> str:
    return formats.date_format(when.astimezone(PARIS), "DATETIME_FORMAT") if when else ""


def quantity_label(q: Decimal, hours: bool = False) -> str:
    text = str(int(q)) if q == q.to_integral_value() else formats.number_format(q, decimal_pos=2)
    return _("%(n)s h") % {"n": text} if hours else text


def line_label(line: InvoiceLine) -> str:
    """The line's words in the active language: the activity's and unit's English names
    (``name_en``) in English when the service manager gave them, else their French names."""
    parts = [line.activity.tr("name") if line.activity_id else ""]
    if line.unit_id and line.kind not in (InvoiceLine.Kind.CRECHE_CONTRACT,):
        parts.append(line.unit.tr("name"))
    words = str(LINE_KIND_WORDS.get(line.kind, ""))
    if words:
        parts.append(words)
    label = " — ".join(p for p in parts if p)
    if line.kind == InvoiceLine.Kind.CORRECTION and line.label:
        label = f"{label} ({line.label})" if label else line.label
    if line.sibling_rank and line.sibling_rank > 1:
        label += " " + _("(child no. %(rank)s: sibling reduction)") % {"rank": line.sibling_rank}
    if line.bracket:
        label += " " + _("(bracket %(bracket)s)") % {"bracket": line.bracket}
    return label or _("Line")


def method_label(method: str) -> str:
    return str(Payment.Method(method).label) if method in Payment.Method.values else method


def kind_label(kind: str) -> str:
    return str(Payment.Kind(kind).label) if kind in Payment.Kind.values else kind


def run_status_label(status: str) -> str:
    if status == InvoiceRun.Status.CANCELLED:
        return pgettext("invoice run", "Cancelled")  # French: "Annulée" (une campagne)
    return str(InvoiceRun.Status(status).label) if status in InvoiceRun.Status.values else status


def credit_notes_by_invoice(invoices: Iterable[Invoice]) -> dict[int, list[Invoice]]:
    """The issued credit notes correcting each of ``invoices`` (one query), by invoice id."""
    out: dict[int, list[Invoice]] = {}
    for note in Invoice.objects.filter(corrects__in=[i.pk for i in invoices], kind=Invoice.Kind.CREDIT_NOTE,
                                       status=Invoice.Status.FINAL).order_by("pk"):
        out.setdefault(note.corrects_id, []).append(note)
    return out


def due_state(invoice: Invoice, due_cents: int, today: dt.date,
              credit_notes: Iterable[Invoice] = ()) -> tuple[str, str]:
    """(code, words) of what an issued invoice still owes: paid / due / overdue, or cancelled
    when its credit notes (``credit_notes``) credit its whole total (never colour alone)."""
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        return "credit", _("Credit note")
    if invoice.status != Invoice.Status.FINAL:
        return "draft", _("Draft, not issued yet")
    notes = [n for n in credit_notes if n.status == Invoice.Status.FINAL]
    if notes and sum(n.total_cents for n in notes) >= invoice.total_cents:
        return "cancelled", _("Cancelled by credit note %(numbers)s") % {
            "numbers": ", ".join(n.number or "" for n in notes)}
    if due_cents <= 0:
        return "paid", _("Paid")
    if invoice.due_date and invoice.due_date < today:
        return "overdue", _("Overdue: %(amount)s to pay") % {"amount": format_euros(due_cents)}
    return "due", _("%(amount)s to pay by %(date)s") % {"amount": format_euros(due_cents),
                                                            "date": date_label(invoice.due_date)}


# --- the invoice document ---------------------------------------------------------------------


@dataclass
class DocLine:
    line: InvoiceLine
    label: str
    child: str
    quantity: str
    unit_price_cents: int
    amount_cents: int


@dataclass
class DocMonth:
    month: dt.date
    label: str
    lines: list[DocLine]
    subtotal_cents: int


@dataclass
class Deduction:
    label: str
    amount_cents: int


@dataclass
class InvoiceDoc:
    """An invoice or credit note as issued: lines by month, the deposits and credit applied when
    it was issued, what was left to pay then; and (for screens) what it still owes now."""

    invoice: Invoice
    household: object
    organisation: object
    issuer: Issuer
    title: str
    months: list[DocMonth]
    total_cents: int
    deductions: list[Deduction] = field(default_factory=list)
    deducted_cents: int = 0
    to_pay_cents: int = 0  # on the document: total - what was deducted at issue
    due_now_cents: int = 0  # today: total - everything settled since
    settlements: list[Deduction] = field(default_factory=list)  # everything settled, for screens
    corrects_number: str = ""
    period: str = ""

    @property
    def is_credit_note(self) -> bool:
        return self.invoice.kind == Invoice.Kind.CREDIT_NOTE


def _allocation_label(a: Allocation) -> str:
    if a.credit_note_id:
        return _("Credit note %(number)s") % {"number": a.credit_note.number}
    p = a.payment
    words = {Payment.Kind.DEPOSIT: _("Deposit %(receipt)s of %(date)s (%(method)s)"),
             Payment.Kind.PAYMENT: _("Payment %(receipt)s of %(date)s (%(method)s)")}
    return words.get(p.kind, _("Payment %(receipt)s of %(date)s (%(method)s)")) % {
        "receipt": p.receipt_number, "date": date_label(p.received_at.astimezone(PARIS).date()),
        "method": method_label(p.method).lower()}


def period_label(first: dt.date, last: dt.date) -> str:
    if first == last:
        return month_label(first)
    # Its own context: French says "septembre à octobre" for months, "lundi au vendredi" for days.
    return pgettext("months", "%(first)s to %(last)s") % {"first": month_label(first), "last": month_label(last)}


def invoice_doc(invoice: Invoice) -> InvoiceDoc:
    view = selectors.invoice_detail(invoice)
    inv = view.invoice
    household = inv.household
    organisation = inv.organisation
    months = []
    for month, lines in view.months:
        doc_lines = [DocLine(line=ln, label=line_label(ln), child=ln.child.first_name if ln.child_id else "",
                             quantity=quantity_label(ln.quantity, hours=ln.kind == InvoiceLine.Kind.CRECHE_CONTRACT),
                             unit_price_cents=ln.unit_price_cents, amount_cents=ln.amount_cents) for ln in lines]
        months.append(DocMonth(month, month_label(month), doc_lines, sum(d.amount_cents for d in doc_lines)))
    settlements = [Deduction(_allocation_label(a), a.amount_cents) for a in view.allocations]
    at_issue = [a for a in view.allocations if inv.finalised_at and a.created_at <= inv.finalised_at]
    deductions = [Deduction(_allocation_label(a), a.amount_cents) for a in at_issue]
    deducted = sum(d.amount_cents for d in deductions)
    is_note = inv.kind == Invoice.Kind.CREDIT_NOTE
    if is_note:
        title = _("Credit note %(number)s") % {"number": inv.number}
    elif inv.number:
        title = _("Invoice %(number)s") % {"number": inv.number}
    else:
        title = _("Draft invoice (not issued)")
    return InvoiceDoc(
        invoice=inv, household=household, organisation=organisation, issuer=issuer_for(organisation), title=title,
        months=months, total_cents=inv.total_cents, deductions=[] if is_note else deductions,
        deducted_cents=0 if is_note else deducted, to_pay_cents=0 if is_note else max(inv.total_cents - deducted, 0),
        due_now_cents=view.due_cents, settlements=settlements,
        corrects_number=inv.corrects.number if inv.corrects_id else "",
        period=period_label(inv.first_month, inv.last_month))


def parse_date(text: str) -> dt.date:
    """A date as people type it: 24/11/2026 (the French way) or 2026-11-24. ValueError otherwise."""
    text = text.strip()
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date, no time
        except ValueError:
            continue
    raise ValueError(text)
