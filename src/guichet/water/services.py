"""Water and sanitation: every write is one of these functions. Each validates its input, owns its
transaction (``atomic(durable=True)``) and journals what it did in that transaction. Journal
``details`` hold ids, counts and amounts only; names, addresses and IBANs go to the hashed
``payload`` at most.

Long operations (readings import, regularisation, debit runs) are set-based: a few queries to
load, the pure rules in memory, bulk writes, one journal entry; they take an optional
``progress(done, total)`` callback for the console.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils.translation import gettext as _

from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.common.crypto import blind_index
from guichet.common.money import format_euros
from guichet.journal.services import journal_append

from . import bulk, rules, sepa
from .models import (
    Contract,
    Creditor,
    Customer,
    DebitLine,
    DebitRun,
    DeliveryPoint,
    Instalment,
    Invoice,
    InvoiceCounter,
    Mandate,
    Meter,
    Reading,
    RegularisationRun,
    Schedule,
    Tariff,
)

PARIS = ZoneInfo("Europe/Paris")
Progress = Callable[[int, int], None] | None
BALANCE_DUE_DAYS = 20
STALE_DAYS = 90  # a reading older than this before the cut-off date is replaced by an estimate
BATCH = 2000


class WaterError(ValueError):
    """Bad input to a water operation: ``field`` names what is wrong; nothing was changed."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ImportFailed(ValueError):
    """A readings file with errors: one message per wrong line; nothing was imported."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def _paris_day(now: dt.datetime) -> dt.date:
    """The calendar day in Europe/Paris (a due date or a collection date is a French day)."""
    return now.astimezone(PARIS).date()


def _journal(actor: Actor, operation: str, organisation: Organisation, objects, details: dict, payload, now):
    journal_append(actor=actor, operation=operation, objects=objects, details=details, payload=payload,
                   organisation_id=organisation.pk, now=now)


# --- Set-up: creditor, tariffs, customers, contracts -----------------------------------------------


def creditor_set(*, organisation: Organisation, name: str, creditor_id: str, iban: str, bic: str = "",
                 instalment_day: int = 10, instalment_count: int = 10, actor: Actor, now: dt.datetime) -> Creditor:
    try:
        cid = sepa.clean_creditor_id(creditor_id)
    except sepa.SepaError as e:
        raise WaterError("creditor_id", str(e)) from None
    try:
        iban_c, bic_c = sepa.clean_iban(iban), sepa.clean_bic(bic)
    except sepa.SepaError as e:
        raise WaterError("iban", str(e)) from None
    if not name.strip():
        raise WaterError("name", "the creditor's name is required")
    if not 1 <= instalment_day <= 28:
        raise WaterError("instalment_day", "must be between 1 and 28")
    if not 1 <= instalment_count <= 12:
        raise WaterError("instalment_count", "must be between 1 and 12")
    with transaction.atomic(durable=True):
        creditor, _ = Creditor.objects.update_or_create(
            organisation=organisation,
            defaults={"name": name.strip()[:70], "creditor_id": cid, "iban": iban_c, "bic": bic_c,
                      "instalment_day": instalment_day, "instalment_count": instalment_count})
        _journal(actor, "water.creditor_set", organisation, [creditor],
                 {"instalment_day": instalment_day, "instalment_count": instalment_count},
                 {"creditor_id": cid, "iban": iban_c}, now)
    return creditor


def tariff_set(*, organisation: Organisation, valid_from: dt.date, definition: dict, actor: Actor,
               now: dt.datetime) -> Tariff:
    """Create or replace the tariff in force from ``valid_from``. Refused when an invoice already
    priced a day on or after that date (issued invoices are never repriced)."""
    try:
        rules.parse_tariff(valid_from, definition)
    except rules.RuleError as e:
        raise WaterError("definition", str(e)) from None
    with transaction.atomic(durable=True):
        if Invoice.objects.filter(organisation=organisation, period_end__gt=valid_from).exists():
            raise WaterError("valid_from", "invoices were already issued for days after this date")
        tariff, created = Tariff.objects.update_or_create(
            organisation=organisation, valid_from=valid_from, defaults={"definition": definition})
        _journal(actor, "water.tariff_set", organisation, [tariff],
                 {"valid_from": valid_from.isoformat(), "created": created}, definition, now)
    return tariff


def customer_create(*, organisation: Organisation, reference: str, name: str, address: str = "",
                    billing: str = Customer.Billing.PERIODIC, credit_preference: str = Customer.Credit.CARRY_OVER,
                    actor: Actor, now: dt.datetime) -> Customer:
    reference = reference.strip()
    if not reference or len(reference) > 20:
        raise WaterError("reference", "a customer reference of 1 to 20 characters is required")
    if not name.strip():
        raise WaterError("name", "the customer's name is required")
    if billing not in Customer.Billing.values:
        raise WaterError("billing", f"unknown billing mode {billing!r}")
    if credit_preference not in Customer.Credit.values:
        raise WaterError("credit_preference", f"unknown credit preference {credit_preference!r}")
    try:
        with transaction.atomic(durable=True):
            customer = Customer.objects.create(organisation=organisation, reference=reference, name=name.strip(),
                                               address=address.strip(), billing=billing,
                                               credit_preference=credit_preference, created_at=now)
            _journal(actor, "water.customer_create", organisation, [customer], {"billing": billing},
                     {"name": name, "address": address}, now)
    except IntegrityError:
        raise WaterError("reference", f"customer {reference} already exists") from None
    return customer


def contract_open(*, customer: Customer, point_reference: str, address: str, sanitation: bool,
                  meter_serial: str, diameter: int, start: dt.date, start_index: int,
                  actor: Actor, now: dt.datetime) -> Contract:
    """Move-in: the customer is supplied at the delivery point (created if new) through the
    meter (created if new) from ``start``, with the index read that day."""
    organisation = customer.organisation
    if start_index < 0:
        raise WaterError("start_index", "the index cannot be negative")
    if not 10 <= diameter <= 300:
        raise WaterError("diameter", "a meter diameter is between 10 and 300 mm")
    if not point_reference.strip() or not meter_serial.strip():
        raise WaterError("point_reference", "the delivery point and the meter serial are required")
    try:
        with transaction.atomic(durable=True):
            point, _ = DeliveryPoint.objects.get_or_create(
                organisation=organisation, reference=point_reference.strip(),
                defaults={"address": address.strip(), "sanitation": sanitation})
            meter, _ = Meter.objects.get_or_create(
                organisation=organisation, serial=meter_serial.strip(),
                defaults={"delivery_point": point, "diameter": diameter})
            if meter.delivery_point_id != point.pk:
                raise WaterError("meter_serial", "this meter is installed at another delivery point")
            last_end = (Contract.objects.filter(delivery_point=point, end__isnull=False)
                        .order_by("-end").values_list("end", flat=True).first())
            if last_end and start < last_end:
                raise WaterError("start", "the previous contract at this point ends after this date")
            contract = Contract.objects.create(organisation=organisation, customer=customer, delivery_point=point,
                                               meter=meter, start=start, start_index=start_index)
            Reading.objects.get_or_create(meter=meter, date=start, defaults={
                "organisation": organisation, "index": start_index, "kind": Reading.Kind.ACTUAL, "recorded_at": now})
            _journal(actor, "water.contract_open", organisation, [contract, point, meter],
                     {"start": start.isoformat(), "start_index": start_index, "diameter": meter.diameter},
                     {"address": address}, now)
    except IntegrityError:
        raise WaterError("point_reference", "this delivery point already has a running contract") from None
    return contract


# --- Readings --------------------------------------------------------------------------------------


def _check_reading(meter_id: int, date: dt.date, index: int, kind: str, previous_actual: tuple[dt.date, int] | None) -> str | None:
    if kind not in Reading.Kind.values:
        return f"unknown kind {kind!r} (actual or estimated)"
    if index < 0:
        return "the index cannot be negative"
    if kind == Reading.Kind.ACTUAL and previous_actual and previous_actual[0] < date and index < previous_actual[1]:
        return (f"index {index} is below the actual reading of {previous_actual[0].isoformat()} "
                f"({previous_actual[1]} m³)")
    return None


def reading_record(*, meter: Meter, date: dt.date, index: int, kind: str = Reading.Kind.ACTUAL,
                   actor: Actor, now: dt.datetime) -> Reading:
    prev = (Reading.objects.filter(meter=meter, kind=Reading.Kind.ACTUAL, date__lt=date)
            .order_by("-date").values_list("date", "index").first())
    problem = _check_reading(meter.pk, date, index, kind, prev)
    if problem:
        raise WaterError("index" if "index" in problem else "kind", problem)
    try:
        with transaction.atomic(durable=True):
            reading = Reading.objects.create(organisation_id=meter.organisation_id, meter=meter, date=date,
                                             index=index, kind=kind, recorded_at=now)
            _journal(actor, "water.reading_record", meter.organisation, [reading],
                     {"date": date.isoformat(), "index": index, "kind": kind}, None, now)
    except IntegrityError:
        raise WaterError("date", f"meter {meter.serial} already has a reading on {date.isoformat()}") from None
    return reading


_KINDS = {"actual": "actual", "réel": "actual", "reel": "actual", "r": "actual",
          "estimated": "estimated", "estimé": "estimated", "estime": "estimated", "e": "estimated"}


def _parse_date(text: str) -> dt.date | None:
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    return None


@dataclass
class ImportReport:
    imported: int = 0
    actual: int = 0
    estimated: int = 0
    consumption: int = 0  # m³ since each meter's previous reading
    anomalies: list[str] = field(default_factory=list)


def readings_import(*, organisation: Organisation, text: str, actor: Actor, now: dt.datetime,
                    progress: Progress = None) -> ImportReport:
    """Import a CSV of readings (``meter;date;index;kind`` with a header line; ``,`` also
    accepted; dates ``2024-11-15`` or ``15/11/2024``; kind ``actual``/``estimated`` or
    ``réel``/``estimé``). All or nothing: any wrong line raises :class:`ImportFailed` listing
    every wrong line by number, and nothing is imported."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines:
        raise ImportFailed(["line 1: the file is empty"])
    delimiter = ";" if lines[0].count(";") >= lines[0].count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    expected = ["meter", "date", "index", "kind"]
    if header[:4] != expected:
        raise ImportFailed([f"line 1: the header must be {delimiter.join(expected)} (found {delimiter.join(header)})"])
    meters = {m["serial"]: m for m in Meter.objects.filter(organisation=organisation).values("id", "serial")}
    existing: dict[int, list[tuple[dt.date, int, str]]] = defaultdict(list)
    for r in Reading.objects.filter(organisation=organisation).values_list("meter_id", "date", "index", "kind"):
        existing[r[0]].append((r[1], r[2], r[3]))
    rows = list(reader)
    errors: list[str] = []
    seen: set[tuple[int, dt.date]] = set()
    new: list[Reading] = []
    report = ImportReport()
    for n, row in enumerate(rows, start=2):
        if progress and n % 1000 == 0:
            progress(n - 1, len(rows))
        if not any(c.strip() for c in row):
            continue
        if len(row) < 4:
            errors.append(f"line {n}: 4 columns expected, {len(row)} found")
            continue
        serial, date_s, index_s, kind_s = (c.strip() for c in row[:4])
        meter = meters.get(serial)
        if meter is None:
            errors.append(f"line {n}: unknown meter {serial!r}")
            continue
        date = _parse_date(date_s)
        if date is None:
            errors.append(f"line {n}: {date_s!r} is not a date (2024-11-15 or 15/11/2024)")
            continue
        if not index_s.isdigit():
            errors.append(f"line {n}: index {index_s!r} is not a whole number of m³")
            continue
        index = int(index_s)
        kind = _KINDS.get(kind_s.lower())
        if kind is None:
            errors.append(f"line {n}: kind {kind_s!r} is not actual or estimated")
            continue
        key = (meter["id"], date)
        history = existing[meter["id"]]
        if key in seen or any(d == date for d, _, _ in history):
            errors.append(f"line {n}: meter {serial} already has a reading on {date.isoformat()}")
            continue
        previous = [(d, i) for d, i, k in history if k == "actual" and d < date]
        problem = _check_reading(meter["id"], date, index, kind, max(previous) if previous else None)
        if problem:
            errors.append(f"line {n}: {problem}")
            continue
        seen.add(key)
        before = [(d, i) for d, i, _ in history if d < date]
        if before:
            report.consumption += index - max(before)[1]
        history.append((date, index, kind))
        new.append(Reading(organisation=organisation, meter_id=meter["id"], date=date, index=index, kind=kind,
                           recorded_at=now))
        if kind == "actual":
            report.actual += 1
        else:
            report.estimated += 1
    if errors:
        raise ImportFailed(errors)
    if not new:
        raise ImportFailed(["the file holds no reading"])
    try:
        with transaction.atomic(durable=True):
            Reading.objects.bulk_create(new, batch_size=BATCH)
            report.imported = len(new)
            _journal(actor, "water.readings_import", organisation, [],
                     {"imported": report.imported, "actual": report.actual, "estimated": report.estimated},
                     text, now)
    except IntegrityError:
        raise ImportFailed(["a reading of this file was recorded by someone else meanwhile (same meter and "
                            "day): nothing was imported; import the file again"]) from None
    if progress:
        progress(len(rows), len(rows))
    return report


