"""Billing services: quotients, crèche contracts, invoice runs (create, execute, cancel,
finalise), draft discards, credit notes, deposits, payments, refunds.

Every function is keyword-only, takes ``now`` (aware) and an ``Actor``, owns its transaction
(``transaction.atomic(durable=True)``) and journals what it did (ids, counts and amounts only,
never names). Refused actions raise ``BillingError`` and change nothing.

Concurrency
    Numbers (invoices, credit notes, receipts) come from a ``NumberSequence`` row locked with
    SELECT ... FOR UPDATE in the transaction that uses them: gapless and never twice. Every
    service that moves a household's credit (finalisation, deposits, payments, refunds, credit
    notes) first takes a per-organisation transaction lock (``pg_advisory_xact_lock`` on
    PostgreSQL; SQLite's single writer does the same), so an amount is never allocated twice.
    A run executes chunk by chunk, each chunk locking the run row and moving its cursor with a
    conditional UPDATE: two processes resuming the same run cannot bill the same chunk twice
    (and ``BilledItem``'s primary key would refuse it anyway).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from guichet.bookings.models import Activity, Booking, Child, Household
from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.common.crypto import blind_index
from guichet.journal.services import journal_append

from . import engine, rules
from .errors import BillingError
from .models import (
    Allocation,
    BilledCrecheMonth,
    BilledItem,
    CrecheContract,
    HouseholdQuotient,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    NumberSequence,
    Payment,
    ReleasedItem,
    RunAnomaly,
)
from .tariffs import load_book

log = logging.getLogger(__name__)

CREDIT_LOCK = 0x47550101  # pg_advisory_xact_lock(class, organisation): household credit moves
RUN_LOCK = 0x47550102  # pg_advisory_xact_lock(class, organisation): run creation
MAX_KEY_LENGTH = 100
DEFAULT_CHUNK = 1000
DEFAULT_DUE_DAYS = 30

# Public functions here that write nothing (checked by tests/journal/test_every_write_is_journaled.py).
JOURNAL_READ_ONLY = {
    "format_number": "formats an invoice, credit-note or receipt number (pure)",
    "invoice_total_mismatches": "reads invoices whose total is not the sum of their lines (a check)",
}

# Called after each chunk commits (tests use it to simulate a crash between chunks).
after_chunk_hook: Callable[[InvoiceRun, int], None] | None = None


# --- small helpers ---------------------------------------------------------------------------------


def _check_now(now) -> None:
    if not isinstance(now, dt.datetime) or now.tzinfo is None:
        raise ValueError("now must be an aware datetime")


def _check_key(key: str, field: str = "idempotency_key") -> str:
    key = str(key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BillingError("invalid_key", _("Give an idempotency key of 1 to 100 characters."), field)
    return key


def _lock(kind: int, organisation_id: int) -> None:
    """A per-organisation transaction lock (PostgreSQL; SQLite has one writer at a time)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [kind, int(organisation_id)])


def _credit_lock(organisation_id: int) -> None:
    _lock(CREDIT_LOCK, organisation_id)


def _take_numbers(*, organisation_id: int, series: str, year: int, count: int = 1, lock: bool = True) -> int:
    """Reserve ``count`` consecutive numbers of a series; returns the first. Must run inside the
    transaction that stores the numbered rows (a rollback gives the numbers back). ``lock=False``
    exists only for the control test that shows the race without the lock."""
    if not connection.in_atomic_block:
        raise RuntimeError("_take_numbers must run inside the caller's transaction")
    NumberSequence.objects.bulk_create(
        [NumberSequence(organisation_id=organisation_id, series=series, year=year)], ignore_conflicts=True)
    rows = NumberSequence.objects.filter(organisation_id=organisation_id, series=series, year=year)
    seq = (rows.select_for_update() if lock else rows).get()
    first = seq.last + 1
    NumberSequence.objects.filter(pk=seq.pk).update(last=seq.last + count)
    return first


def format_number(series: str, year: int, n: int) -> str:
    return f"{series}-{year}-{n:06d}"


def _organisation_of(*objs) -> int:
    ids = {o.organisation_id for o in objs}
    if len(ids) != 1:
        raise BillingError("other_organisation", _("These records belong to different organisations."))
    return ids.pop()


# --- household data ---------------------------------------------------------------------------------


def quotient_record(
    *, household: Household, valid_from: dt.date, quotient: int, resources_cents: int | None = None,
    dependent_children: int | None = None, source: str = "declared", actor: Actor, now: dt.datetime,
) -> HouseholdQuotient:
    """Record (or correct) a household's family quotient from ``valid_from``; optionally its
    monthly resources and number of dependent children (crèche PSU). Invoices already issued
    do not change; drafts take it into account only if the run is cancelled and run again."""
    _check_now(now)
    if isinstance(quotient, bool) or not isinstance(quotient, int) or not 0 <= quotient <= 100_000:
        raise BillingError("invalid_quotient", _("The family quotient is a whole number of euros from 0 to 100000."),
                           "quotient")
    if resources_cents is not None and (not isinstance(resources_cents, int) or resources_cents < 0):
        raise BillingError("invalid_resources", _("Monthly resources must be a positive amount."), "resources_cents")
    if dependent_children is not None and (not isinstance(dependent_children, int) or not 1 <= dependent_children <= 20):
        raise BillingError("invalid_children", _("The number of dependent children is from 1 to 20."),
                           "dependent_children")
    if not isinstance(valid_from, dt.date):
        raise BillingError("invalid_date", _("Give the date from which the quotient applies."), "valid_from")
    with transaction.atomic(durable=True):
        row, created = HouseholdQuotient.objects.update_or_create(
            household=household, valid_from=valid_from,
            defaults={"organisation_id": household.organisation_id, "quotient": quotient,
                      "resources_cents": resources_cents, "dependent_children": dependent_children,
                      "source": str(source)[:30], "recorded_at": now, "actor_ref": actor.ref},
        )
        journal_append(
            actor=actor, operation="billing.quotient.record", objects=[row, household],
            details={"created": created, "valid_from": valid_from.isoformat()},
            # keyed digest: an unkeyed hash of a quotient (0-100,000) would be reversed by trying them all
            payload={"values": blind_index("billing.quotient", f"{quotient}/{resources_cents}/{dependent_children}")},
            organisation_id=household.organisation_id, now=now,
        )
    return row


