"""``guichet billing``: tariff files, invoice runs, deposits, credit notes, balances.

    guichet billing check FILE...             check tariff files, write nothing
    guichet billing load FILE...              load them (replace the organisation's tariffs)
    guichet billing run --portal P [--organisation ville] --from 2024-09 --to 2024-10
                        --activities mercredis,cantine [--grouping month] [--key KEY]
    guichet billing resume RUN                continue a run stopped halfway (crash, Ctrl-C)
    guichet billing show RUN                  progress, summary, anomalies
    guichet billing finalise RUN [--issue-date 2024-12-05] [--due-days 30]
    guichet billing cancel RUN
    guichet billing deposit --portal P --household REF --amount 50,00 --method cash --key KEY
    guichet billing credit-note --portal P --invoice FAC-2024-000012 --reason "..." --key KEY
                        [--line ID=AMOUNT ...] [--rebill]
    guichet billing balance --portal P --household REF
    guichet billing runs --portal P            list the organisation's runs
    guichet billing treasury-export --portal P [--organisation O] [--as-of 2025-01-31] [-o FILE]
                                              unpaid invoices past due, for the public accountant
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from guichet.billing import present, selectors, services, treasury
from guichet.billing.config import TariffError, load_tariffs
from guichet.billing.errors import BillingError
from guichet.billing.models import Invoice, InvoiceRun, Payment
from guichet.billing.rules import parse_month
from guichet.bookings.models import Activity, Household
from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.common.money import MoneyError, format_euros, parse_euros


def _euros(cents: int) -> str:
    return format_euros(cents).replace("\u202f", " ").replace("\u00a0", " ")


class Command(BaseCommand):
    help = "Childhood billing: tariff files, invoice runs (catch-up included), deposits, credit notes, balances."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        for name, text in (("check", "Check tariff files against the format and the database; write nothing."),
                           ("load", "Load tariff files (replace the organisation's tariffs; twice changes nothing).")):
            p = sub.add_parser(name, help=text)
            p.add_argument("files", nargs="+", metavar="FILE")

        def org(p):
            p.add_argument("--portal", required=True, help="the town's page (slug), e.g. maisons-alfort")
            p.add_argument("--organisation", default="", help="the organisation (slug); needed if the page has several")

        p = sub.add_parser("run", help="Create and execute an invoice run over a range of months.")
        org(p)
        p.add_argument("--from", dest="first", required=True, help="first month, YYYY-MM")
        p.add_argument("--to", dest="last", required=True, help="last month (included), YYYY-MM")
        p.add_argument("--activities", required=True, help="activity slugs, comma-separated, or 'all'")
        p.add_argument("--grouping", default="run", choices=["run", "month"],
                       help="one invoice per household for the whole run (default) or per month")
        p.add_argument("--key", default="", help="idempotency key (default: derived from the arguments)")
        p.add_argument("--chunk", type=int, default=services.DEFAULT_CHUNK, help="households per transaction")
        for name, text in (("resume", "Continue a run that stopped halfway."), ("show", "Show a run."),
                           ("cancel", "Cancel a run that is not finalised (drafts deleted).")):
            p = sub.add_parser(name, help=text)
            p.add_argument("run", type=int)
            if name == "resume":
                p.add_argument("--chunk", type=int, default=services.DEFAULT_CHUNK)
        p = sub.add_parser("finalise", help="Issue a run's drafts: numbers, then deposits applied oldest first.")
        p.add_argument("run", type=int)
        p.add_argument("--issue-date", default="", help="YYYY-MM-DD or DD/MM/YYYY (default: today, Paris)")
        p.add_argument("--due-days", type=int, default=services.DEFAULT_DUE_DAYS)
        p = sub.add_parser("runs", help="List the organisation's runs.")
        org(p)
        p = sub.add_parser("deposit", help="Record a deposit (cash, cheque, card) with a receipt number.")
        org(p)
        p.add_argument("--household", required=True, help="the family's file number")
        p.add_argument("--amount", required=True, help="in euros, e.g. 50,00")
        p.add_argument("--method", required=True, choices=["cash", "cheque", "card", "transfer"])
        p.add_argument("--reference", default="", help="cheque number, card receipt...")
        p.add_argument("--key", required=True, help="idempotency key (the counter form's key, or the paper receipt)")
        p = sub.add_parser("credit-note", help="Correct an issued invoice with a credit note.")
        org(p)
        p.add_argument("--invoice", required=True, help="invoice number, e.g. FAC-2024-000012")
        p.add_argument("--reason", required=True)
        p.add_argument("--key", required=True, help="idempotency key")
        p.add_argument("--line", action="append", default=[], metavar="ID=AMOUNT",
                       help="credit part of a line (repeatable); without it, the whole invoice")
        p.add_argument("--rebill", action="store_true", help="give the items back to be billed by the next run")
        p = sub.add_parser("balance", help="A household's balance, invoices and payments.")
        org(p)
        p.add_argument("--household", required=True)
        treasury.add_arguments(sub)

    def handle(self, *args, **options):
        action = options["action"]
        try:
            if action in ("check", "load"):
                return self._files(options["files"], dry_run=action == "check")
            return getattr(self, "_" + action.replace("-", "_"))(options)
        except BillingError as e:
            where = f"--{e.field.replace('_', '-')}: " if e.field else ""
            raise CommandError(f"{where}{e.message}", returncode=2) from None

    # --- tariff files -----------------------------------------------------------------------

    def _files(self, names, *, dry_run):
        failed = False
        for name in names:
            path = Path(name)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                self.stderr.write(f"{name}: cannot read the file ({e.__class__.__name__})")
                failed = True
                continue
            try:
                report = load_tariffs(text, path.name, actor=Actor.cli(), now=timezone.now(), dry_run=dry_run)
            except TariffError as e:
                self.stderr.write(str(e))
                failed = True
                continue
            self.stdout.write(f"{path.name} {'is valid' if dry_run else 'loaded'}: {report}")
        if failed:
            raise CommandError("some files have errors (nothing was written from them)", returncode=2)

    # --- lookups ------------------------------------------------------------------------------

    def _organisation(self, o) -> Organisation:
        orgs = Organisation.objects.filter(portal__slug=o["portal"])
        if o.get("organisation"):
            orgs = orgs.filter(slug=o["organisation"])
        found = list(orgs[:2])
        if not found:
            raise CommandError(f"--portal/--organisation: no organisation '{o.get('organisation') or '*'}' on page "
                               f"'{o['portal']}'", returncode=2)
        if len(found) > 1:
            raise CommandError("--organisation: this page has several organisations, name one", returncode=2)
        return found[0]

    def _household(self, org, reference) -> Household:
        h = Household.objects.filter(organisation=org, reference=reference).first()
        if h is None:
            raise CommandError(f"--household: no household '{reference}' in this organisation", returncode=2)
        return h

    def _run_obj(self, pk) -> InvoiceRun:
        run = InvoiceRun.objects.filter(pk=pk).first()
        if run is None:
            raise CommandError(f"no run {pk}", returncode=2)
        return run

    # --- runs ---------------------------------------------------------------------------------

    def _run(self, o):
        org = self._organisation(o)
        try:
            first, last = parse_month(o["first"]), parse_month(o["last"])
        except ValueError as e:
            raise CommandError(f"--from/--to: {e}", returncode=2) from None
        slugs = [s.strip() for s in o["activities"].split(",") if s.strip()]
        activities = list(Activity.objects.filter(organisation=org).order_by("position", "pk"))
        if slugs != ["all"]:
            by_slug = {a.slug: a for a in activities}
            unknown = [s for s in slugs if s not in by_slug]
            if unknown or not slugs:
                raise CommandError(f"--activities: unknown {', '.join(unknown) or '(none given)'}; known: "
                                   f"{', '.join(sorted(by_slug))}", returncode=2)
            activities = [by_slug[s] for s in slugs]
        key = o["key"] or f"cli:{first:%Y-%m}:{last:%Y-%m}:{','.join(sorted(a.slug for a in activities))}:{o['grouping']}"
        run = services.invoice_run_create(organisation=org, first_month=first, last_month=last, activities=activities,
                                          actor=Actor.cli(), now=timezone.now(), idempotency_key=key,
                                          grouping=o["grouping"])
        self.stdout.write(f"run {run.pk}: {first:%Y-%m} to {last:%Y-%m}, {', '.join(a.slug for a in activities)}, "
                          f"{run.households_total} households")
        return self._execute(run, o.get("chunk") or services.DEFAULT_CHUNK)

    def _resume(self, o):
        return self._execute(self._run_obj(o["run"]), o.get("chunk") or services.DEFAULT_CHUNK)

    def _execute(self, run, chunk):
        if run.status in (InvoiceRun.Status.READY, InvoiceRun.Status.FINAL):
            self.stdout.write(f"run {run.pk} is already {run.status}: nothing to bill")
            return self._print_summary(run)
        started = time.monotonic()

        def progress(r):
            p = selectors.run_progress(r)
            self.stdout.write(f"  {p.percent:3d} %  {p.households_done}/{p.households_total} households, "
                              f"{p.invoices} invoices, {p.items} items, {_euros(p.amount_cents)}")

        run = services.invoice_run_execute(run=run, actor=Actor.cli(), now=timezone.now(), chunk_size=chunk,
                                           progress=progress)
        self.stdout.write(f"billed in {time.monotonic() - started:.1f} s")
        return self._print_summary(run)

    def _print_summary(self, run):
        s = selectors.run_summary(run)
        w = self.stdout.write
        w(f"run {run.pk} — {run.get_status_display()} — {run.first_month:%Y-%m} to {run.last_month:%Y-%m}")
        w(f"  households invoiced: {s.households}; invoices: {s.invoices}; total {_euros(s.amount_cents)}")
        for name, month, cents, items in s.by_activity_month:
            w(f"    {name:<40} {month}  {items:>7} items  {_euros(cents):>14}")
        if run.status == InvoiceRun.Status.FINAL:
            w(f"  numbers {' to '.join(s.numbers) or '-'}; deposits and credit applied: "
              f"{_euros(s.deposits_applied_cents)}")
        if s.anomalies:
            w("  anomalies to review:")
            for kind, n in sorted(s.anomalies.items()):
                w(f"    {kind}: {n}")
        elif run.status != InvoiceRun.Status.CREATED:
            w("  no anomalies")
        if run.status == InvoiceRun.Status.READY:
            w(f"  review the drafts, then: guichet billing finalise {run.pk}")

    def _show(self, o):
        run = self._run_obj(o["run"])
        p = selectors.run_progress(run)
        self.stdout.write(f"progress: {p.percent} % ({p.households_done}/{p.households_total} households)")
        self._print_summary(run)
        for a in selectors.run_anomalies(run)[:50]:
            ref = a.household.reference if a.household else "-"
            self.stdout.write(f"    {a.kind:<22} household {ref:<12} {a.key} x{a.count}")

    def _runs(self, o):
        org = self._organisation(o)
        for r in InvoiceRun.objects.filter(organisation=org).order_by("pk"):
            self.stdout.write(f"{r.pk:>5}  {r.first_month:%Y-%m}..{r.last_month:%Y-%m}  {r.status:<9} "
                              f"{r.invoices_count:>6} invoices  {_euros(r.amount_cents):>14}")

    def _finalise(self, o):
        run = self._run_obj(o["run"])
        issue = None
        if o["issue_date"]:
            try:
                issue = present.parse_date(o["issue_date"])
            except ValueError:
                raise CommandError("--issue-date: expected YYYY-MM-DD or DD/MM/YYYY", returncode=2) from None
        run = services.invoice_run_finalise(run=run, actor=Actor.cli(), now=timezone.now(), issue_date=issue,
                                            due_days=o["due_days"])
        self._print_summary(run)
        from guichet.billing.tasks import enqueue_run_pdfs

        batches = enqueue_run_pdfs(run.pk)
        self.stdout.write(f"invoice PDFs queued for rendering in the background ({batches} batches)")

    def _treasury_export(self, o):
        from zoneinfo import ZoneInfo

        treasury.run_command(o, self.stdout, self.stderr,
                             today=timezone.now().astimezone(ZoneInfo("Europe/Paris")).date())

    def _cancel(self, o):
        run = services.invoice_run_cancel(run=self._run_obj(o["run"]), actor=Actor.cli(), now=timezone.now())
        self.stdout.write(f"run {run.pk} cancelled: its items can be billed again")

    # --- money ----------------------------------------------------------------------------------

    def _deposit(self, o):
        org = self._organisation(o)
        h = self._household(org, o["household"])
        try:
            cents = parse_euros(o["amount"])
        except MoneyError:
            raise CommandError(f"--amount: '{o['amount']}' is not an amount in euros (e.g. 50,00)", returncode=2) from None
        p = services.deposit_record(household=h, amount_cents=cents, method=o["method"], reference=o["reference"],
                                    actor=Actor.cli(), now=timezone.now(), idempotency_key=o["key"])
        self.stdout.write(f"deposit {p.receipt_number}: {_euros(p.amount_cents)} ({p.get_method_display()}) "
                          f"for household {h.reference}")
        self._balance_lines(h)

    def _credit_note(self, o):
        org = self._organisation(o)
        inv = Invoice.objects.filter(organisation=org, number=o["invoice"], kind=Invoice.Kind.INVOICE).first()
        if inv is None:
            raise CommandError(f"--invoice: no issued invoice '{o['invoice']}'", returncode=2)
        amounts = None
        if o["line"]:
            amounts = {}
            for item in o["line"]:
                line_id, _, amount = item.partition("=")
                try:
                    amounts[int(line_id)] = parse_euros(amount)
                except (ValueError, MoneyError):
                    raise CommandError(f"--line: '{item}' is not LINE_ID=AMOUNT (e.g. 1234=4,50)", returncode=2) from None
        note = services.credit_note_create(invoice=inv, amounts=amounts, rebill=o["rebill"], reason=o["reason"],
                                           actor=Actor.cli(), now=timezone.now(), idempotency_key=o["key"])
        self.stdout.write(f"credit note {note.number}: {_euros(note.total_cents)} on {inv.number}"
                          + (" (items will be billed again by the next run)" if note.rebill else ""))

    def _balance(self, o):
        h = self._household(self._organisation(o), o["household"])
        self._balance_lines(h)
        for inv, due in selectors.household_invoices(household=h):
            self.stdout.write(f"  {inv.number:<18} {inv.get_kind_display():<12} {inv.first_month:%Y-%m}..."
                              f"{inv.last_month:%Y-%m}  {_euros(inv.total_cents):>12}  due {_euros(due)}")
        for p in selectors.household_payments(household=h):
            sign = "-" if p.kind == Payment.Kind.REFUND else "+"
            self.stdout.write(f"  {p.receipt_number:<18} {p.get_kind_display():<12} {p.received_at:%Y-%m-%d}  "
                              f"{sign}{_euros(p.amount_cents)}")

    def _balance_lines(self, h):
        b = selectors.household_balance(household=h)
        state = "owes" if b.balance > 0 else "in credit" if b.balance < 0 else "settled"
        self.stdout.write(f"household {h.reference}: balance {_euros(abs(b.balance))} ({state}); "
                          f"available credit {_euros(b.available_credit)}")