# --- Mandates --------------------------------------------------------------------------------------


def mandate_create(*, customer: Customer, reference: str, signed_on: dt.date, iban: str, bic: str = "",
                   one_off: bool = False, actor: Actor, now: dt.datetime) -> Mandate:
    """Record a signed mandate (RUM). Replaces the customer's active mandate, which is revoked."""
    reference = reference.strip()
    if not reference or len(reference) > 35:
        raise WaterError("reference", "a mandate reference of 1 to 35 characters is required")
    try:
        iban_c = sepa.clean_iban(iban)
        bic_c = sepa.clean_bic(bic)
    except sepa.SepaError as e:
        raise WaterError("iban", str(e)) from None
    if signed_on > _paris_day(now):
        raise WaterError("signed_on", "the signature date cannot be in the future")
    try:
        with transaction.atomic(durable=True):
            revoked = Mandate.objects.filter(customer=customer, status=Mandate.Status.ACTIVE).update(
                status=Mandate.Status.REVOKED, revoked_on=signed_on)
            mandate = Mandate.objects.create(organisation_id=customer.organisation_id, customer=customer,
                                             reference=reference, signed_on=signed_on, iban=iban_c, bic=bic_c,
                                             one_off=one_off)
            _journal(actor, "water.mandate_create", customer.organisation, [mandate, customer],
                     {"one_off": one_off, "replaced": revoked},
                     {"iban": blind_index("water.mandate.iban", iban_c), "reference": reference}, now)
    except IntegrityError:
        raise WaterError("reference", f"mandate reference {reference} is already used") from None
    return mandate