def creche_contract_create(
    *, household: Household, child: Child, activity: Activity, first_month: dt.date, monthly_hours,
    last_month: dt.date | None = None, actor: Actor, now: dt.datetime,
) -> CrecheContract:
    """A crèche contract: ``monthly_hours`` billed every month from ``first_month`` (to
    ``last_month``, included, when given) at the household's PSU hourly rate."""
    _check_now(now)
    if activity.kind != Activity.Kind.CRECHE:
        raise BillingError("not_creche", _("Contracts are for crèche activities only."), "activity")
    if child.household_id != household.pk:
        raise BillingError("not_household_child", _("This child is not in this household."), "child")
    _organisation_of(household, child, activity)
    try:
        hours = Decimal(str(monthly_hours))
    except ArithmeticError:
        hours = Decimal(0)
    if not Decimal(0) < hours <= Decimal(400) or hours != hours.quantize(Decimal("0.01")):
        raise BillingError("invalid_hours", _("Monthly hours: more than 0, at most 400, two decimals."),
                           "monthly_hours")
    first = rules.month_start(first_month)
    last = rules.month_start(last_month) if last_month else None
    if last and last < first:
        raise BillingError("months_reversed", _("The last month is before the first one."), "last_month")
    with transaction.atomic(durable=True):
        contract = CrecheContract.objects.create(
            organisation_id=household.organisation_id, household=household, child=child, activity=activity,
            first_month=first, last_month=last, monthly_hours=hours, created_at=now, actor_ref=actor.ref)
        journal_append(
            actor=actor, operation="billing.creche_contract.create", objects=[contract, household],
            details={"first_month": f"{first:%Y-%m}", "last_month": f"{last:%Y-%m}" if last else None,
                     "monthly_hours": str(hours)},
            organisation_id=household.organisation_id, now=now,
        )
    return contract


def creche_contract_end(*, contract: CrecheContract, last_month: dt.date, actor: Actor, now: dt.datetime) -> CrecheContract:
    """End a contract with ``last_month`` (included). Months already billed stay billed."""
    _check_now(now)
    last = rules.month_start(last_month)
    if last < contract.first_month:
        raise BillingError("months_reversed", _("The last month is before the first one."), "last_month")
    with transaction.atomic(durable=True):
        CrecheContract.objects.filter(pk=contract.pk).update(last_month=last)
        contract.last_month = last
        journal_append(actor=actor, operation="billing.creche_contract.end", objects=[contract],
                       details={"last_month": f"{last:%Y-%m}"}, organisation_id=contract.organisation_id, now=now)
    return contract


# --- invoice runs -----------------------------------------------------------------------------------


def invoice_run_create(
    *, organisation: Organisation, first_month: dt.date, last_month: dt.date, activities: Iterable[Activity],
    actor: Actor, now: dt.datetime, idempotency_key: str, grouping: str = InvoiceRun.Grouping.RUN,
) -> InvoiceRun:
    """Create a run over ``first_month``..``last_month`` (first days of months, included) for
    ``activities``. Refused when an open run (not finalised nor cancelled) of the organisation
    covers one of these activities and months: finalise or cancel it first. Same key: the same
    run is returned."""
    _check_now(now)
    key = _check_key(idempotency_key)
    activities = list(activities)
    first, last = rules.month_start(first_month), rules.month_start(last_month)
    if last < first:
        raise BillingError("months_reversed", _("The last month is before the first one."), "last_month")
    if len(rules.months(first, last)) > 36:
        raise BillingError("too_many_months", _("A run covers at most 36 months."), "last_month")
    if not activities:
        raise BillingError("no_activities", _("Choose at least one activity."), "activities")
    if any(a.organisation_id != organisation.pk for a in activities):
        raise BillingError("other_organisation", _("An activity belongs to another organisation."), "activities")
    if grouping not in InvoiceRun.Grouping.values:
        raise BillingError("invalid_grouping", _("Group invoices by run or by month."), "grouping")
    with transaction.atomic(durable=True):
        _lock(RUN_LOCK, organisation.pk)  # one run creation at a time per organisation
        existing = InvoiceRun.objects.filter(organisation=organisation, idempotency_key=key).first()
        if existing is not None:
            return existing
        ids = [a.pk for a in activities]
        clash = (InvoiceRun.objects.filter(organisation=organisation, activities__in=ids,
                                           first_month__lte=last, last_month__gte=first)
                 .exclude(status__in=[InvoiceRun.Status.FINAL, InvoiceRun.Status.CANCELLED]).first())
        if clash is not None:
            raise BillingError(
                "open_run_overlaps",
                _("Run %(run)s covers some of these months and activities and is not finalised: finalise or "
                  "cancel it first.") % {"run": clash.pk}, "first_month")
        run = InvoiceRun.objects.create(
            organisation=organisation, first_month=first, last_month=last, grouping=grouping, idempotency_key=key,
            created_at=now, actor_ref=actor.ref,
            households_total=Household.objects.filter(organisation=organisation).count())
        run.activities.set(activities)
        journal_append(
            actor=actor, operation="billing.run.create", objects=[run],
            details={"first_month": f"{first:%Y-%m}", "last_month": f"{last:%Y-%m}", "activities": sorted(ids),
                     "grouping": grouping},
            organisation_id=organisation.pk, now=now,
        )
    return run


