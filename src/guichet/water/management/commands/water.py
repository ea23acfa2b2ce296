"""``guichet water``: the water service's long operations, with progress and a summary.

    guichet water import-readings --organisation PAGE/ORG FILE.csv
    guichet water outage          --organisation PAGE/ORG --from DATE --to DATE --reason TEXT
    guichet water debit-run       --organisation PAGE/ORG --collection-date DATE --from DATE --to DATE
                                  [--key KEY] [--output FILE.xml]
    guichet water reject          --organisation PAGE/ORG --e2e ID --reason CODE
    guichet water regularise      --organisation PAGE/ORG --year YEAR --readings-until DATE --issued-on DATE
    guichet water periodic        --organisation PAGE/ORG --from DATE --to DATE --issued-on DATE
    guichet water plan            --organisation PAGE/ORG --invoice NUMBER --count N --first-due DATE
    guichet water tariff          --organisation PAGE/ORG --from DATE FILE.json
    guichet water move-in         --organisation PAGE/ORG --customer REF --name NAME --address TEXT
                                  --point REF --meter SERIAL --diameter MM --date DATE --index M3
                                  [--monthly --basis EUROS] [--no-sanitation]
    guichet water mandate         --organisation PAGE/ORG --customer REF --reference RUM --signed-on DATE
                                  --iban IBAN [--bic BIC] [--one-off]
    guichet water reading         --organisation PAGE/ORG --meter SERIAL --date DATE --index M3 [--estimated]
    guichet water move-out        --organisation PAGE/ORG --customer REF --date DATE --index M3 --issued-on DATE
    guichet water refunds         --organisation PAGE/ORG [--since DATE]     credits to refund (CSV on stdout)
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.common.money import MoneyError, format_euros, format_euros_plain, parse_euros
from guichet.water import services
from guichet.water.models import Customer, Invoice, Mandate, Meter, Schedule


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Water service: readings import, outage, direct-debit runs, returns, regularisation, invoices, plans."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)

        def action(name, text):
            p = sub.add_parser(name, help=text)
            p.add_argument("--organisation", required=True, metavar="PAGE/ORG",
                           help="the organisation, e.g. saint-nazaire/carene")
            return p

        p = action("import-readings", "Import a CSV of meter readings (all or nothing).")
        p.add_argument("file", metavar="FILE.csv")
        p = action("outage", "Mark the planned instalments due in a period as not collected.")
        p.add_argument("--from", dest="start", required=True)
        p.add_argument("--to", dest="end", required=True)
        p.add_argument("--reason", required=True)
        p = action("debit-run", "Present the instalments due in a period in a pain.008 file.")
        p.add_argument("--collection-date", required=True)
        p.add_argument("--from", dest="start", required=True)
        p.add_argument("--to", dest="end", required=True)
        p.add_argument("--key", help="idempotency key (default: the collection date)")
        p.add_argument("--output", metavar="FILE.xml")
        p = action("reject", "Record a debit returned by the bank.")
        p.add_argument("--e2e", required=True, help="the debit's end-to-end identifier")
        p.add_argument("--reason", required=True, help="the SEPA reason code (AM04, MD01...)")
        p = action("regularise", "Annual regularisation of the monthly payers' schedules.")
        p.add_argument("--year", type=int, required=True)
        p.add_argument("--readings-until", required=True)
        p.add_argument("--issued-on", required=True)
        p = action("periodic", "Periodic invoices for the customers who are not monthly payers.")
        p.add_argument("--from", dest="start", required=True)
        p.add_argument("--to", dest="end", required=True)
        p.add_argument("--issued-on", required=True)
        p = action("plan", "Spread an invoice's balance over monthly instalments.")
        p.add_argument("--invoice", required=True)
        p.add_argument("--count", type=int, required=True)
        p.add_argument("--first-due", required=True)
        p = action("tariff", "Load a dated tariff (JSON).")
        p.add_argument("--from", dest="start", required=True)
        p.add_argument("file", metavar="FILE.json")
        p = action("move-in", "A new customer (or a known one) supplied at a delivery point from a date.")
        for name in ("--customer", "--name", "--address", "--point", "--meter", "--date"):
            p.add_argument(name, required=True)
        p.add_argument("--diameter", type=int, required=True)
        p.add_argument("--index", type=int, required=True)
        p.add_argument("--no-sanitation", action="store_true", help="the point is not connected to the sewer")
        p.add_argument("--monthly", action="store_true", help="a monthly payer: make this year's schedule")
        p.add_argument("--basis", default="0", help="the schedule's yearly basis in euros (an estimate)")
        p = action("mandate", "Record a signed SEPA mandate (replaces the customer's active one).")
        for name in ("--customer", "--reference", "--signed-on", "--iban"):
            p.add_argument(name, required=True)
        p.add_argument("--bic", default="")
        p.add_argument("--one-off", action="store_true")
        p = action("reading", "Record one meter reading.")
        p.add_argument("--meter", required=True)
        p.add_argument("--date", required=True)
        p.add_argument("--index", type=int, required=True)
        p.add_argument("--estimated", action="store_true")
        p = action("refunds", "List the credits to refund (CSV: invoice, customer, amount, masked account).")
        p.add_argument("--since", help="invoices issued on or after this date")
        p = action("move-out", "Close a customer's running contract with the final reading; issue the final invoice.")
        for name in ("--customer", "--date", "--issued-on"):
            p.add_argument(name, required=True)
        p.add_argument("--index", type=int, required=True)

    # --- helpers

    def _organisation(self, text: str) -> Organisation:
        page, _, slug = text.partition("/")
        org = Organisation.objects.filter(portal__slug=page, slug=slug).first()
        if not slug or org is None:
            raise CommandError(f"no organisation {text!r} (expected PAGE/ORGANISATION, e.g. saint-nazaire/carene)")
        return org

    def _progress(self, label: str):
        def show(done: int, total: int) -> None:
            pct = 100 * done // total if total else 100
            self.stderr.write(f"\r{label}: {done}/{total} ({pct} %)", ending="")
            if done >= total:
                self.stderr.write("")
            if hasattr(sys.stderr, "flush"):
                sys.stderr.flush()
        return show

    def _line(self, label: str, value) -> None:
        self.stdout.write(f"  {label:<34} {value}")

    # --- actions

    def handle(self, *args, **o):
        org = self._organisation(o["organisation"])
        now = timezone.now()
        actor = Actor.cli()
        try:
            getattr(self, "do_" + o["action"].replace("-", "_"))(org, o, actor, now)
        except services.WaterError as e:
            raise CommandError(f"{e.field}: {e.message} (nothing was changed)") from None

    def do_import_readings(self, org, o, actor, now):
        path = Path(o["file"])
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise CommandError(f"{path}: cannot read the file ({e.__class__.__name__})") from None
        try:
            report = services.readings_import(organisation=org, text=text, actor=Actor(ref="cli", channel="import"),
                                              now=now, progress=self._progress("checking"))
        except services.ImportFailed as e:
            shown = e.errors[:50]
            more = f"\n... and {len(e.errors) - 50} more" if len(e.errors) > 50 else ""
            raise CommandError(f"{path}: {len(e.errors)} wrong line(s), nothing imported:\n"
                               + "\n".join(shown) + more) from None
        self.stdout.write(f"{path}: readings imported")
        self._line("readings", report.imported)
        self._line("actual / estimated", f"{report.actual} / {report.estimated}")
        self._line("volume since previous readings", f"{report.consumption} m³")

    def do_outage(self, org, o, actor, now):
        count, amount = services.instalments_mark_not_collected(
            organisation=org, due_from=_date(o["start"]), due_until=_date(o["end"]), reason=o["reason"],
            actor=actor, now=now)
        self.stdout.write("instalments marked not collected (settled at the annual regularisation)")
        self._line("instalments", count)
        self._line("amount", format_euros(amount))

    def do_debit_run(self, org, o, actor, now):
        collection = _date(o["collection_date"])
        report = services.debit_run_create(
            organisation=org, collection_date=collection, due_from=_date(o["start"]), due_until=_date(o["end"]),
            idempotency_key=o["key"] or f"collection-{collection.isoformat()}", actor=actor, now=now,
            progress=self._progress("debits"))
        run = report.run
        self.stdout.write("debit run " + ("created" if report.created else "already made with this key: nothing collected"))
        self._line("message id", run.message_id)
        self._line("debits", run.count)
        self._line("control sum", format_euros(run.control_sum))
        self._line("by sequence type", ", ".join(f"{k} {v}" for k, v in sorted(report.by_sequence.items())) or "-")
        self._line("anomalies", len(report.anomalies))
        for a in report.anomalies:
            self.stdout.write(f"    - {a}")
        if o["output"]:
            Path(o["output"]).write_bytes(bytes(run.xml))
            self._line("file", o["output"])

    def do_reject(self, org, o, actor, now):
        done = services.debit_reject(organisation=org, end_to_end_id=o["e2e"], reason=o["reason"], actor=actor, now=now)
        self.stdout.write("return recorded: the instalment will be settled at the regularisation" if done
                          else "this return was already recorded: nothing changed")

    def _summary(self, report):
        s = report.as_summary()
        for key, label, money in (
            ("invoices", "invoices issued", False), ("billed", "total billed", True),
            ("collected", "instalments collected (deducted)", True), ("due", "balances due", True),
            ("credit_carried", "credits carried over", True), ("credit_refunded", "credits to refund", True),
            ("not_collected", "not collected (outage)", True), ("rejected", "returned by the bank", True),
            ("next_schedules", "next schedules", False), ("next_total", "next schedules total", True),
            ("estimated_readings", "estimated readings", False),
        ):
            self._line(label, format_euros(s[key]) if money else s[key])
        self._line("anomalies", len(s["anomalies"]))
        for a in s["anomalies"]:
            self.stdout.write(f"    - {a}")

    def do_regularise(self, org, o, actor, now):
        report = services.regularisation_run(
            organisation=org, year=o["year"], readings_until=_date(o["readings_until"]),
            issued_on=_date(o["issued_on"]), actor=actor, now=now, progress=self._progress("schedules"))
        self.stdout.write(f"regularisation {o['year']}: {report.schedules} running schedule(s)")
        self._summary(report)

    def do_periodic(self, org, o, actor, now):
        report = services.periodic_invoice_run(
            organisation=org, period_start=_date(o["start"]), period_end=_date(o["end"]),
            issued_on=_date(o["issued_on"]), actor=actor, now=now, progress=self._progress("contracts"))
        self.stdout.write(f"periodic invoices: {report.schedules} contract(s) to invoice")
        self._line("invoices issued", report.invoices)
        self._line("total billed", format_euros(report.billed))
        self._line("anomalies", len(report.anomalies))
        for a in report.anomalies:
            self.stdout.write(f"    - {a}")

    def do_plan(self, org, o, actor, now):
        invoice = Invoice.objects.filter(organisation=org, number=o["invoice"]).first()
        if invoice is None:
            raise CommandError(f"no invoice {o['invoice']!r} in this organisation")
        made = services.payment_plan_create(invoice=invoice, count=o["count"], first_due=_date(o["first_due"]),
                                            actor=actor, now=now)
        self.stdout.write(f"instalment plan for {invoice.number}: {format_euros(invoice.balance)}")
        for inst in made:
            self._line(inst.due_date.isoformat(), format_euros(inst.amount))

    def do_tariff(self, org, o, actor, now):
        path = Path(o["file"])
        try:
            definition = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise CommandError(f"{path}: cannot read the file ({e.__class__.__name__})") from None
        except json.JSONDecodeError as e:
            raise CommandError(f"{path}: not JSON (line {e.lineno}: {e.msg})") from None
        tariff = services.tariff_set(organisation=org, valid_from=_date(o["start"]), definition=definition,
                                     actor=actor, now=now)
        self.stdout.write(f"tariff in force from {tariff.valid_from.isoformat()} loaded "
                          f"({len(definition['headings'])} headings)")

    def _customer(self, org, reference):
        customer = Customer.objects.filter(organisation=org, reference=reference).first()
        if customer is None:
            raise CommandError(f"no customer {reference!r} in this organisation")
        return customer

    def do_move_in(self, org, o, actor, now):
        customer = Customer.objects.filter(organisation=org, reference=o["customer"]).first()
        if customer is None:
            customer = services.customer_create(
                organisation=org, reference=o["customer"], name=o["name"], address=o["address"],
                billing="monthly" if o["monthly"] else "periodic", actor=actor, now=now)
        try:
            basis = parse_euros(o["basis"])
        except MoneyError:
            raise CommandError(f"--basis: {o['basis']!r} is not an amount in euros") from None
        start = _date(o["date"])
        contract = services.contract_open(
            customer=customer, point_reference=o["point"], address=o["address"], sanitation=not o["no_sanitation"],
            meter_serial=o["meter"], diameter=o["diameter"], start=start, start_index=o["index"], actor=actor, now=now)
        self.stdout.write(f"customer {customer.reference} supplied at {o['point']} from {start.isoformat()} "
                          f"(meter {o['meter']}, index {o['index']} m³)")
        if o["monthly"]:
            schedule = services.schedule_create(contract=contract, year=start.year, basis=basis, actor=actor, now=now)
            self._line(f"schedule {schedule.year}", f"{schedule.instalments.count()} instalments, "
                                                     f"{format_euros(basis)}")

    def do_mandate(self, org, o, actor, now):
        mandate = services.mandate_create(customer=self._customer(org, o["customer"]), reference=o["reference"],
                                          signed_on=_date(o["signed_on"]), iban=o["iban"], bic=o["bic"],
                                          one_off=o["one_off"], actor=actor, now=now)
        self.stdout.write(f"mandate {mandate.reference} recorded for account {mandate.masked_iban}")

    def do_reading(self, org, o, actor, now):
        meter = Meter.objects.filter(organisation=org, serial=o["meter"]).first()
        if meter is None:
            raise CommandError(f"no meter {o['meter']!r} in this organisation")
        reading = services.reading_record(meter=meter, date=_date(o["date"]), index=o["index"],
                                          kind="estimated" if o["estimated"] else "actual", actor=actor, now=now)
        self.stdout.write(f"reading recorded: meter {meter.serial}, {reading.date.isoformat()}, {reading.index} m³ "
                          f"({reading.get_kind_display()})")

    def do_move_out(self, org, o, actor, now):
        customer = self._customer(org, o["customer"])
        contract = customer.contracts.filter(end__isnull=True).first()
        if contract is None:
            raise CommandError(f"customer {customer.reference} has no running contract")
        invoice = services.contract_close(contract=contract, end=_date(o["date"]), end_index=o["index"],
                                          issued_on=_date(o["issued_on"]), actor=actor, now=now)
        self.stdout.write(f"contract closed; final invoice {invoice.number}")
        self._line("total", format_euros(invoice.total))
        self._line("instalments collected (deducted)", format_euros(invoice.deducted))
        self._line("credit to refund" if invoice.balance < 0 else "balance due", format_euros(abs(invoice.balance)))

    def do_refunds(self, org, o, actor, now):
        invoices = (Invoice.objects.filter(organisation=org, balance__lt=0)
                    .select_related("contract__customer").order_by("issued_on", "number"))
        if o["since"]:
            invoices = invoices.filter(issued_on__gte=_date(o["since"]))
        mandates = {m.customer_id: m.masked_iban for m in Mandate.objects.filter(organisation=org, status="active")}
        total = 0
        self.stdout.write("invoice;issued_on;customer;amount;account")
        for inv in invoices:
            amount = -inv.balance
            if inv.kind == Invoice.Kind.REGULARISATION and inv.schedule_id:
                carried = Schedule.objects.filter(contract_id=inv.contract_id, year=inv.schedule.year + 1).values_list(
                    "credit_applied", flat=True).first() or 0
                amount -= carried  # the part carried over to the next schedule is not refunded
            if amount <= 0:
                continue
            total += amount
            customer = inv.contract.customer
            self.stdout.write(f"{inv.number};{inv.issued_on.isoformat()};{customer.reference};"
                              f"{format_euros_plain(amount)};{mandates.get(customer.pk, '')}")
        self.stderr.write(f"total to refund: {format_euros(total)}")