def mandate_revoke(*, mandate: Mandate, on: dt.date, actor: Actor, now: dt.datetime) -> Mandate:
    with transaction.atomic(durable=True):
        n = Mandate.objects.filter(pk=mandate.pk, status=Mandate.Status.ACTIVE).update(
            status=Mandate.Status.REVOKED, revoked_on=on)
        if n:
            _journal(actor, "water.mandate_revoke", mandate.customer.organisation, [mandate], {"on": on.isoformat()},
                     None, now)
    mandate.refresh_from_db()
    return mandate


# --- Schedules and the outage ------------------------------------------------------------------------


def _creditor(organisation: Organisation) -> Creditor:
    creditor = Creditor.objects.filter(organisation=organisation).first()
    if creditor is None:
        raise WaterError("organisation", "no SEPA creditor set up for this organisation (creditor_set)")
    return creditor


def _schedule_parts(year: int, basis: int, credit: int, creditor: Creditor) -> list[tuple[int, dt.date, int]]:
    """``(number, due date, amount)`` of a schedule's instalments (zero amounts are left out)."""
    dates = rules.schedule_due_dates(year, creditor.instalment_count, day=creditor.instalment_day)
    amounts = rules.schedule_amounts(basis - credit, len(dates))
    return [(n, d, a) for n, (d, a) in enumerate(zip(dates, amounts, strict=True), start=1) if a > 0]


def schedule_create(*, contract: Contract, year: int, basis: int, actor: Actor, now: dt.datetime) -> Schedule:
    """A monthly payer's schedule for ``year``: ``basis`` (last year's bill, or an estimate for
    a new customer) split in the organisation's number of instalments."""
    if basis < 0:
        raise WaterError("basis", "the basis of a schedule cannot be negative")
    creditor = _creditor(contract.organisation)
    if contract.customer.billing != Customer.Billing.MONTHLY:
        raise WaterError("contract", "this customer is not a monthly payer")
    try:
        with transaction.atomic(durable=True):
            schedule = Schedule.objects.create(organisation=contract.organisation, contract=contract, year=year,
                                               basis=basis, created_at=now)
            instalments = Instalment.objects.bulk_create([
                Instalment(organisation=contract.organisation, schedule=schedule, customer_id=contract.customer_id,
                           number=n, due_date=d, amount=a) for n, d, a in _schedule_parts(year, basis, 0, creditor)])
            _journal(actor, "water.schedule_create", contract.organisation, [schedule, contract],
                     {"year": year, "basis": basis, "instalments": len(instalments)}, None, now)
    except IntegrityError:
        raise WaterError("year", f"contract already has a schedule for {year}") from None
    return schedule


def instalments_mark_not_collected(*, organisation: Organisation, due_from: dt.date, due_until: dt.date,
                                   reason: str, actor: Actor, now: dt.datetime) -> tuple[int, int]:
    """The outage: every planned instalment due in ``[due_from, due_until]`` is marked "not
    collected" (it is settled at the annual regularisation). Returns ``(count, amount)``.
    Running it again marks nothing more."""
    if due_until < due_from:
        raise WaterError("due_until", _("The end of the period is before its start."))
    reason = reason.strip()[:200]
    if not reason:
        raise WaterError("reason", _("Say why the instalments were not collected."))
    with transaction.atomic(durable=True):
        qs = Instalment.objects.filter(organisation=organisation, state=Instalment.State.PLANNED,
                                       due_date__gte=due_from, due_date__lte=due_until)
        amount = qs.aggregate(s=Sum("amount"))["s"] or 0
        count = qs.update(state=Instalment.State.NOT_COLLECTED, note=reason)
        _journal(actor, "water.instalments_not_collected", organisation, [],
                 {"due_from": due_from.isoformat(), "due_until": due_until.isoformat(), "count": count,
                  "amount": amount}, reason, now)
    return count, amount


# --- Direct debits ------------------------------------------------------------------------------