def _merge_summary(summary: dict, result: engine.ChunkResult) -> dict:
    summary = dict(summary or {})
    by = dict(summary.get("by_activity_month", {}))
    for k, (amount, items) in result.by_activity_month.items():
        old = by.get(k, [0, 0])
        by[k] = [old[0] + amount, old[1] + items]
    summary["by_activity_month"] = by
    anomalies = dict(summary.get("anomalies", {}))
    for k, n in result.anomalies.items():
        anomalies[k] = anomalies.get(k, 0) + n
    summary["anomalies"] = anomalies
    summary["households_invoiced"] = summary.get("households_invoiced", 0) + len(
        {i for i in result.invoice_ids})
    return summary


# Where the time goes, summed over the chunks of the last executions (the benchmark prints it).
timings: dict[str, float] = {}


def _run_one_chunk(run_id: int, *, actor: Actor, now: dt.datetime, chunk_size: int, book) -> bool:
    """Bill the next chunk of the run in one transaction; False when there was none left."""
    with transaction.atomic(durable=True):
        run = InvoiceRun.objects.select_for_update().get(pk=run_id)
        if run.status != InvoiceRun.Status.RUNNING:
            return False
        activities = list(run.activities.all())
        ids = list(Household.objects.filter(organisation_id=run.organisation_id, pk__gt=run.cursor)
                   .order_by("pk").values_list("pk", flat=True)[:chunk_size])
        if not ids:
            engine.stage_drop(run.pk)
            InvoiceRun.objects.filter(pk=run.pk).update(status=InvoiceRun.Status.READY, finished_at=now)
            journal_append(
                actor=actor, operation="billing.run.ready", objects=[run],
                details={"invoices": run.invoices_count, "lines": run.lines_count, "items": run.items_count,
                         "amount_cents": run.amount_cents, "anomalies": run.anomalies_count},
                organisation_id=run.organisation_id, now=now)
            return False
        result = engine.run_chunk(run=run, book=book, activities=activities, household_ids=ids, lo=run.cursor,
                                  now=now)
        for step, seconds in result.timings.items():
            timings[step] = timings.get(step, 0.0) + seconds
        done = min(run.households_done + len(ids), max(run.households_total, run.households_done + len(ids)))
        moved = InvoiceRun.objects.filter(pk=run.pk, cursor=run.cursor).update(
            cursor=max(ids), households_done=done, households_total=max(run.households_total, done),
            invoices_count=run.invoices_count + result.invoices, lines_count=run.lines_count + result.lines,
            items_count=run.items_count + result.items, amount_cents=run.amount_cents + result.amount_cents,
            anomalies_count=run.anomalies_count + sum(result.anomalies.values()),
            summary=_merge_summary(run.summary, result))
        if moved != 1:  # pragma: no cover - the row lock makes this impossible; the backstop
            raise RuntimeError("run cursor moved under us")
        journal_append(
            actor=actor, operation="billing.run.chunk", objects=[run],
            details={"households": len(ids), "invoices": result.invoices, "lines": result.lines,
                     "items": result.items, "amount_cents": result.amount_cents},
            payload={"invoices": result.invoice_ids}, organisation_id=run.organisation_id, now=now)
    return True


def invoice_run_execute(
    *, run: InvoiceRun, actor: Actor, now: dt.datetime, chunk_size: int = DEFAULT_CHUNK,
    progress: Callable[[InvoiceRun], None] | None = None,
) -> InvoiceRun:
    """Bill the run: every household in chunks of ``chunk_size``, each chunk committed with the
    run's progress. Resumable: after a crash, call it again; it continues after the last chunk
    committed and never bills an item twice. ``progress`` is called after each chunk with the
    refreshed run. Returns the run, ``ready`` for review."""
    _check_now(now)
    if not 1 <= int(chunk_size) <= 100_000:
        raise BillingError("invalid_chunk", _("The chunk size is from 1 to 100000 households."), "chunk_size")
    with transaction.atomic(durable=True):
        locked = InvoiceRun.objects.select_for_update().get(pk=run.pk)
        if locked.status in (InvoiceRun.Status.FINAL, InvoiceRun.Status.CANCELLED):
            raise BillingError("run_closed", _("This run is finalised or cancelled."), "run")
        if locked.status == InvoiceRun.Status.CREATED:
            InvoiceRun.objects.filter(pk=run.pk).update(status=InvoiceRun.Status.RUNNING, started_at=now)
            journal_append(actor=actor, operation="billing.run.start", objects=[locked], details={},
                           organisation_id=locked.organisation_id, now=now)
    book = load_book(run.organisation_id)
    with transaction.atomic(durable=True):
        locked = InvoiceRun.objects.select_for_update().get(pk=run.pk)
        booking_activities = [a.pk for a in locked.activities.all() if a.kind != Activity.Kind.CRECHE]
        staged, present = (locked.summary or {}).get("staged"), engine.stage_rows(run.pk)
        if locked.status == InvoiceRun.Status.RUNNING and booking_activities and (present is None or present != staged):
            # no staging table yet, or one that lost its rows (UNLOGGED tables are emptied when
            # PostgreSQL recovers from a crash): classify again; what is billed already is skipped
            started = time.monotonic()
            rows = engine.stage_build(locked, book, booking_activities)
            InvoiceRun.objects.filter(pk=run.pk).update(summary={**(locked.summary or {}), "staged": rows})
            timings["stage"] = timings.get("stage", 0.0) + time.monotonic() - started
    while True:
        more = _run_one_chunk(run.pk, actor=actor, now=now, chunk_size=int(chunk_size), book=book)
        fresh = InvoiceRun.objects.get(pk=run.pk)
        if not more:
            return fresh
        if progress is not None:
            progress(fresh)
        if after_chunk_hook is not None:
            after_chunk_hook(fresh, fresh.cursor)


