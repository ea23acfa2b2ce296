"""Reads for the water screens: plain dicts ready to show (amounts already in French)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils.translation import gettext_lazy as _

from guichet.catalog.models import Organisation
from guichet.common.money import format_euros

from .models import (
    Contract,
    Customer,
    DebitLine,
    DebitRun,
    Instalment,
    Invoice,
    Mandate,
    Reading,
    Schedule,
)


def _number(text: str, places: int = 3) -> str:
    """A quantity or a unit price for people: at most ``places`` decimals, no trailing zeros,
    the French decimal comma (``"118.000"`` -> ``"118"``, ``"1.4500"`` -> ``"1,45"``)."""
    d = Decimal(text).quantize(Decimal(1).scaleb(-places)).normalize()
    return format(d, "f").replace(".", ",")


STATE_ICONS = {"planned": "○", "collected": "✓", "not_collected": "✗", "rejected": "↩", "cancelled": "–"}


def _instalment(i: Instalment, lines: dict[int, DebitLine]) -> dict:
    line = lines.get(i.pk)
    return {"number": i.number, "due_date": i.due_date, "amount": format_euros(i.amount), "state": i.state,
            "icon": STATE_ICONS[i.state], "state_label": i.get_state_display(), "note": i.note,
            "e2e": line.end_to_end_id if line else "", "sequence_type": line.sequence_type if line else "",
            "reject_reason": line.reject_reason if line else ""}


def account(customer: Customer) -> dict:
    contracts = list(Contract.objects.filter(customer=customer).select_related("meter", "delivery_point")
                     .order_by("-start"))
    meters = [c.meter_id for c in contracts]
    readings: dict[int, list[Reading]] = defaultdict(list)
    for r in Reading.objects.filter(meter_id__in=meters).order_by("-date")[:60]:
        readings[r.meter_id].append(r)
    instalments = list(Instalment.objects.filter(customer=customer).order_by("due_date", "number"))
    lines = {ln.instalment_id: ln for ln in DebitLine.objects.filter(instalment__customer=customer)}
    by_schedule: dict[int, list[dict]] = defaultdict(list)
    by_invoice: dict[int, list[dict]] = defaultdict(list)
    for i in instalments:
        (by_schedule[i.schedule_id] if i.schedule_id else by_invoice[i.invoice_id]).append(_instalment(i, lines))
    schedules = []
    for s in Schedule.objects.filter(contract__customer=customer).order_by("-year"):
        rows = by_schedule.get(s.pk, [])
        totals = defaultdict(int)
        for i in instalments:
            if i.schedule_id == s.pk:
                totals[i.state] += i.amount
        schedules.append({"schedule": s, "instalments": rows, "basis": format_euros(s.basis),
                          "credit": format_euros(s.credit_applied) if s.credit_applied else "",
                          "collected": format_euros(totals["collected"]),
                          "missed": format_euros(totals["not_collected"] + totals["rejected"])})
    invoices = [{"invoice": inv, "total": format_euros(inv.total), "excl": format_euros(inv.total_excl_vat),
                 "vat": format_euros(inv.total_vat), "deducted": format_euros(inv.deducted),
                 "balance": format_euros(abs(inv.balance)), "credit": inv.balance < 0,
                 "instalments": by_invoice.get(inv.pk, []),
                 "can_spread": inv.balance > 0 and [i["state"] for i in by_invoice.get(inv.pk, [])
                                                    if i["state"] != "cancelled"] == ["planned"],
                 "last_day": inv.period_end - dt.timedelta(days=1),
                 "lines": [{**ln, "amount_text": format_euros(ln["amount"]), "quantity_text": _number(ln["quantity"]),
                            "price_text": _number(ln["unit_price"], 4),
                            "vat_text": _number(ln["vat"], 1) if ln["vat"] else ""} for ln in inv.lines]}
                for inv in Invoice.objects.filter(contract__customer=customer).order_by("-issued_on", "-number")]
    mandates = list(Mandate.objects.filter(customer=customer).order_by("-signed_on"))
    outstanding = sum(i.amount for i in instalments if i.state == "planned")
    return {"customer": customer, "contracts": [{"contract": c, "readings": readings.get(c.meter_id, [])[:6]}
                                                for c in contracts],
            "schedules": schedules, "invoices": invoices, "mandates": mandates,
            "outstanding": format_euros(outstanding)}


def overview(org: Organisation) -> dict:
    counts = dict(Instalment.objects.filter(organisation=org).values_list("state").annotate(n=Count("id"))
                  .values_list("state", "n"))
    return {"customers": Customer.objects.filter(organisation=org).count(),
            "monthly": Customer.objects.filter(organisation=org, billing="monthly").count(),
            "open_contracts": Contract.objects.filter(organisation=org, end__isnull=True).count(),
            "planned": counts.get("planned", 0), "not_collected": counts.get("not_collected", 0),
            "rejected": counts.get("rejected", 0),
            "last_run": DebitRun.objects.filter(organisation=org).defer("xml").first(),
            # Customers with money not collected (outage, returns): the ones the counter will hear from.
            "to_follow": list(Customer.objects.filter(organisation=org, pk__in=Instalment.objects.filter(
                organisation=org, state__in=["not_collected", "rejected"]).values("customer_id"))
                .order_by("reference")[:50])}


def not_collected_by_month(org: Organisation) -> list[dict]:
    rows = defaultdict(lambda: [0, 0])
    for due, amount in (Instalment.objects.filter(organisation=org, state="not_collected")
                        .values_list("due_date", "amount")):
        key = due.replace(day=1)
        rows[key][0] += 1
        rows[key][1] += amount
    return [{"month": k, "count": v[0], "amount": format_euros(v[1])} for k, v in sorted(rows.items())]


SUMMARY_LABELS = (
    ("invoices", _("Invoices issued"), False), ("billed", _("Total billed"), True),
    ("collected", _("Instalments actually collected (deducted)"), True), ("due", _("Balances due"), True),
    ("credit_carried", _("Credits carried over"), True), ("credit_refunded", _("Credits to refund"), True),
    ("not_collected", _("Not collected during an interruption"), True), ("rejected", _("Returned by the bank"), True),
    ("next_schedules", _("Schedules for next year (number)"), False),
    ("next_total", _("Schedules for next year (total)"), True),
    ("estimated_readings", _("Estimated readings"), False),
)


def regularisation_view(run) -> dict:
    s = run.summary
    rows = [(label, format_euros(s.get(key, 0)) if money else s.get(key, 0)) for key, label, money in SUMMARY_LABELS]
    return {"run": run, "rows": rows, "anomalies": s.get("anomalies", [])}


def debit_runs_view(runs: list[DebitRun]) -> list[dict]:
    ids = [r.pk for r in runs]
    rejected = dict(DebitLine.objects.filter(run_id__in=ids, rejected_at__isnull=False).values_list("run_id")
                    .annotate(n=Count("id")).values_list("run_id", "n"))
    rejected_sum = dict(DebitLine.objects.filter(run_id__in=ids, rejected_at__isnull=False).values_list("run_id")
                        .annotate(s=Sum("amount")).values_list("run_id", "s"))
    seq = defaultdict(dict)
    for run_id, st, n in (DebitLine.objects.filter(run_id__in=ids).values_list("run_id", "sequence_type")
                          .annotate(n=Count("id")).values_list("run_id", "sequence_type", "n")):
        seq[run_id][st] = n
    return [{"run": r, "control_sum": format_euros(r.control_sum), "rejected": rejected.get(r.pk, 0),
             "rejected_sum": format_euros(rejected_sum.get(r.pk, 0)),
             "sequences": ", ".join(f"{k} {v}" for k, v in sorted(seq[r.pk].items()))} for r in runs]