@dataclass
class DebitReport:
    run: DebitRun
    created: bool
    count: int
    control_sum: int
    by_sequence: dict[str, int]
    anomalies: list[str]


def debit_run_create(*, organisation: Organisation, collection_date: dt.date, due_from: dt.date,
                     due_until: dt.date, idempotency_key: str, actor: Actor, now: dt.datetime,
                     progress: Progress = None) -> DebitReport:
    """Present for collection every planned instalment due in ``[due_from, due_until]`` whose
    customer has an active mandate, in one pain.008 file (validated against the XSD before it is
    saved). The instalments become "collected" (the bank takes them unless it returns them:
    :func:`debit_reject`). Planned instalments due before ``due_from`` are NOT swept in: they are
    reported as anomalies (an outage's instalments are never collected silently). The same
    ``idempotency_key`` returns the first run; an instalment is in at most one file, ever (a
    database constraint)."""
    if due_until < due_from:
        raise WaterError("due_until", _("The end of the period is before its start."))
    if collection_date < _paris_day(now):
        raise WaterError("collection_date", "the collection date is in the past")
    key = idempotency_key.strip()[:80]
    if not key:
        raise WaterError("idempotency_key", "required")
    existing = DebitRun.objects.filter(organisation=organisation, idempotency_key=key).first()
    if existing:
        return _debit_report(existing, created=False)
    creditor = _creditor(organisation)
    try:
        with transaction.atomic(durable=True):
            candidates = list(
                Instalment.objects.select_for_update(of=("self",))
                .filter(organisation=organisation, state=Instalment.State.PLANNED, due_date__gte=due_from,
                        due_date__lte=due_until)
                .order_by("pk").values("id", "customer_id", "amount", "due_date", "number", "schedule_id",
                                       "schedule__year", "invoice_id", "invoice__number", "customer__name",
                                       "customer__reference")
            )
            anomalies: list[str] = []
            overdue = Instalment.objects.filter(organisation=organisation, state=Instalment.State.PLANNED,
                                                due_date__lt=due_from).aggregate(n=Count("id"), s=Sum("amount"))
            if overdue["n"]:
                anomalies.append(f"{overdue['n']} planned instalment(s) due before {due_from.isoformat()} "
                                 f"({format_euros(overdue['s'])}) left out: mark them not collected or present them in a run of their own")
            # Whole-organisation reads (no IN list of thousands of ids): mandates, who is still
            # supplied, who has instalments after this run (for FNAL).
            mandates = {m.customer_id: m for m in Mandate.objects.filter(organisation=organisation,
                                                                         status=Mandate.Status.ACTIVE)}
            still_supplied = set(Contract.objects.filter(organisation=organisation, end__isnull=True)
                                 .values_list("customer_id", flat=True))
            later = set(Instalment.objects.filter(organisation=organisation, state=Instalment.State.PLANNED,
                                                  due_date__gt=due_until).values_list("customer_id", flat=True).distinct())
            no_mandate = [c for c in candidates if c["customer_id"] not in mandates]
            if no_mandate:
                anomalies.append(f"{len(no_mandate)} instalment(s) due without an active mandate "
                                 f"({format_euros(sum(c['amount'] for c in no_mandate))}): to be paid otherwise")
            chosen = [c for c in candidates if c["customer_id"] in mandates]
            if not chosen:
                same_key = DebitRun.objects.filter(organisation=organisation, idempotency_key=key).first()
                if same_key is not None:  # made meanwhile by the same request, retried
                    return _debit_report(same_key, created=False)
                raise WaterError("due_until", "no instalment to collect by direct debit in this period")
            last_of: dict[int, int] = {}
            for c in chosen:
                last_of[c["customer_id"]] = c["id"]
            used = {cid for cid, m in mandates.items() if m.first_debit_on is not None}
            debits, lines = [], []
            run = DebitRun.objects.create(organisation=organisation, idempotency_key=key, collection_date=collection_date,
                                          due_until=due_until, message_id="-", count=0, control_sum=0, xml=b"",
                                          anomalies=anomalies, created_at=now)
            for i, c in enumerate(chosen, start=1):
                m = mandates[c["customer_id"]]
                last = (c["customer_id"] not in still_supplied and c["customer_id"] not in later
                        and last_of[c["customer_id"]] == c["id"])
                seq = rules.sequence_type(one_off=m.one_off, used_before=c["customer_id"] in used, last=last)
                used.add(c["customer_id"])
                e2e = f"W{organisation.pk}-I{c['id']}"
                if c["schedule_id"]:
                    what = f"Eau {c['schedule__year']} echeance {c['number']} {c['customer__reference']}"
                else:
                    what = f"Eau facture {c['invoice__number']} {c['customer__reference']}"
                debits.append(sepa.Debit(m.reference, m.signed_on, m.iban, m.bic, c["customer__name"], c["amount"],
                                         seq, e2e, what))
                lines.append({"organisation_id": organisation.pk, "run_id": run.pk, "instalment_id": c["id"],
                              "mandate_id": m.pk, "amount": c["amount"], "sequence_type": seq, "end_to_end_id": e2e,
                              "rejected_at": None, "reject_reason": ""})
                if progress and i % 2000 == 0:
                    progress(i, len(chosen))
            ids = [c["id"] for c in chosen]
            # The unique constraint on DebitLine.instalment is the backstop: an instalment already in
            # a file makes this insert fail, and the whole run with it.
            bulk.insert_rows(DebitLine, lines)
            in_run = DebitLine.objects.filter(run=run)
            updated = Instalment.objects.filter(pk__in=in_run.values("instalment_id"), state=Instalment.State.PLANNED).update(
                state=Instalment.State.COLLECTED)
            if updated != len(ids):  # pragma: no cover - the row locks above make this unreachable
                raise WaterError("due_until", "some instalments changed while the file was prepared; try again")
            used_mandates = Mandate.objects.filter(pk__in=in_run.values("mandate_id"))
            used_mandates.filter(first_debit_on__isnull=True).update(first_debit_on=collection_date)
            used_mandates.update(last_debit_on=collection_date)
            msg_id, xml = sepa.build_pain008(creditor_name=creditor.name, creditor_id=creditor.creditor_id,
                                             creditor_iban=creditor.iban, creditor_bic=creditor.bic,
                                             collection_date=collection_date, debits=debits)
            try:
                sepa.validate_pain008(xml)
            except sepa.SepaError as e:
                raise WaterError("file", str(e)) from None
            total = sum(d.amount for d in debits)
            run.message_id, run.count, run.control_sum, run.xml = msg_id, len(debits), total, xml
            run.save(update_fields=["message_id", "count", "control_sum", "xml"])
            by_seq: dict[str, int] = defaultdict(int)
            for d in debits:
                by_seq[d.sequence_type] += 1
            _journal(actor, "water.debit_run", organisation, [run],
                     {"count": len(debits), "control_sum": total, "collection_date": collection_date.isoformat(),
                      "by_sequence": dict(by_seq), "anomalies": len(anomalies)}, ids, now)
    except IntegrityError:
        # The same key, run at the same moment by someone else: theirs is the run.
        existing = DebitRun.objects.filter(organisation=organisation, idempotency_key=key).first()
        if existing is None:
            raise
        return _debit_report(existing, created=False)
    if progress:
        progress(len(chosen), len(chosen))
    return DebitReport(run, True, run.count, run.control_sum, dict(by_seq), anomalies)