def invoice_run_cancel(*, run: InvoiceRun, actor: Actor, now: dt.datetime) -> InvoiceRun:
    """Cancel a run that is not finalised: its draft invoices are deleted and their items can be
    billed again (fix a tariff or a quotient, then run again)."""
    _check_now(now)
    with transaction.atomic(durable=True):
        run = InvoiceRun.objects.select_for_update().get(pk=run.pk)
        if run.status == InvoiceRun.Status.FINAL:
            raise BillingError("run_final", _("This run is finalised: correct its invoices with credit notes."), "run")
        if run.status == InvoiceRun.Status.CANCELLED:
            return run
        drafts = Invoice.objects.filter(run=run, status=Invoice.Status.DRAFT)
        counts = _delete_drafts(drafts)
        engine.stage_drop(run.pk)
        InvoiceRun.objects.filter(pk=run.pk).update(status=InvoiceRun.Status.CANCELLED, cancelled_at=now)
        run.refresh_from_db()
        journal_append(actor=actor, operation="billing.run.cancel", objects=[run], details=counts,
                       organisation_id=run.organisation_id, now=now)
    return run


def _ledger_of(invoice: Invoice):
    """The ledger rows of one invoice. The ledger has no index on the invoice (ADR 13): they are
    reached through the household's bookings (indexed) and the ledger's primary key."""
    return BilledItem.objects.filter(
        invoice_id=invoice.pk, booking_id__in=Booking.objects.filter(household_id=invoice.household_id).values("pk"))


def _delete_drafts(drafts, *, one: Invoice | None = None) -> dict:
    """Delete draft invoices with their lines and ledger rows: ``one`` invoice, or every draft of
    ``drafts`` (a run cancelled: one pass over the ledger)."""
    ids = list(drafts.values_list("pk", flat=True))
    ledger = _ledger_of(one) if one is not None else BilledItem.objects.filter(invoice_id__in=drafts.values("pk"))
    items = ledger.delete()[0]
    BilledCrecheMonth.objects.filter(invoice_id__in=ids).delete()
    lines = InvoiceLine.objects.filter(invoice_id__in=ids).delete()[0]
    Invoice.objects.filter(pk__in=ids).delete()
    return {"invoices": len(ids), "lines": lines, "items": items}


def invoice_draft_discard(*, invoice: Invoice, actor: Actor, now: dt.datetime, reason: str) -> None:
    """Take one household's draft out of its run before finalisation (its items can be billed
    by a later run). ``reason`` is required and journaled (no personal data)."""
    _check_now(now)
    reason = str(reason or "").strip()
    if not reason:
        raise BillingError("reason_required", _("Give the reason."), "reason")
    with transaction.atomic(durable=True):
        inv = Invoice.objects.select_for_update().filter(pk=invoice.pk).first()
        if inv is None or inv.status != Invoice.Status.DRAFT:
            raise BillingError("not_draft", _("Only a draft invoice can be discarded."), "invoice")
        run = InvoiceRun.objects.select_for_update().get(pk=inv.run_id)
        counts = _delete_drafts(Invoice.objects.filter(pk=inv.pk), one=inv)
        InvoiceRun.objects.filter(pk=run.pk).update(
            invoices_count=max(run.invoices_count - 1, 0), lines_count=max(run.lines_count - counts["lines"], 0),
            items_count=max(run.items_count - counts["items"], 0), amount_cents=run.amount_cents - inv.total_cents)
        journal_append(actor=actor, operation="billing.invoice.discard", objects=[run, f"billing.invoice:{inv.pk}"],
                       details=counts, payload={"reason": reason}, organisation_id=inv.organisation_id, now=now)


def invoice_total_mismatches(invoice_ids: Iterable[int] | None = None, *, run: InvoiceRun | None = None) -> list[int]:
    """Invoices whose stored total is not the sum of their lines (always empty unless something
    wrote around the services)."""
    qs = Invoice.objects.all()
    if run is not None:
        qs = qs.filter(run=run)
    if invoice_ids is not None:
        qs = qs.filter(pk__in=list(invoice_ids))
    sums = dict(InvoiceLine.objects.filter(invoice__in=qs).values("invoice_id").annotate(s=Sum("amount_cents"))
                .values_list("invoice_id", "s"))
    return [pk for pk, total in qs.values_list("pk", "total_cents") if (sums.get(pk) or 0) != total]


