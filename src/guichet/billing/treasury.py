"""The export for the municipal treasury: issued invoices still unpaid after their due date,
as a CSV file whose layout is documented in docs/treasury-export.md (one row per invoice).

The treasury (the public accountant, "comptable public") takes over the collection of these
debts. The PES V2 ORMC XML flow (titres de recettes sent to Hélios) is NOT built: this CSV is
what the finance department hands over or re-keys meanwhile.

Used by the finance screen (download) and by ``guichet billing treasury-export``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.management.base import CommandError

from guichet.catalog.models import Organisation
from guichet.common.money import format_euros_plain

from . import selectors
from .models import Invoice

FORMAT = "guichet-treasury/1"
COLUMNS = (
    "format", "organisation", "invoice_number", "issue_date", "due_date", "days_overdue", "household_reference",
    "debtor_name", "period_start", "period_end", "total_eur", "paid_eur", "outstanding_eur",
)
DELIMITER = ";"


@dataclass(frozen=True)
class TreasuryRow:
    invoice: Invoice
    outstanding_cents: int
    as_of: dt.date

    @property
    def days_overdue(self) -> int:
        return (self.as_of - self.invoice.due_date).days

    def values(self, organisation: Organisation) -> list[str]:
        inv = self.invoice
        return [
            FORMAT, f"{organisation.portal.slug}/{organisation.slug}", inv.number, inv.issue_date.isoformat(),
            inv.due_date.isoformat(), str(self.days_overdue), inv.household.reference,
            inv.household.display_name, f"{inv.first_month:%Y-%m}", f"{inv.last_month:%Y-%m}",
            format_euros_plain(inv.total_cents), format_euros_plain(inv.total_cents - self.outstanding_cents),
            format_euros_plain(self.outstanding_cents),
        ]


def unpaid_past_due(organisation: Organisation, *, as_of: dt.date) -> list[TreasuryRow]:
    """Invoices whose due date is BEFORE ``as_of`` and that still owe something, oldest due first."""
    return [TreasuryRow(inv, left, as_of)
            for inv, left in selectors.unpaid_invoices(organisation_id=organisation.pk, due_before=as_of)]


def write_csv(organisation: Organisation, rows: Iterable[TreasuryRow], out) -> int:
    """Write the header and the rows to the text stream ``out``; returns the number of rows."""
    writer = csv.writer(out, delimiter=DELIMITER, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    n = 0
    for row in rows:
        writer.writerow(row.values(organisation))
        n += 1
    return n


def csv_bytes(organisation: Organisation, *, as_of: dt.date) -> tuple[bytes, int, int]:
    """(UTF-8 bytes with a BOM for spreadsheets, rows, outstanding cents) of the export."""
    rows = unpaid_past_due(organisation, as_of=as_of)
    buf = io.StringIO()
    write_csv(organisation, rows, buf)
    return ("\ufeff" + buf.getvalue()).encode("utf-8"), len(rows), sum(r.outstanding_cents for r in rows)


def file_name(organisation: Organisation, as_of: dt.date) -> str:
    return f"tresor-impayes-{organisation.portal.slug}-{organisation.slug}-{as_of.isoformat()}.csv"


# --- the command line (``guichet billing treasury-export``) -----------------------------------


def add_arguments(sub) -> None:
    """Register the ``treasury-export`` action on the ``billing`` command's sub-parsers."""
    p = sub.add_parser("treasury-export", help="CSV of issued invoices unpaid after their due date, for the treasury.")
    p.add_argument("--portal", required=True, help="the town's page (slug)")
    p.add_argument("--organisation", default="", help="the organisation (slug); needed if the page has several")
    p.add_argument("--as-of", default="", help="YYYY-MM-DD: invoices due BEFORE this day (default: today, Paris)")
    p.add_argument("--output", "-o", default="-", help="file to write (default: standard output)")


def _organisation(portal: str, slug: str) -> Organisation:
    orgs = list(Organisation.objects.filter(portal__slug=portal).select_related("portal"))
    if not orgs:
        raise CommandError(f"--portal: no page {portal!r}.")
    if slug:
        org = next((o for o in orgs if o.slug == slug), None)
        if org is None:
            raise CommandError(f"--organisation: no organisation {slug!r} on page {portal!r} "
                               f"(known: {', '.join(o.slug for o in orgs)}).")
        return org
    if len(orgs) > 1:
        raise CommandError(f"--organisation: page {portal!r} has several organisations: "
                           f"{', '.join(o.slug for o in orgs)}.")
    return orgs[0]


def run_command(options: dict, stdout, stderr, *, today: dt.date) -> int:
    """Write the export as the command line asks; returns the number of rows."""
    org = _organisation(options["portal"], options.get("organisation") or "")
    as_of = today
    if options.get("as_of"):
        try:
            as_of = dt.date.fromisoformat(options["as_of"])
        except ValueError:
            raise CommandError(f"--as-of: {options['as_of']!r} is not a date (YYYY-MM-DD).") from None
    rows = unpaid_past_due(org, as_of=as_of)
    target = options.get("output") or "-"
    if target == "-":
        n = write_csv(org, rows, stdout)
    else:
        try:
            with open(target, "w", encoding="utf-8-sig", newline="") as f:
                n = write_csv(org, rows, f)
        except OSError as exc:
            raise CommandError(f"--output: cannot write {target!r}: {exc.strerror}.") from None
    total = sum(r.outstanding_cents for r in rows)
    stderr.write(f"{n} unpaid invoice(s) due before {as_of.isoformat()}, outstanding {format_euros_plain(total)} EUR.\n")
    return n