def _debit_report(run: DebitRun, *, created: bool) -> DebitReport:
    by_seq: dict[str, int] = defaultdict(int)
    for seq in run.lines.values_list("sequence_type", flat=True):
        by_seq[seq] += 1
    return DebitReport(run, created, run.count, run.control_sum, dict(by_seq), list(run.anomalies))


REJECT_REASON_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def debit_reject(*, organisation: Organisation, end_to_end_id: str, reason: str, actor: Actor,
                 now: dt.datetime) -> bool:
    """A returned debit (R-transaction): the instalment goes back to "returned by the bank",
    counted as not received at the regularisation. Recording the same return twice changes
    nothing (returns False)."""
    reason = reason.strip().upper()
    if len(reason) != 4 or not set(reason) <= REJECT_REASON_CHARS:
        raise WaterError("reason", "a SEPA reason code has 4 letters or digits (AC04, AM04, MD01, MS02...)")
    with transaction.atomic(durable=True):
        line = (DebitLine.objects.select_for_update()
                .filter(organisation=organisation, end_to_end_id=end_to_end_id.strip()).first())
        if line is None:
            raise WaterError("end_to_end_id", f"no debit {end_to_end_id!r} in this organisation's files")
        if line.rejected_at is not None:
            return False
        line.rejected_at, line.reject_reason = now, reason
        line.save(update_fields=["rejected_at", "reject_reason"])
        Instalment.objects.filter(pk=line.instalment_id, state=Instalment.State.COLLECTED).update(
            state=Instalment.State.REJECTED, note=reason)
        _journal(actor, "water.debit_reject", organisation, [line, f"water.instalment:{line.instalment_id}"],
                 {"reason": reason, "amount": line.amount}, None, now)
    return True


# --- Invoices: regularisation, periodic, final -------------------------------------------------------------


def _tariffs(organisation: Organisation) -> list[rules.Tariff]:
    return [rules.parse_tariff(t.valid_from, t.definition) for t in Tariff.objects.filter(organisation=organisation)]


def _numbers(organisation: Organisation, prefix: str, count: int) -> list[str]:
    """``count`` consecutive invoice numbers (``R2024-000001``...); call inside the transaction."""
    InvoiceCounter.objects.get_or_create(organisation=organisation, prefix=prefix)
    counter = InvoiceCounter.objects.select_for_update().get(organisation=organisation, prefix=prefix)
    first = counter.last + 1
    counter.last += count
    counter.save(update_fields=["last"])
    return [f"{prefix}-{n:06d}" for n in range(first, first + count)]


@dataclass
class _Billed:
    start_date: dt.date
    start_index: int
    end_date: dt.date
    end_index: int
    estimated: dict | None  # an estimated reading to save


def _billing_state(organisation: Organisation, contract_ids: list[int]) -> dict[int, tuple[dt.date, int]]:
    """Where each contract's billing stopped: the last invoice's end reading, else the move-in."""
    state: dict[int, tuple[dt.date, int]] = {}
    contracts = Contract.objects.filter(organisation=organisation)
    invoices = Invoice.objects.filter(organisation=organisation)
    if len(contract_ids) <= 500:  # a run over many contracts reads the organisation's, without a huge IN list
        contracts, invoices = contracts.filter(pk__in=contract_ids), invoices.filter(contract_id__in=contract_ids)
    wanted = set(contract_ids)
    for cid, d, i in contracts.values_list("pk", "start", "start_index"):
        if cid in wanted:
            state[cid] = (d, i)
    for cid, d, i in (invoices.order_by("contract_id", "end_reading_date")
                      .values_list("contract_id", "end_reading_date", "end_index")):
        if cid in state:
            state[cid] = (d, i)
    return state


def _end_reading(organisation, meter_id, history, start: tuple[dt.date, int], until: dt.date, now) -> _Billed | None:
    """The reading that closes the period: the last one after the start and by ``until``; when
    there is none in the last ``STALE_DAYS`` days (the meter was not read this round), an estimate
    on ``until`` from the actual readings (saved as an estimated reading)."""
    after = [(d, i) for d, i, _ in history if start[0] < d <= until]
    if after and max(after)[0] > until - dt.timedelta(days=STALE_DAYS):
        d, i = max(after)
        return _Billed(start[0], start[1], d, i, None)
    actual = [(d, i) for d, i, k in history if k == "actual" and d <= until]
    estimate = rules.estimate_index(actual, until)
    if estimate is None or until <= start[0]:
        if after:  # an old reading is better than nothing
            d, i = max(after)
            return _Billed(start[0], start[1], d, i, None)
        return None
    estimate = max(estimate, start[1]) if not actual or max(actual)[0] <= start[0] else estimate
    reading = {"organisation_id": organisation.pk, "meter_id": meter_id, "date": until, "index": estimate,
               "kind": Reading.Kind.ESTIMATED, "recorded_at": now}
    return _Billed(start[0], start[1], until, estimate, reading)