def invoice_run_finalise(
    *, run: InvoiceRun, actor: Actor, now: dt.datetime, issue_date: dt.date | None = None,
    due_days: int = DEFAULT_DUE_DAYS,
) -> InvoiceRun:
    """Issue the run's drafts: gapless numbers (per organisation and year of issue), final and
    immutable, then each household's available credit (deposits, unallocated payments, credit
    notes) is applied to its unpaid invoices, oldest credit first, oldest invoice first. One
    transaction: all or nothing. Finalising again returns the run unchanged."""
    _check_now(now)
    if not isinstance(due_days, int) or isinstance(due_days, bool) or not 0 <= due_days <= 365:
        raise BillingError("invalid_due_days", _("Payment is due within 0 to 365 days."), "due_days")
    today = now.astimezone(engine.PARIS).date()
    issue = issue_date or today
    with transaction.atomic(durable=True):
        run = InvoiceRun.objects.select_for_update().get(pk=run.pk)
        if run.status == InvoiceRun.Status.FINAL:
            return run
        _check_issue_date(issue, first_month=run.first_month, today=today)
        if run.status != InvoiceRun.Status.READY:
            raise BillingError("run_not_ready", _("This run has not finished billing: run it to the end first."), "run")
        _credit_lock(run.organisation_id)
        mismatched = invoice_total_mismatches(run=run)
        if mismatched:
            raise BillingError("total_mismatch", _("%(n)s invoices do not add up: nothing was issued.")
                               % {"n": len(mismatched)}, "run")
        count = Invoice.objects.filter(run=run, status=Invoice.Status.DRAFT).count()
        first = _take_numbers(organisation_id=run.organisation_id, series=NumberSequence.Series.INVOICE,
                             year=issue.year, count=count) if count else 0
        due = issue + dt.timedelta(days=due_days)
        _number_drafts(run, first=first, year=issue.year, now=now, issue=issue, due=due)
        households = set(Invoice.objects.filter(run=run).values_list("household_id", flat=True))
        applied = _apply_credit(run.organisation_id, households, now=now, run=run)
        summary = dict(run.summary or {})
        summary["deposits_applied_cents"] = applied
        summary["numbers"] = ([format_number(NumberSequence.Series.INVOICE, issue.year, first),
                               format_number(NumberSequence.Series.INVOICE, issue.year, first + count - 1)]
                              if count else [])
        InvoiceRun.objects.filter(pk=run.pk).update(status=InvoiceRun.Status.FINAL, finalised_at=now,
                                                    issue_date=issue, due_date=due, summary=summary)
        run.refresh_from_db()
        journal_append(
            actor=actor, operation="billing.run.finalise", objects=[run],
            details={"invoices": count, "first_number": summary["numbers"][0] if count else None,
                     "last_number": summary["numbers"][-1] if count else None, "credit_applied_cents": applied},
            organisation_id=run.organisation_id, now=now)
    return run


MAX_ISSUE_DAYS_AHEAD = 90