def _invoice(organisation, contract_id, number, kind, issued_on, sub_period, billed: _Billed, bill: rules.Bill,
             deducted: int, now, schedule_id=None) -> dict:
    """An invoice's values (a plain dict: the runs write thousands of them at once)."""
    return {"organisation_id": organisation.pk, "contract_id": contract_id, "schedule_id": schedule_id,
            "number": number, "kind": kind, "issued_on": issued_on,
            "period_start": min(sub_period[0], billed.start_date), "period_end": max(sub_period[1], billed.end_date),
            "start_index": billed.start_index, "end_index": billed.end_index, "end_reading_date": billed.end_date,
            "lines": [ln.as_dict() for ln in bill.lines], "vat": bill.vat, "total_excl_vat": bill.total_excl_vat,
            "total_vat": bill.total_vat, "total": bill.total, "deducted": deducted, "balance": bill.total - deducted,
            "credit_action": "", "created_at": now}


def _balance_instalment(organisation, invoice: dict, customer_id: int, issued_on: dt.date) -> dict:
    return {"organisation_id": organisation.pk, "schedule_id": None, "invoice_id": invoice["id"],
            "customer_id": customer_id, "number": 1, "due_date": issued_on + dt.timedelta(days=BALANCE_DUE_DAYS),
            "amount": invoice["balance"], "state": Instalment.State.PLANNED, "note": ""}


@dataclass
class RegularisationReport:
    run: RegularisationRun | None
    schedules: int = 0
    invoices: int = 0
    billed: int = 0
    collected: int = 0
    due: int = 0
    credit_carried: int = 0
    credit_refunded: int = 0
    next_schedules: int = 0
    next_instalments: int = 0
    next_total: int = 0
    estimated_readings: int = 0
    not_collected: int = 0
    rejected: int = 0
    anomalies: list[str] = field(default_factory=list)

    def as_summary(self) -> dict:
        keys = ("schedules", "invoices", "billed", "collected", "due", "credit_carried", "credit_refunded",
                "next_schedules", "next_instalments", "next_total", "estimated_readings", "not_collected", "rejected")
        return {**{k: getattr(self, k) for k in keys}, "anomalies": self.anomalies}


def regularisation_run(*, organisation: Organisation, year: int, readings_until: dt.date, issued_on: dt.date,
                       actor: Actor, now: dt.datetime, progress: Progress = None) -> RegularisationReport:
    """The annual regularisation of every running schedule of ``year``: for each monthly payer,
    the actual bill (subscription for the year, consumption since the last billed reading up to
    the last reading by ``readings_until``, estimated when missing) minus the instalments
    actually collected. A balance due gets an instalment of its own (debited if there is a
    mandate, or spread later with :func:`payment_plan_create`); a credit is carried over to the
    next schedule or refunded, as the customer chose. The next year's schedule follows from the
    bill. Set-based, all or nothing; a second run finds nothing left to regularise."""
    creditor = _creditor(organisation)
    tariffs = _tariffs(organisation)
    report = RegularisationReport(run=None)
    with transaction.atomic(durable=True):
        schedules = list(
            Schedule.objects.select_for_update(of=("self",))
            .filter(organisation=organisation, year=year, status=Schedule.Status.OPEN).order_by("pk")
            .values_list("pk", "contract_id", "contract__customer_id", "contract__meter_id", "contract__start",
                         "contract__end", "contract__meter__diameter", "contract__delivery_point__sanitation",
                         "contract__customer__reference", "contract__customer__credit_preference")
        )
        report.schedules = len(schedules)
        if not schedules:
            raise WaterError("year", f"no running schedule for {year}: nothing to regularise")
        billed_to = _billing_state(organisation, [row[1] for row in schedules])
        histories: dict[int, list[tuple[dt.date, int, str]]] = defaultdict(list)
        for mid, d, i, k in (Reading.objects.filter(organisation=organisation, date__lte=readings_until)
                             .values_list("meter_id", "date", "index", "kind")):
            histories[mid].append((d, i, k))
        collected: dict[int, int] = defaultdict(int)
        open_ids = {row[0] for row in schedules}
        # A schedule's instalments all fall due within its year: read them by date, without a join.
        for sid, state, amount in (Instalment.objects.filter(organisation=organisation, schedule_id__isnull=False,
                                                             due_date__gte=dt.date(year, 1, 1),
                                                             due_date__lt=dt.date(year + 1, 1, 1))
                                   .values_list("schedule_id", "state", "amount")):
            if sid not in open_ids:
                continue
            if state == Instalment.State.COLLECTED:
                collected[sid] += amount
            elif state == Instalment.State.NOT_COLLECTED:
                report.not_collected += amount
            elif state == Instalment.State.REJECTED:
                report.rejected += amount
        next_taken = set(Schedule.objects.filter(organisation=organisation, year=year + 1)
                         .values_list("contract_id", flat=True))
        sub_start, sub_end = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
        invoices: list[dict] = []
        estimated: list[dict] = []
        left_open: list[int] = []
        new_schedules: list[dict] = []
        parts: list[tuple[dict, list[tuple[int, dt.date, int]]]] = []
        balances: list[dict] = []
        for n, (sid, cid, customer_id, meter_id, start, end, diameter, sanitation, ref, preference) in enumerate(
                schedules, start=1):
            billed = _end_reading(organisation, meter_id, histories[meter_id], billed_to[cid], readings_until, now)
            if billed is None:
                report.anomalies.append(f"contract {cid} (customer {ref}): no reading and no history to estimate "
                                        f"one; left open")
                left_open.append(sid)
                continue
            period = (max(sub_start, start), min(sub_end, end) if end else sub_end)
            try:
                bill = rules.compute_bill(tariffs=tariffs, diameter=diameter, sanitation=sanitation,
                                          subscription_period=period,
                                          consumption_period=(billed.start_date, billed.end_date),
                                          consumption=billed.end_index - billed.start_index)
            except rules.RuleError as e:
                report.anomalies.append(f"contract {cid} (customer {ref}): {e}; left open")
                left_open.append(sid)
                continue
            if billed.estimated is not None:
                estimated.append(billed.estimated)
            inv = _invoice(organisation, cid, "", Invoice.Kind.REGULARISATION, issued_on, period, billed, bill,
                           collected[sid], now, schedule_id=sid)
            invoices.append(inv)
            report.billed += inv["total"]
            report.collected += inv["deducted"]
            credit = 0
            if inv["balance"] > 0:
                report.due += inv["balance"]
                balances.append((inv, customer_id))
            elif inv["balance"] < 0:
                if preference == Customer.Credit.CARRY_OVER and end is None and cid not in next_taken:
                    credit = min(-inv["balance"], max(inv["total"], 0))
                    inv["credit_action"] = Invoice.CreditAction.CARRY_OVER
                    report.credit_carried += credit
                    report.credit_refunded += -inv["balance"] - credit
                else:
                    inv["credit_action"] = Invoice.CreditAction.REFUND
                    report.credit_refunded += -inv["balance"]
            if end is None and cid not in next_taken:
                basis = rules.schedule_basis(inv["total"], max((period[1] - period[0]).days,
                                                               (billed.end_date - billed.start_date).days))
                sched = {"organisation_id": organisation.pk, "contract_id": cid, "year": year + 1, "basis": basis,
                         "credit_applied": credit, "status": Schedule.Status.OPEN, "created_at": now}
                new_schedules.append(sched)
                parts.append((sched, [(customer_id, *p) for p in _schedule_parts(year + 1, basis, credit, creditor)]))
            if progress and n % 1000 == 0:
                progress(n, len(schedules))
        for inv, pk, number in zip(invoices, bulk.reserve_ids(Invoice, len(invoices)),
                                   _numbers(organisation, f"R{year}", len(invoices)), strict=True):
            inv["id"], inv["number"] = pk, number
        for sched, pk in zip(new_schedules, bulk.reserve_ids(Schedule, len(new_schedules)), strict=True):
            sched["id"] = pk
        instalments = [_balance_instalment(organisation, inv, customer_id, issued_on) for inv, customer_id in balances]
        for sched, rows in parts:
            instalments.extend({"organisation_id": organisation.pk, "schedule_id": sched["id"], "invoice_id": None,
                                "customer_id": customer_id, "number": number, "due_date": due, "amount": amount,
                                "state": Instalment.State.PLANNED, "note": ""}
                               for customer_id, number, due, amount in rows)
        # The schedules regularised now: their planned instalments are replaced by the invoice.
        regularised = (Schedule.objects.filter(organisation=organisation, year=year, status=Schedule.Status.OPEN)
                       .exclude(pk__in=left_open))
        Instalment.objects.filter(schedule__in=regularised, state=Instalment.State.PLANNED).update(
            state=Instalment.State.CANCELLED, note="regularised")
        regularised.update(status=Schedule.Status.REGULARISED)
        bulk.insert_rows(Invoice, invoices)
        bulk.insert_rows(Reading, estimated)
        bulk.insert_rows(Schedule, new_schedules)
        bulk.insert_rows(Instalment, instalments)
        report.invoices = len(invoices)
        report.estimated_readings = len(estimated)
        report.next_schedules = len(new_schedules)
        report.next_instalments = len(instalments) - len(balances)
        report.next_total = sum(i["amount"] for i in instalments) - report.due
        run = RegularisationRun.objects.create(organisation=organisation, year=year, issued_on=issued_on,
                                               summary=report.as_summary(), created_at=now)
        report.run = run
        _journal(actor, "water.regularisation_run", organisation, [run],
                 {k: v for k, v in report.as_summary().items() if k != "anomalies"} | {"anomalies": len(report.anomalies)},
                 [(inv["number"], inv["total"], inv["deducted"]) for inv in invoices], now)
    if progress:
        progress(report.schedules, report.schedules)
    return report