def _check_issue_date(issue: dt.date, *, first_month: dt.date, today: dt.date) -> None:
    """An invoice is issued once its first month has begun to be served: not before the first
    day of the month after the run's first month (a typo such as 1900-01-01 would otherwise
    number invoices in 1900 and send credit to them first), nor more than 90 days ahead."""
    earliest = (first_month.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    latest = today + dt.timedelta(days=MAX_ISSUE_DAYS_AHEAD)
    if not earliest <= issue <= latest:
        raise BillingError(
            "invalid_issue_date",
            _("The issue date %(date)s is not accepted: it must be between %(earliest)s (the month after the "
              "run's first month) and %(latest)s (90 days from today).")
            % {"date": issue.strftime("%d/%m/%Y"), "earliest": earliest.strftime("%d/%m/%Y"),
               "latest": latest.strftime("%d/%m/%Y")}, "issue_date")


def _number_drafts(run: InvoiceRun, *, first: int, year: int, now, issue, due) -> None:
    """Number the run's drafts first, first + 1... in household order and make them final, in
    one statement (tens of thousands of invoices in a catch-up)."""
    prefix = f"{NumberSequence.Series.INVOICE}-{year}-"
    if connection.vendor == "postgresql":
        number = "%s || lpad((%s + o.rn - 1)::text, 6, '0')"
    else:
        number = "%s || printf('%%06d', %s + o.rn - 1)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE billing_invoice SET number = {number}, status = 'final', finalised_at = %s,
                       issue_date = %s, due_date = %s
                FROM (SELECT id, row_number() OVER (ORDER BY household_id, first_month, id) AS rn
                      FROM billing_invoice WHERE run_id = %s AND status = 'draft') o
                WHERE billing_invoice.id = o.id""",  # noqa: S608 - constant SQL, values are parameters
            [prefix, first, now, issue, due, run.pk])


# --- credit -------------------------------------------------------------------------------------------


def _sources(organisation_id: int, household_ids: Iterable[int]) -> dict[int, list[list]]:
    """Per household: [[kind, source, available cents, date]] oldest first. Sources are money
    received (deposits, payments) and credit notes; available = amount - allocations."""
    household_ids = list(household_ids)
    out: dict[int, list[list]] = defaultdict(list)
    if not household_ids:
        return out
    used_p = dict(Allocation.objects.filter(payment__household_id__in=household_ids)
                  .values("payment_id").annotate(s=Sum("amount_cents")).values_list("payment_id", "s"))
    used_c = dict(Allocation.objects.filter(credit_note__household_id__in=household_ids)
                  .values("credit_note_id").annotate(s=Sum("amount_cents")).values_list("credit_note_id", "s"))
    for p in Payment.objects.filter(household_id__in=household_ids, kind__in=["deposit", "payment"]).order_by(
            "received_at", "pk"):
        left = p.amount_cents - (used_p.get(p.pk) or 0)
        if left > 0:
            out[p.household_id].append(["payment", p, left, p.received_at])
    for c in Invoice.objects.filter(household_id__in=household_ids, kind=Invoice.Kind.CREDIT_NOTE,
                                    status=Invoice.Status.FINAL).order_by("finalised_at", "pk"):
        left = c.total_cents - (used_c.get(c.pk) or 0)
        if left > 0:
            out[c.household_id].append(["credit", c, left, c.finalised_at])
    for rows in out.values():
        rows.sort(key=lambda r: (r[3], r[0], r[1].pk))
    return out


def _dues(household_ids: Iterable[int]) -> dict[int, list[tuple[Invoice, int]]]:
    """Per household: final invoices still owing, oldest first, with what they still owe."""
    household_ids = list(household_ids)
    out: dict[int, list] = defaultdict(list)
    invoices = list(Invoice.objects.filter(household_id__in=household_ids, kind=Invoice.Kind.INVOICE,
                                           status=Invoice.Status.FINAL).order_by("issue_date", "number", "pk"))
    paid = dict(Allocation.objects.filter(invoice__in=invoices).values("invoice_id").annotate(s=Sum("amount_cents"))
                .values_list("invoice_id", "s"))
    for inv in invoices:
        left = inv.total_cents - (paid.get(inv.pk) or 0)
        if left > 0:
            out[inv.household_id].append((inv, left))
    return out


def _apply_credit(organisation_id: int, household_ids: Iterable[int], *, now: dt.datetime, run=None) -> int:
    """Apply available credit to unpaid final invoices, oldest first. Caller holds the credit
    lock. Returns the cents applied."""
    household_ids = list(household_ids)
    sources = _sources(organisation_id, household_ids)
    if not sources:
        return 0
    dues = _dues(list(sources))
    allocations = []
    for household_id, credits in sources.items():
        pairs = rules.allocate_oldest_first([((r[0], r[1]), r[2]) for r in credits], dues.get(household_id, []))
        for (kind, source), invoice, amount in pairs:
            allocations.append(Allocation(
                organisation_id=organisation_id, household_id=household_id, invoice=invoice, amount_cents=amount,
                created_at=now, run=run, payment=source if kind == "payment" else None,
                credit_note=source if kind == "credit" else None))
    _merge_allocations(allocations)
    return sum(a.amount_cents for a in allocations)


def _merge_allocations(allocations: list[Allocation]) -> None:
    """Store allocations; a (source, target) pair that already exists grows (one row per pair)."""
    for a in allocations:
        existing = Allocation.objects.filter(
            payment=a.payment, credit_note=a.credit_note, invoice=a.invoice, refund=a.refund).first()
        if existing is not None:
            Allocation.objects.filter(pk=existing.pk).update(amount_cents=existing.amount_cents + a.amount_cents)
        else:
            a.save()


def credit_apply(*, household: Household, actor: Actor, now: dt.datetime) -> int:
    """Apply the household's available credit to its unpaid invoices now (oldest first)."""
    _check_now(now)
    with transaction.atomic(durable=True):
        _credit_lock(household.organisation_id)
        applied = _apply_credit(household.organisation_id, [household.pk], now=now)
        if applied:
            journal_append(actor=actor, operation="billing.credit.apply", objects=[household],
                           details={"amount_cents": applied}, organisation_id=household.organisation_id, now=now)
    return applied


# --- money in and out ------------------------------------------------------------------------------


def _money_in(
    *, kind: str, household: Household, amount_cents: int, method: str, actor: Actor, now: dt.datetime,
    idempotency_key: str, reference: str, invoice: Invoice | None,
) -> Payment:
    _check_now(now)
    key = _check_key(idempotency_key)
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or not 0 < amount_cents <= 100_000_00:
        raise BillingError("invalid_amount", _("The amount must be more than 0 and at most 100,000 euros."),
                           "amount_cents")
    if method not in Payment.Method.values:
        raise BillingError("invalid_method", _("Choose how the money was paid."), "method")
    reference = str(reference or "").strip()[:60]
    with transaction.atomic(durable=True):
        _credit_lock(household.organisation_id)
        existing = Payment.objects.filter(organisation_id=household.organisation_id, idempotency_key=key).first()
        if existing is not None:
            if (existing.household_id, existing.kind, existing.amount_cents, existing.invoice_id) != (
                    household.pk, kind, amount_cents, invoice.pk if invoice else None):
                raise BillingError("key_reused", _("This idempotency key was already used for another operation."),
                                   "idempotency_key")
            return existing
        year = now.astimezone(engine.PARIS).year
        n = _take_numbers(organisation_id=household.organisation_id, series=NumberSequence.Series.RECEIPT, year=year)
        payment = Payment.objects.create(
            organisation_id=household.organisation_id, household=household, kind=kind, method=method,
            amount_cents=amount_cents, receipt_number=format_number(NumberSequence.Series.RECEIPT, year, n),
            received_at=now, invoice=invoice, reference=reference, idempotency_key=key, channel=actor.channel,
            actor_ref=actor.ref)
        applied = 0
        if invoice is not None:
            owed = dict((i.pk, left) for i, left in _dues([household.pk]).get(household.pk, []))
            take = min(owed.get(invoice.pk, 0), amount_cents)
            if take:
                Allocation.objects.create(organisation_id=household.organisation_id, household=household,
                                          payment=payment, invoice=invoice, amount_cents=take, created_at=now)
                applied += take
        applied += _apply_credit(household.organisation_id, [household.pk], now=now)
        journal_append(
            actor=actor, operation=f"billing.{kind}.record", objects=[payment, household],
            details={"amount_cents": amount_cents, "method": method, "receipt": payment.receipt_number,
                     "applied_cents": applied},
            payload={"reference": reference}, organisation_id=household.organisation_id, now=now)
    return payment


def deposit_record(
    *, household: Household, amount_cents: int, method: str, actor: Actor, now: dt.datetime, idempotency_key: str,
    reference: str = "",
) -> Payment:
    """A deposit at the counter (cash, cheque, card), with a receipt number, before any invoice.
    It is the household's credit: applied to unpaid invoices at once if there are some, else at
    the next finalisation, oldest first. Same idempotency key: recorded once, same receipt."""
    return _money_in(kind=Payment.Kind.DEPOSIT, household=household, amount_cents=amount_cents, method=method,
                     actor=actor, now=now, idempotency_key=idempotency_key, reference=reference, invoice=None)


def payment_record(
    *, invoice: Invoice, amount_cents: int, method: str, actor: Actor, now: dt.datetime, idempotency_key: str,
    reference: str = "",
) -> Payment:
    """A payment of an issued invoice. What exceeds the amount due stays as credit (applied to
    the household's other unpaid invoices, oldest first)."""
    if invoice.kind != Invoice.Kind.INVOICE or invoice.status != Invoice.Status.FINAL:
        raise BillingError("not_issued", _("Only an issued invoice can be paid."), "invoice")
    household = Household.objects.get(pk=invoice.household_id)
    return _money_in(kind=Payment.Kind.PAYMENT, household=household, amount_cents=amount_cents, method=method,
                     actor=actor, now=now, idempotency_key=idempotency_key, reference=reference, invoice=invoice)


def refund_record(
    *, household: Household, amount_cents: int, method: str, actor: Actor, now: dt.datetime, idempotency_key: str,
    reason: str,
) -> Payment:
    """Give back part of a household's available credit (at most what is available), oldest
    credit first. ``reason`` is required (journaled as a hash: it may name people)."""
    _check_now(now)
    key = _check_key(idempotency_key)
    reason = str(reason or "").strip()
    if not reason:
        raise BillingError("reason_required", _("Give the reason."), "reason")
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise BillingError("invalid_amount", _("The amount must be more than 0."), "amount_cents")
    if method not in Payment.Method.values:
        raise BillingError("invalid_method", _("Choose how the money is paid back."), "method")
    with transaction.atomic(durable=True):
        _credit_lock(household.organisation_id)
        existing = Payment.objects.filter(organisation_id=household.organisation_id, idempotency_key=key).first()
        if existing is not None:
            if (existing.household_id, existing.kind, existing.amount_cents) != (household.pk, "refund", amount_cents):
                raise BillingError("key_reused", _("This idempotency key was already used for another operation."),
                                   "idempotency_key")
            return existing
        credits = _sources(household.organisation_id, [household.pk]).get(household.pk, [])
        available = sum(r[2] for r in credits)
        if amount_cents > available:
            raise BillingError("more_than_credit", _("Only %(amount)s can be refunded.")
                               % {"amount": _format(available)}, "amount_cents")
        year = now.astimezone(engine.PARIS).year
        n = _take_numbers(organisation_id=household.organisation_id, series=NumberSequence.Series.RECEIPT, year=year)
        refund = Payment.objects.create(
            organisation_id=household.organisation_id, household=household, kind=Payment.Kind.REFUND, method=method,
            amount_cents=amount_cents, receipt_number=format_number(NumberSequence.Series.RECEIPT, year, n),
            received_at=now, idempotency_key=key, channel=actor.channel, actor_ref=actor.ref)
        pairs = rules.allocate_oldest_first([((r[0], r[1]), r[2]) for r in credits], [(refund, amount_cents)])
        _merge_allocations([
            Allocation(organisation_id=household.organisation_id, household=household, refund=refund,
                       amount_cents=amount, created_at=now, payment=src if kind == "payment" else None,
                       credit_note=src if kind == "credit" else None)
            for (kind, src), _target, amount in pairs])
        journal_append(actor=actor, operation="billing.refund.record", objects=[refund, household],
                       details={"amount_cents": amount_cents, "method": method, "receipt": refund.receipt_number},
                       payload={"reason": reason}, organisation_id=household.organisation_id, now=now)
    return refund


def _format(cents: int) -> str:
    from guichet.common.money import format_euros

    return format_euros(cents)


# --- credit notes ----------------------------------------------------------------------------------


def credit_note_create(
    *, invoice: Invoice, actor: Actor, now: dt.datetime, reason: str, idempotency_key: str,
    amounts: Mapping[int, int] | None = None, rebill: bool = False,
) -> Invoice:
    """Correct an issued invoice with a credit note (numbered in its own gapless series).

    ``amounts`` maps line ids of the invoice to the cents to credit (at most what each line has
    not been credited yet); ``None`` credits everything left. ``rebill=True`` (only with a full
    credit) gives the invoice's items back so that the next run bills them again, e.g. after a
    quotient correction. The credit goes first to what the invoice still owes; the rest is the
    household's credit (applied to other unpaid invoices, oldest first)."""
    _check_now(now)
    key = _check_key(idempotency_key)
    reason = str(reason or "").strip()
    if not reason:
        raise BillingError("reason_required", _("Give the reason of the correction."), "reason")
    with transaction.atomic(durable=True):
        _credit_lock(invoice.organisation_id)
        existing = Invoice.objects.filter(organisation_id=invoice.organisation_id, idempotency_key=key).first()
        if existing is not None:
            if existing.corrects_id != invoice.pk:
                raise BillingError("key_reused", _("This idempotency key was already used for another operation."),
                                   "idempotency_key")
            return existing
        inv = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if inv.kind != Invoice.Kind.INVOICE or inv.status != Invoice.Status.FINAL:
            raise BillingError("not_issued", _("Only an issued invoice can be corrected by a credit note."), "invoice")
        lines = {line.pk: line for line in InvoiceLine.objects.filter(invoice=inv)}
        credited = dict(InvoiceLine.objects.filter(corrects_line__invoice=inv, invoice__status=Invoice.Status.FINAL)
                        .values("corrects_line_id").annotate(s=Sum("amount_cents"))
                        .values_list("corrects_line_id", "s"))
        left = {pk: line.amount_cents - (credited.get(pk) or 0) for pk, line in lines.items()}
        if amounts is None:
            wanted = {pk: n for pk, n in left.items() if n > 0}
        else:
            wanted = {}
            for pk, n in dict(amounts).items():
                if pk not in lines:
                    raise BillingError("not_a_line", _("Line %(line)s is not on this invoice.") % {"line": pk},
                                       "amounts")
                if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= left[pk]:
                    raise BillingError("invalid_amount", _("Line %(line)s: credit from 0.01 to %(max)s.")
                                       % {"line": pk, "max": _format(left[pk])}, "amounts")
                wanted[pk] = n
        if not wanted:
            raise BillingError("nothing_to_credit", _("This invoice has already been fully credited."), "invoice")
        full = amounts is None and all(left[pk] == lines[pk].amount_cents for pk in lines)
        if rebill and not full:
            raise BillingError("rebill_needs_full", _("Items can be billed again only with a full credit note on an "
                                                      "invoice not credited before."), "rebill")
        note = Invoice.objects.create(
            organisation_id=inv.organisation_id, household_id=inv.household_id, kind=Invoice.Kind.CREDIT_NOTE,
            first_month=inv.first_month, last_month=inv.last_month, total_cents=sum(wanted.values()),
            created_at=now, corrects=inv, reason=reason[:300], rebill=rebill, idempotency_key=key)
        InvoiceLine.objects.bulk_create([
            InvoiceLine(
                organisation_id=inv.organisation_id, invoice=note, month=lines[pk].month, kind=lines[pk].kind,
                activity_id=lines[pk].activity_id, unit_id=lines[pk].unit_id, child_id=lines[pk].child_id,
                tariff_date=lines[pk].tariff_date, bracket=lines[pk].bracket, sibling_rank=lines[pk].sibling_rank,
                quantity=lines[pk].quantity if n == lines[pk].amount_cents else Decimal(1),
                unit_price_cents=lines[pk].unit_price_cents if n == lines[pk].amount_cents else n,
                amount_cents=n, corrects_line=lines[pk], label=reason[:200])
            for pk, n in sorted(wanted.items())])
        issue = now.astimezone(engine.PARIS).date()
        n = _take_numbers(organisation_id=inv.organisation_id, series=NumberSequence.Series.CREDIT_NOTE, year=issue.year)
        Invoice.objects.filter(pk=note.pk).update(
            status=Invoice.Status.FINAL, number=format_number(NumberSequence.Series.CREDIT_NOTE, issue.year, n),
            finalised_at=now, issue_date=issue, due_date=issue)
        note.refresh_from_db()
        released = 0
        if rebill:
            ledger = _ledger_of(inv)
            items = list(ledger.values_list("booking_id", "line_id"))
            ReleasedItem.objects.bulk_create([
                ReleasedItem(organisation_id=inv.organisation_id, booking_id=b, line_id=line, credit_note=note)
                for b, line in items], batch_size=2000)
            ledger.delete()
            released = len(items) + BilledCrecheMonth.objects.filter(invoice=inv, released_by__isnull=True).update(
                released_by=note)
        # the credit settles what the corrected invoice still owes first, then other debts
        owed = dict((i.pk, left_) for i, left_ in _dues([inv.household_id]).get(inv.household_id, []))
        first_take = min(owed.get(inv.pk, 0), note.total_cents)
        if first_take:
            Allocation.objects.create(organisation_id=inv.organisation_id, household_id=inv.household_id,
                                      credit_note=note, invoice=inv, amount_cents=first_take, created_at=now)
        _apply_credit(inv.organisation_id, [inv.household_id], now=now)
        journal_append(
            actor=actor, operation="billing.credit_note.create", objects=[note, inv],
            details={"number": note.number, "amount_cents": note.total_cents, "lines": len(wanted),
                     "rebill": rebill, "released_items": released},
            payload={"reason": reason}, organisation_id=inv.organisation_id, now=now)
    return note


__all__ = [
    "BillingError", "credit_apply", "credit_note_create", "creche_contract_create", "creche_contract_end",
    "deposit_record", "invoice_draft_discard", "invoice_run_cancel", "invoice_run_create", "invoice_run_execute",
    "invoice_run_finalise", "invoice_total_mismatches", "payment_record", "quotient_record", "refund_record",
    "IntegrityError", "RunAnomaly",
]