def contract_close(*, contract: Contract, end: dt.date, end_index: int, issued_on: dt.date, actor: Actor,
                   now: dt.datetime) -> Invoice:
    """Move-out: the final reading closes the contract and a final invoice settles it (the
    subscription up to ``end`` since the last invoice, the consumption since the last billed
    reading, minus the instalments of the running schedule actually collected). Planned
    instalments of the schedule are cancelled; a balance due gets an instalment."""
    organisation = contract.organisation
    if contract.end is not None:
        raise WaterError("contract", "this contract is already closed")
    if end <= contract.start:
        raise WaterError("end", "the move-out date must be after the move-in date")
    start_date, start_index = _billing_state(organisation, [contract.pk])[contract.pk]
    if end <= start_date:
        raise WaterError("end", "the move-out date must be after the last billed reading")
    prev = (Reading.objects.filter(meter_id=contract.meter_id, kind=Reading.Kind.ACTUAL, date__lt=end)
            .order_by("-date").values_list("date", "index").first())
    problem = _check_reading(contract.meter_id, end, end_index, Reading.Kind.ACTUAL, prev)
    if problem:
        raise WaterError("end_index", problem)
    tariffs = _tariffs(organisation)
    last_invoice_end = (Invoice.objects.filter(contract=contract).order_by("-period_end")
                        .values_list("period_end", flat=True).first())
    sub_period = (max(last_invoice_end or contract.start, contract.start), end)
    billed = _Billed(start_date, start_index, end, end_index, None)
    try:
        bill = rules.compute_bill(tariffs=tariffs, diameter=contract.meter.diameter,
                                  sanitation=contract.delivery_point.sanitation,
                                  subscription_period=sub_period if sub_period[0] < sub_period[1] else None,
                                  consumption_period=(start_date, end), consumption=end_index - start_index)
    except rules.RuleError as e:
        raise WaterError("end", str(e)) from None
    with transaction.atomic(durable=True):
        schedule = (Schedule.objects.select_for_update()
                    .filter(contract=contract, status=Schedule.Status.OPEN).order_by("-year").first())
        deducted = 0
        if schedule is not None:
            deducted = (schedule.instalments.filter(state=Instalment.State.COLLECTED)
                        .aggregate(s=Sum("amount"))["s"] or 0)
            schedule.instalments.filter(state=Instalment.State.PLANNED).update(
                state=Instalment.State.CANCELLED, note="move-out")
            schedule.status = Schedule.Status.CLOSED
            schedule.save(update_fields=["status"])
        Reading.objects.update_or_create(meter_id=contract.meter_id, date=end, defaults={
            "organisation": organisation, "index": end_index, "kind": Reading.Kind.ACTUAL, "recorded_at": now})
        invoice = Invoice(**_invoice(organisation, contract.pk, _numbers(organisation, f"F{end.year}", 1)[0],
                                     Invoice.Kind.FINAL, issued_on, sub_period, billed, bill, deducted, now))
        if invoice.balance < 0:
            invoice.credit_action = Invoice.CreditAction.REFUND
        invoice.save()
        if invoice.balance > 0:
            Instalment.objects.create(organisation=organisation, invoice=invoice, customer_id=contract.customer_id,
                                      number=1, due_date=issued_on + dt.timedelta(days=BALANCE_DUE_DAYS),
                                      amount=invoice.balance)
        contract.end, contract.end_index = end, end_index
        contract.save(update_fields=["end", "end_index"])
        _journal(actor, "water.contract_close", organisation, [contract, invoice],
                 {"end": end.isoformat(), "end_index": end_index, "total": invoice.total, "deducted": deducted,
                  "balance": invoice.balance}, None, now)
    return invoice


def periodic_invoice_run(*, organisation: Organisation, period_start: dt.date, period_end: dt.date,
                         issued_on: dt.date, actor: Actor, now: dt.datetime, progress: Progress = None) -> RegularisationReport:
    """Invoices for the customers who are not monthly payers (e.g. twice a year): the
    subscription over ``[period_start, period_end)`` and the consumption since the last billed
    reading up to the last reading before ``period_end``. A contract already invoiced for a day
    of the period is skipped (a run never bills a period twice)."""
    if period_end <= period_start:
        raise WaterError("period_end", "the end of the period must be after its start")
    tariffs = _tariffs(organisation)
    report = RegularisationReport(run=None)
    with transaction.atomic(durable=True):
        contracts = list(
            Contract.objects.filter(organisation=organisation, customer__billing=Customer.Billing.PERIODIC,
                                    start__lt=period_end)
            .exclude(end__isnull=False, end__lte=period_start)
            .exclude(invoices__period_end__gt=period_start)
            .select_related("meter", "delivery_point", "customer").order_by("pk")
        )
        report.schedules = len(contracts)
        billed_to = _billing_state(organisation, [c.pk for c in contracts])
        histories: dict[int, list[tuple[dt.date, int, str]]] = defaultdict(list)
        for mid, d, i, k in (Reading.objects.filter(organisation=organisation, date__lt=period_end)
                             .values_list("meter_id", "date", "index", "kind")):
            histories[mid].append((d, i, k))
        made: list[dict] = []
        estimated: list[dict] = []
        for n, c in enumerate(contracts, start=1):
            until = period_end - dt.timedelta(days=1)
            billed = _end_reading(organisation, c.meter_id, histories[c.meter_id], billed_to[c.pk], until, now)
            sub = (max(period_start, c.start), min(period_end, c.end) if c.end else period_end)
            try:
                bill = rules.compute_bill(
                    tariffs=tariffs, diameter=c.meter.diameter, sanitation=c.delivery_point.sanitation,
                    subscription_period=sub,
                    consumption_period=(billed.start_date, billed.end_date) if billed else None,
                    consumption=(billed.end_index - billed.start_index) if billed else 0)
            except rules.RuleError as e:
                report.anomalies.append(f"contract {c.pk} (customer {c.customer.reference}): {e}")
                continue
            if billed is None:
                report.anomalies.append(f"contract {c.pk} (customer {c.customer.reference}): no reading; "
                                        f"subscription only")
                start = billed_to[c.pk]
                billed = _Billed(start[0], start[1], start[0], start[1], None)
            elif billed.estimated is not None:
                estimated.append(billed.estimated)
            inv = _invoice(organisation, c.pk, "", Invoice.Kind.PERIODIC, issued_on, sub, billed, bill, 0, now)
            made.append((inv, c.customer_id))
            if progress and n % 1000 == 0:
                progress(n, len(contracts))
        for (inv, _), pk, number in zip(made, bulk.reserve_ids(Invoice, len(made)),
                                        _numbers(organisation, f"P{period_start.year}", len(made)), strict=True):
            inv["id"], inv["number"] = pk, number
        bulk.insert_rows(Invoice, [inv for inv, _ in made])
        bulk.insert_rows(Reading, estimated)
        bulk.insert_rows(Instalment, [_balance_instalment(organisation, inv, customer_id, issued_on)
                                      for inv, customer_id in made if inv["balance"] > 0])
        made = [inv for inv, _ in made]
        report.invoices = len(made)
        report.billed = report.due = sum(i["total"] for i in made)
        report.estimated_readings = len(estimated)
        _journal(actor, "water.periodic_invoice_run", organisation, [],
                 {"period_start": period_start.isoformat(), "period_end": period_end.isoformat(),
                  "invoices": len(made), "billed": report.billed, "anomalies": len(report.anomalies)},
                 [(i["number"], i["total"]) for i in made], now)
    return report


def payment_plan_create(*, invoice: Invoice, count: int, first_due: dt.date, actor: Actor,
                        now: dt.datetime) -> list[Instalment]:
    """Spread an invoice's balance due over ``count`` monthly instalments (for a household that
    cannot pay a large regularisation at once). Only what is still planned is spread: the
    planned balance instalment is cancelled and replaced."""
    if invoice.balance <= 0:
        raise WaterError("invoice", _("This invoice has no balance due."))
    with transaction.atomic(durable=True):
        current = list(Instalment.objects.select_for_update().filter(invoice=invoice).order_by("number"))
        if any(i.state != Instalment.State.PLANNED for i in current if i.state != Instalment.State.CANCELLED):
            raise WaterError("invoice", _("Part of this balance was already presented or settled; a plan cannot replace it."))
        live = [i for i in current if i.state == Instalment.State.PLANNED]
        if len(live) > 1:
            raise WaterError("invoice", _("This balance is already spread."))
        try:
            amounts = rules.plan_amounts(invoice.balance, count)
        except rules.RuleError as e:
            raise WaterError("count", str(e)) from None
        Instalment.objects.filter(pk__in=[i.pk for i in live]).update(state=Instalment.State.CANCELLED,
                                                                       note="instalment plan")
        base = max((i.number for i in current), default=0)
        made = Instalment.objects.bulk_create([
            Instalment(organisation_id=invoice.organisation_id, invoice=invoice, customer_id=invoice.contract.customer_id,
                       number=base + k, due_date=rules.add_months(first_due, k - 1), amount=a, note="instalment plan")
            for k, a in enumerate(amounts, start=1)])
        _journal(actor, "water.payment_plan", invoice.organisation, [invoice],
                 {"count": count, "amount": invoice.balance, "first_due": first_due.isoformat()}, None, now)
    return made
