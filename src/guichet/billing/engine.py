"""The invoice run, one chunk of households at a time, set-based.

For a chunk (households with ``cursor < id <= last``), inside the caller's transaction:

1. one ``CREATE TEMP TABLE ... AS SELECT`` classifies every not-yet-billed booking of the chunk
   in the run's months and activities (booked / cancelled late / absent; closed sessions,
   cancellations in time and justified items drop out) and tags it with its month and its
   *segment* (the date of the tariff in force, so a tariff change mid-range splits lines);
2. the few items with a justification are checked exactly in Python (received in time?); items
   whose justification window is still open are left for a later run and reported;
3. one ``GROUP BY`` gives the groups (household, child, activity, unit, month, segment, kind):
   they are priced in Python (``tariffs.price_group``) and become invoices and lines
   (``bulk_create``): one line per child, activity, unit, month and unit price, with a quantity;
4. one ``INSERT INTO billing_billeditem ... SELECT`` links every booking to its line; the
   booking is the table's primary key, so a booking can never be billed twice;
5. crèche contracts: one line per contract month (UNIQUE(contract, month)).

Nothing here commits: ``services.invoice_run_execute`` wraps each chunk in its own transaction
with the run's progress, so a crash loses at most the chunk in flight and a resume starts after
the last chunk committed.
"""

# ruff: noqa: S608 - SQL is assembled from constants, table names built from integer ids and
# placeholder lists; every value is a query parameter.
from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils.dateparse import parse_date, parse_datetime

from guichet.bookings.models import Activity, Child, Household, Unit

from . import rules
from .models import (
    BilledCrecheMonth,
    CrecheContract,
    HouseholdQuotient,
    Invoice,
    InvoiceRun,
    RunAnomaly,
)
from .tariffs import NO_QUOTIENT, TariffBook, max_rank, price_grid, price_group, psu_for

PARIS = ZoneInfo("Europe/Paris")

ITEMS = "billing_tmp_items"
MAP = "billing_tmp_map"


@dataclass
class ChunkResult:
    households: int = 0
    invoices: int = 0
    lines: int = 0
    items: int = 0
    amount_cents: int = 0
    by_activity_month: dict = field(default_factory=dict)  # "activity_id|YYYY-MM" -> [amount, items]
    anomalies: dict = field(default_factory=dict)  # kind -> count
    invoice_ids: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # step -> seconds (where the time goes; bench prints it)

    def lap(self, step: str, started: float) -> float:
        now = time.monotonic()
        self.timings[step] = self.timings.get(step, 0.0) + now - started
        return now


def _as_date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return parse_date(str(value)[:10])


def _as_datetime(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)
    parsed = parse_datetime(str(value))
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _month_sql() -> str:
    if connection.vendor == "postgresql":
        return "date_trunc('month', s.date)::date"
    return "strftime('%%Y-%%m-01', s.date)"


def _segment_sql(book: TariffBook, activity_ids: list[int]) -> tuple[str, list]:
    """CASE giving, for a session, the latest pricing boundary on or before its date."""
    whens, params = [], []
    for activity_id in activity_ids:
        for boundary in reversed(book.boundaries(activity_id)):
            whens.append("WHEN s.activity_id = %s AND s.date >= %s THEN %s")
            params += [activity_id, boundary, boundary]
    if not whens:
        return "NULL", []
    cast = "::date" if connection.vendor == "postgresql" else ""
    return f"(CASE {' '.join(whens)} ELSE NULL END){cast}", params


def _drop_temp(cursor) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {ITEMS}")
    cursor.execute(f"DROP TABLE IF EXISTS {MAP}")


# Memory PostgreSQL may use per sort or hash in a run's statements (SET LOCAL, the run's own
# transactions only): the default 4 MB sends the grouping, the joins and the ledger's sort of a
# chunk to temporary files. Bounded per operation, like the server's own setting.
WORK_MEM = "128MB"


def tune(cursor) -> None:
    """Give this transaction's sorts and hashes ``WORK_MEM`` (PostgreSQL; no-op elsewhere)."""
    if connection.vendor == "postgresql":
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")


def stage_name(run_id: int) -> str:
    return f"billing_stage_{int(run_id)}"


def stage_exists(run_id: int) -> bool:
    return stage_name(run_id) in connection.introspection.table_names()


def stage_rows(run_id: int) -> int | None:
    """Rows in the run's staging table, None when there is none."""
    if not stage_exists(run_id):
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {stage_name(run_id)}")
        return cursor.fetchone()[0]


def stage_drop(run_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {stage_name(run_id)}")


def stage_build(run: InvoiceRun, book: TariffBook, activity_ids: list[int]) -> int:
    """Classify, in ONE pass over the bookings, every not-yet-billed booking of the run's months
    and activities into the run's staging table (UNLOGGED on PostgreSQL: a scratch copy, rebuilt
    if lost), ordered and indexed by household so each chunk reads a contiguous range. A run
    bills the bookings as they were when it started. Runs inside the caller's transaction."""
    pg = connection.vendor == "postgresql"
    name = stage_name(run.pk)
    segment, seg_params = _segment_sql(book, activity_ids)
    in_list = ", ".join(["%s"] * len(activity_ids))
    false = "false" if pg else "0"
    if pg:
        # the bookings rule, exactly: received by the end of the session day + the activity's
        # justification days, Paris time; such items are not billable at all
        justified = "NULL::timestamptz"
        excluded = f"""AND NOT ((b.status <> 'booked' OR att.present = {false}) AND EXISTS (
              SELECT 1 FROM bookings_justification j JOIN bookings_activity a ON a.id = s.activity_id
              WHERE j.booking_id = b.id
                AND j.received_at <= ((s.date + a.justification_days) + time '23:59:59') AT TIME ZONE 'Europe/Paris'))"""
    else:
        # SQLite has no time zones: the few justified items are checked in Python (_drop_justified)
        justified = f"""CASE WHEN b.status <> 'booked' OR att.present = {false}
                    THEN (SELECT MIN(j.received_at) FROM bookings_justification j WHERE j.booking_id = b.id) END"""
        excluded = ""
    sql = f"""
        CREATE {"UNLOGGED " if pg else ""}TABLE {name} AS
        SELECT b.id AS booking_id, b.household_id, b.child_id, s.activity_id, b.unit_id,
               s.date AS session_date, {_month_sql()} AS month, {segment} AS segment,
               CASE WHEN b.status = 'booked' AND att.present = {false} THEN 'unjustified_absence'
                    WHEN b.status = 'booked' THEN 'booked'
                    ELSE 'late_cancellation' END AS kind,
               {justified} AS justified_at
        FROM bookings_booking b
        JOIN bookings_session s ON s.id = b.session_id
        LEFT JOIN bookings_attendance att ON att.booking_id = b.id
        WHERE b.organisation_id = %s
          AND s.activity_id IN ({in_list}) AND s.date >= %s AND s.date < %s AND s.closed = {false}
          AND (b.status = 'booked' OR (b.status = 'cancelled' AND b.late))
          AND NOT EXISTS (SELECT 1 FROM billing_billeditem bi WHERE bi.booking_id = b.id)
          {excluded}
        ORDER BY b.household_id
    """
    with connection.cursor() as cursor:
        tune(cursor)
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(sql, [*seg_params, run.organisation_id, *activity_ids, run.first_month,
                             rules.next_month(run.last_month)])
        rows = cursor.rowcount
        cursor.execute(f"CREATE INDEX {name}_household ON {name} (household_id)")
        if pg:
            cursor.execute(f"ANALYZE {name}")
    return rows


def _collect_items(cursor, run: InvoiceRun, lo: int, hi: int) -> None:
    """The chunk's items: its households' rows of the staging table not billed since."""
    pg = connection.vendor == "postgresql"
    cursor.execute(
        f"""CREATE TEMP TABLE {ITEMS} {"ON COMMIT DROP" if pg else ""} AS
            SELECT st.* FROM {stage_name(run.pk)} st
            WHERE st.household_id > %s AND st.household_id <= %s
              AND NOT EXISTS (SELECT 1 FROM billing_billeditem bi WHERE bi.booking_id = st.booking_id)""",
        [lo, hi])
    if pg:
        cursor.execute(f"ANALYZE {ITEMS}")


def _drop_justified(cursor, days: dict[int, int]) -> None:
    """Items with a justification received in time are not billed (the bookings rule: by the
    end of the session day + the activity's justification days, Paris time)."""
    cursor.execute(f"SELECT booking_id, activity_id, session_date, justified_at FROM {ITEMS} "
                   "WHERE justified_at IS NOT NULL")
    drop = []
    for booking_id, activity_id, session_date, justified_at in cursor.fetchall():
        last = _as_date(session_date) + dt.timedelta(days=days.get(activity_id, 0))
        limit = dt.datetime(last.year, last.month, last.day, 23, 59, 59, tzinfo=PARIS)
        if _as_datetime(justified_at) <= limit:
            drop.append(booking_id)
    for i in range(0, len(drop), 500):
        part = drop[i:i + 500]
        cursor.execute(f"DELETE FROM {ITEMS} WHERE booking_id IN ({', '.join(['%s'] * len(part))})", part)


def _defer_pending(cursor, days: dict[int, int], today: dt.date, anomalies: list) -> None:
    """Late cancellations and absences whose justification window is still open wait."""
    conds, params = [], []
    for activity_id, n in days.items():
        conds.append("(activity_id = %s AND session_date >= %s)")
        params += [activity_id, today - dt.timedelta(days=n)]
    if not conds:
        return
    where = f"kind IN ('late_cancellation', 'unjustified_absence') AND ({' OR '.join(conds)})"
    cursor.execute(f"SELECT household_id, COUNT(*) FROM {ITEMS} WHERE {where} GROUP BY household_id", params)
    for household_id, n in cursor.fetchall():
        anomalies.append((RunAnomaly.Kind.JUSTIFICATION_PENDING, household_id, f"household:{household_id}",
                          int(n), {}))
    cursor.execute(f"DELETE FROM {ITEMS} WHERE {where}", params)


def _pending_sql(days: dict[int, int], today: dt.date) -> tuple[str, list]:
    """Condition on a staging row (``st``): a late cancellation or an absence whose justification
    window is still open (it waits for a later run)."""
    conds, params = [], []
    for activity_id, n in days.items():
        conds.append("(st.activity_id = %s AND st.session_date >= %s)")
        params += [activity_id, today - dt.timedelta(days=n)]
    if not conds:
        return "(false)", []
    return f"(st.kind IN ('late_cancellation', 'unjustified_absence') AND ({' OR '.join(conds)}))", params


def _quotients(household_ids: list[int]) -> dict[int, list[tuple]]:
    out: dict[int, list[tuple]] = defaultdict(list)
    rows = HouseholdQuotient.objects.filter(household_id__in=household_ids).order_by("household_id", "valid_from")
    for q in rows.values_list("household_id", "valid_from", "quotient", "resources_cents", "dependent_children"):
        out[q[0]].append(q[1:])
    return out


def _quotient_at(rows: list[tuple], day: dt.date) -> tuple | None:
    """The quotient row in force on ``day`` (the first day of the service month)."""
    found = None
    for row in rows:
        if row[0] <= day:
            found = row
        else:
            break
    return found


@dataclass(slots=True)
class Line:
    """An invoice line being written (a plain row: thousands per chunk, no model instances)."""

    month: dt.date
    kind: str
    activity_id: int | None
    unit_id: int | None
    child_id: int | None
    tariff_date: dt.date | None
    bracket: str
    sibling_rank: int
    quantity: Decimal
    unit_price_cents: int
    amount_cents: int
    invoice_id: int | None = None
    pk: int | None = None


LINE_COLUMNS = ("id", "organisation_id", "invoice_id", "month", "kind", "activity_id", "unit_id", "child_id",
                "tariff_date", "bracket", "sibling_rank", "quantity", "unit_price_cents", "amount_cents", "label")


def _line_ids(cursor, n: int) -> list[int]:
    """Reserve ``n`` ids of billing_invoiceline (PostgreSQL: its identity sequence)."""
    cursor.execute("SELECT nextval(pg_get_serial_sequence('billing_invoiceline', 'id')) FROM generate_series(1, %s)",
                   [n])
    return [row[0] for row in cursor.fetchall()]


def _copy(cursor, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Write rows: COPY on PostgreSQL (no per-row Python work in Django), executemany elsewhere."""
    if connection.vendor == "postgresql":
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


class _Invoices:
    """The draft invoices of a chunk, created on demand, one per household and period."""

    def __init__(self, run: InvoiceRun, now: dt.datetime):
        self.run, self.now = run, now
        self.invoices: dict[tuple, Invoice] = {}
        self.lines: dict[tuple, list[tuple[Line, object]]] = defaultdict(list)

    def period(self, month: dt.date) -> tuple[dt.date, dt.date]:
        if self.run.grouping == InvoiceRun.Grouping.MONTH:
            return month, month
        return self.run.first_month, self.run.last_month

    def add(self, household_id: int, month: dt.date, line: Line, key=None) -> None:
        first, last = self.period(month)
        k = (household_id, first)
        if k not in self.invoices:
            self.invoices[k] = Invoice(
                organisation_id=self.run.organisation_id, household_id=household_id, run=self.run,
                first_month=first, last_month=last, created_at=self.now)
        self.lines[k].append((line, key))

    def write(self, cursor) -> list[tuple[Line, object]]:
        for k, invoice in self.invoices.items():
            invoice.total_cents = rules.invoice_total(line.amount_cents for line, _ in self.lines[k])
        Invoice.objects.bulk_create(list(self.invoices.values()), batch_size=1000)
        out = []
        for k, invoice in self.invoices.items():
            for line, key in self.lines[k]:
                line.invoice_id = invoice.pk
                out.append((line, key))
        if not out:
            return out
        org = self.run.organisation_id
        if connection.vendor == "postgresql":
            for (line, _key), pk in zip(out, _line_ids(cursor, len(out)), strict=True):
                line.pk = pk
            _copy(cursor, "billing_invoiceline", LINE_COLUMNS, [
                (x.pk, org, x.invoice_id, x.month, x.kind, x.activity_id, x.unit_id, x.child_id, x.tariff_date,
                 x.bracket, x.sibling_rank, x.quantity, x.unit_price_cents, x.amount_cents, "") for x, _k in out])
        else:  # SQLite: one INSERT ... RETURNING per line (tests and small towns)
            marks = ", ".join(["%s"] * (len(LINE_COLUMNS) - 1))
            sql = f"INSERT INTO billing_invoiceline ({', '.join(LINE_COLUMNS[1:])}) VALUES ({marks}) RETURNING id"
            for x, _k in out:
                cursor.execute(sql, (org, x.invoice_id, x.month, x.kind, x.activity_id, x.unit_id, x.child_id,
                                     x.tariff_date, x.bracket, x.sibling_rank, str(x.quantity), x.unit_price_cents,
                                     x.amount_cents, ""))
                x.pk = cursor.fetchone()[0]
        return out


def run_chunk(
    *, run: InvoiceRun, book: TariffBook, activities: list[Activity], household_ids: list[int], lo: int,
    now: dt.datetime,
) -> ChunkResult:
    """Bill one chunk of households (ids in ``household_ids``, all in ``(lo, max]``). Runs
    inside the caller's transaction; writes invoices, lines, billed items, anomalies."""
    result = ChunkResult(households=len(household_ids))
    if not household_ids:
        return result
    hi = max(household_ids)
    today = now.astimezone(PARIS).date()
    booking_activities = [a.pk for a in activities if a.kind != Activity.Kind.CRECHE]
    creche_activities = [a.pk for a in activities if a.kind == Activity.Kind.CRECHE]
    days = {a.pk: a.justification_days for a in activities if a.kind != Activity.Kind.CRECHE}
    if SQL_PRICING and connection.vendor == "postgresql":
        return _run_chunk_sql(run=run, book=book, booking_activities=booking_activities,
                              creche_activities=creche_activities, household_ids=household_ids, lo=lo, days=days,
                              today=today, now=now)
    invoices = _Invoices(run, now)
    anomalies: list[tuple] = []  # (kind, household_id, key, count, details)
    resident = dict(Household.objects.filter(pk__in=household_ids).values_list("pk", "resident"))
    quotients = _quotients(household_ids)
    births = dict(Child.objects.filter(household_id__in=household_ids).values_list("pk", "birth_date"))
    expected_items = 0
    t = time.monotonic()
    with connection.cursor() as cursor:
        if booking_activities:
            _drop_temp(cursor)
            _collect_items(cursor, run, lo, hi)
            t = result.lap("collect", t)
            _drop_justified(cursor, days)
            _defer_pending(cursor, days, today, anomalies)
            t = result.lap("justifications", t)
            cursor.execute(
                f"SELECT household_id, child_id, activity_id, unit_id, month, segment, kind, COUNT(*) FROM {ITEMS} "
                "GROUP BY household_id, child_id, activity_id, unit_id, month, segment, kind")
            groups = [(h, c, a, u, _as_date(m), _as_date(s), k, int(n)) for h, c, a, u, m, s, k, n in cursor.fetchall()]
            t = result.lap("group", t)
            # sibling ranks: among the household's children billed for the activity in the month
            siblings: dict[tuple, set] = defaultdict(set)
            for h, c, a, _u, m, _s, _k, _n in groups:
                siblings[(h, a, m)].add(c)
            prices: dict[tuple, object] = {}  # the same price asked again and again: computed once
            ranks: dict[tuple, dict[int, int]] = {
                key: rules.sibling_ranks((c, births.get(c, dt.date.max)) for c in children)
                for key, children in siblings.items()}
            for h, c, a, u, m, s, k, n in sorted(groups, key=lambda g: (g[0], g[4], g[1], g[2], g[3], g[6],
                                                                         g[5] or g[4])):
                if s is None:
                    anomalies.append((RunAnomaly.Kind.NO_TARIFF, h, f"unit:{u}:{m:%Y-%m}:h{h}", n,
                                      {"activity": a, "unit": u, "month": f"{m:%Y-%m}"}))
                    continue
                q = _quotient_at(quotients.get(h, []), m)
                rank = ranks[(h, a, m)][c]
                key = (a, u, s, k, resident.get(h, True), q[1] if q else None, rank)
                if key not in prices:
                    prices[key] = price_group(book, activity_id=a, unit_id=u, day=s, kind=k, resident=key[4],
                                              quotient=key[5], rank=rank)
                priced = prices[key]
                if priced is None:
                    anomalies.append((RunAnomaly.Kind.NO_TARIFF, h, f"unit:{u}:{m:%Y-%m}:h{h}", n,
                                      {"activity": a, "unit": u, "month": f"{m:%Y-%m}"}))
                    continue
                if priced.defaulted:
                    anomalies.append((RunAnomaly.Kind.NO_QUOTIENT, h, f"household:{h}:{m:%Y-%m}", 1,
                                      {"month": f"{m:%Y-%m}", "bracket": priced.bracket}))
                common = dict(month=m, activity_id=a, unit_id=u, child_id=c, tariff_date=s, bracket=priced.bracket,
                              sibling_rank=rank)
                line = Line(kind=k, quantity=Decimal(n), unit_price_cents=priced.unit_price_cents,
                            amount_cents=rules.line_amount(n, priced.unit_price_cents), **common)
                invoices.add(h, m, line, key=(c, u, m, s, k))
                expected_items += n
                if priced.penalty_cents:
                    penalty = Line(kind=rules.PENALTY_OF[k], quantity=Decimal(n),
                                   unit_price_cents=priced.penalty_cents,
                                   amount_cents=rules.line_amount(n, priced.penalty_cents), **common)
                    invoices.add(h, m, penalty)
        _creche_lines(run, book, creche_activities, household_ids, quotients, invoices, anomalies)
        t = result.lap("price", t)
        written = invoices.write(cursor)
        t = result.lap("write invoices and lines", t)
        if booking_activities:
            mapping = [(key[0], key[1], key[2], key[3], key[4], line.pk, line.invoice_id)
                       for line, key in written if isinstance(key, tuple)]
            pg = connection.vendor == "postgresql"
            cursor.execute(
                f"CREATE TEMP TABLE {MAP} (child_id bigint, unit_id bigint, month date, segment date, "
                f"kind varchar(20), line_id bigint, invoice_id bigint) {'ON COMMIT DROP' if pg else ''}")
            if mapping:
                _copy(cursor, MAP, ("child_id", "unit_id", "month", "segment", "kind", "line_id", "invoice_id"),
                      mapping)
                if pg:
                    cursor.execute(f"ANALYZE {MAP}")
            cursor.execute(
                f"""INSERT INTO billing_billeditem (booking_id, organisation_id, line_id, invoice_id)
                    SELECT t.booking_id, %s, m.line_id, m.invoice_id FROM {ITEMS} t
                    JOIN {MAP} m ON m.child_id = t.child_id AND m.unit_id = t.unit_id AND m.month = t.month
                                AND m.segment = t.segment AND m.kind = t.kind
                    ORDER BY t.booking_id""",  # primary-key order: the index is written sequentially
                [run.organisation_id])
            linked = cursor.rowcount
            t = result.lap("link items", t)
            if linked != expected_items:
                raise RuntimeError(f"billing run {run.pk}: {linked} items linked, {expected_items} expected")
            if not pg:
                _drop_temp(cursor)
    BilledCrecheMonth.objects.bulk_create([
        BilledCrecheMonth(organisation_id=run.organisation_id, contract_id=key.contract, month=key.month,
                          line_id=line.pk, invoice_id=line.invoice_id)
        for line, key in written if isinstance(key, CrecheKey)
    ])
    result.invoices = len(invoices.invoices)
    result.invoice_ids = [i.pk for i in invoices.invoices.values()]
    result.lines = len(written)
    result.items = expected_items
    for line, key in written:
        result.amount_cents += line.amount_cents
        slot = result.by_activity_month.setdefault(f"{line.activity_id}|{line.month:%Y-%m}", [0, 0])
        slot[0] += line.amount_cents
        if isinstance(key, tuple):
            slot[1] += int(line.quantity)
        elif isinstance(key, CrecheKey):
            slot[1] += 1  # a contract month
    _record_anomalies(run, result, anomalies)
    return result


def _record_anomalies(run: InvoiceRun, result: ChunkResult, anomalies: list[tuple]) -> None:
    """Store the chunk's anomalies (one per kind and key) and count them in ``result``."""
    if anomalies:
        merged: dict[tuple, list] = {}
        for kind, household_id, key, count, details in anomalies:
            slot = merged.setdefault((kind, key), [household_id, 0, details])
            # a household-month without quotient is one anomaly, whatever its number of lines
            slot[1] = 1 if kind == RunAnomaly.Kind.NO_QUOTIENT else slot[1] + count
        RunAnomaly.objects.bulk_create([
            RunAnomaly(organisation_id=run.organisation_id, run=run, kind=kind, household_id=h, key=key, count=n,
                       details=details)
            for (kind, key), (h, n, details) in merged.items()
        ], ignore_conflicts=True)
        for (kind, _key), (_h, n, _d) in merged.items():
            result.anomalies[kind] = result.anomalies.get(kind, 0) + n


@dataclass(frozen=True)
class CrecheKey:
    contract: int
    month: dt.date


def _creche_lines(run, book, creche_activities, household_ids, quotients, invoices, anomalies) -> int:
    """One line per crèche contract month not billed yet: contract hours x PSU hourly rate, the
    household's resources and dependent children frozen on the first day of the month."""
    if not creche_activities:
        return 0
    months = rules.months(run.first_month, run.last_month)
    contracts = CrecheContract.objects.filter(
        household_id__in=household_ids, activity_id__in=creche_activities, first_month__lte=run.last_month,
    ).exclude(last_month__lt=run.first_month).order_by("household_id", "child_id", "first_month", "pk")
    billed = set(BilledCrecheMonth.objects.filter(
        contract__in=contracts, released_by__isnull=True).values_list("contract_id", "month"))
    n = 0
    for contract in contracts:
        for month in months:
            if month < contract.first_month or (contract.last_month and month > contract.last_month):
                continue
            if (contract.pk, month) in billed:
                continue
            found = psu_for(book, contract.activity_id, month)
            if found is None:
                anomalies.append((RunAnomaly.Kind.NO_TARIFF, contract.household_id,
                                  f"contract:{contract.pk}:{month:%Y-%m}", 1,
                                  {"activity": contract.activity_id, "month": f"{month:%Y-%m}"}))
                continue
            psu_date, psu = found
            q = _quotient_at(quotients.get(contract.household_id, []), month)
            rate, missing = rules.psu_hourly_rate(q[2] if q else None, q[3] if q else None, psu)
            if missing:
                anomalies.append((RunAnomaly.Kind.NO_RESOURCES, contract.household_id,
                                  f"household:{contract.household_id}:{month:%Y-%m}", 1, {"month": f"{month:%Y-%m}"}))
            hours = rules.hours_quantity(contract.monthly_hours)
            line = Line(month=month, kind=rules.CRECHE_CONTRACT, activity_id=contract.activity_id, unit_id=None,
                        child_id=contract.child_id, tariff_date=psu_date, bracket="", sibling_rank=1, quantity=hours,
                        unit_price_cents=rate, amount_cents=rules.line_amount(hours, rate))
            invoices.add(contract.household_id, month, line, key=CrecheKey(contract.pk, month))
            n += 1
    return n


# --- PostgreSQL: the whole chunk in SQL ---------------------------------------------------------------

# Price in SQL on PostgreSQL (the groups are joined to the price grid the Python rules computed);
# False: price every group in Python as on SQLite (tests compare the two paths).
SQL_PRICING = True

GRID = "billing_tmp_grid"
GROUPS = "billing_tmp_groups"
LINES = "billing_tmp_lines"
INVOICES = "billing_tmp_invoices"
QUOTIENTS = "billing_tmp_quotients"
GRID_COLUMNS = ("activity_id", "segment", "unit_id", "kind", "resident", "q_lo", "q_hi", "rank", "unit_price_cents",
                "bracket", "defaulted", "penalty_cents")
LINE_TMP_COLUMNS = ("household_id", "month", "kind", "activity_id", "unit_id", "child_id", "tariff_date", "bracket",
                    "sibling_rank", "quantity", "unit_price_cents", "amount_cents", "item_kind", "contract_id")


def _grid(book: TariffBook, activity_ids: list[int]) -> list[tuple]:
    """The price grid of these activities (``tariffs.price_grid``), computed once per book."""
    cache = book.__dict__.setdefault("_grid_cache", {})
    key = tuple(sorted(activity_ids))
    if key not in cache:
        units: dict[int, list[int]] = defaultdict(list)
        for activity_id, unit_id in Unit.objects.filter(activity_id__in=key).values_list("activity_id", "pk"):
            units[activity_id].append(unit_id)
        cache[key] = price_grid(book, dict(units))
    return cache[key]


def _run_chunk_sql(
    *, run: InvoiceRun, book: TariffBook, booking_activities: list[int], creche_activities: list[int],
    household_ids: list[int], lo: int, days: dict[int, int], today: dt.date, now: dt.datetime,
) -> ChunkResult:
    """PostgreSQL: the chunk in a handful of statements over temporary tables; Python only
    prices the grid (once per run) and the crèche contracts (a few rows)."""
    result = ChunkResult(households=len(household_ids))
    hi = max(household_ids)
    org = run.organisation_id
    anomalies: list[tuple] = []
    if run.grouping == InvoiceRun.Grouping.MONTH:
        first_sql, last_sql, period = "l.month", "l.month", []
    else:
        first_sql, last_sql, period = "%s::date", "%s::date", [run.first_month, run.last_month]
    t = time.monotonic()
    with connection.cursor() as cursor:
        tune(cursor)
        # ON COMMIT DROP tables; dropped here too for callers that hold one transaction (tests)
        cursor.execute(f"DROP TABLE IF EXISTS {ITEMS}, {MAP}, {GRID}, {GROUPS}, {LINES}, {INVOICES}, {QUOTIENTS}")
        quotients = _quotients(household_ids)
        cursor.execute(
            f"""CREATE TEMP TABLE {LINES} (household_id bigint, month date, kind varchar(20), activity_id bigint,
                    unit_id bigint, child_id bigint, tariff_date date, bracket varchar(20), sibling_rank int,
                    quantity numeric(9, 2), unit_price_cents bigint, amount_cents bigint, item_kind varchar(20),
                    contract_id bigint) ON COMMIT DROP""")
        expected_items = 0
        stage = stage_name(run.pk)
        chunk_rows = f"{stage} st WHERE st.household_id > %s AND st.household_id <= %s AND NOT"
        pending, pending_params = _pending_sql(days, today)
        chunk_params = [lo, hi, *pending_params]
        if booking_activities:
            # the chunk's rows of the staging table, read in place (it is ordered by household);
            # what was billed when the stage was built is not in it, and a chunk's households are
            # billed once (the run's cursor moves in the chunk's transaction): the ledger's
            # primary key is the guarantee, not a look-up per item
            cursor.execute(f"SELECT st.household_id, count(*) FROM {stage} st WHERE st.household_id > %s "
                           f"AND st.household_id <= %s AND {pending} GROUP BY st.household_id", chunk_params)
            for household_id, n in cursor.fetchall():
                anomalies.append((RunAnomaly.Kind.JUSTIFICATION_PENDING, household_id, f"household:{household_id}",
                                  int(n), {}))
            t = result.lap("justifications", t)
            cursor.execute(
                f"""CREATE TEMP TABLE {GRID} (activity_id bigint, segment date, unit_id bigint, kind varchar(20),
                        resident boolean, q_lo bigint, q_hi bigint, rank int, unit_price_cents bigint,
                        bracket varchar(20), defaulted boolean, penalty_cents bigint) ON COMMIT DROP""")
            _copy(cursor, GRID, GRID_COLUMNS, _grid(book, booking_activities))
            cursor.execute(f"ANALYZE {GRID}")
            # quotients are encrypted at rest: the quotient in force on the first of each month,
            # decrypted here (one row per household and month, not per item)
            cursor.execute(f"CREATE TEMP TABLE {QUOTIENTS} (household_id bigint, month date, quotient bigint) "
                           "ON COMMIT DROP")
            _copy(cursor, QUOTIENTS, ("household_id", "month", "quotient"), [
                (h, m, q[1]) for h, rows in quotients.items() for m in rules.months(run.first_month, run.last_month)
                if (q := _quotient_at(rows, m)) is not None])
            cursor.execute(f"ANALYZE {QUOTIENTS}")
            # groups, sibling ranks (eldest first among the household's children billed for the
            # activity in the month), the quotient in force on the first of the month, the price
            cursor.execute(
                f"""CREATE TEMP TABLE {GROUPS} ON COMMIT DROP AS
                    WITH g AS (
                        SELECT household_id, child_id, activity_id, unit_id, month, segment, kind, count(*) AS n
                        FROM {chunk_rows} {pending}
                        GROUP BY household_id, child_id, activity_id, unit_id, month, segment, kind),
                    r AS (
                        SELECT g.*, dense_rank() OVER (PARTITION BY g.household_id, g.activity_id, g.month
                                                       ORDER BY c.birth_date, c.id) AS rank
                        FROM g JOIN bookings_child c ON c.id = g.child_id),
                    q AS (
                        SELECT hm.household_id, hm.month, h.resident, tq.quotient
                        FROM (SELECT DISTINCT household_id, month FROM g) hm
                        JOIN bookings_household h ON h.id = hm.household_id
                        LEFT JOIN {QUOTIENTS} tq ON tq.household_id = hm.household_id AND tq.month = hm.month)
                    SELECT r.*, q.resident, p.unit_price_cents, p.bracket, p.defaulted, p.penalty_cents
                    FROM r JOIN q ON q.household_id = r.household_id AND q.month = r.month
                    LEFT JOIN {GRID} p ON p.activity_id = r.activity_id AND p.segment = r.segment
                         AND p.unit_id = r.unit_id AND p.kind = r.kind AND p.resident = q.resident
                         AND p.rank = LEAST(r.rank, {int(max_rank(book))})
                         AND COALESCE(q.quotient, {int(NO_QUOTIENT)}) BETWEEN p.q_lo AND p.q_hi""",
                chunk_params)
            cursor.execute(
                f"""INSERT INTO {LINES}
                    SELECT household_id, month, kind, activity_id, unit_id, child_id, segment, bracket, rank, n,
                           unit_price_cents, n * unit_price_cents, kind, NULL::bigint
                    FROM {GROUPS} WHERE unit_price_cents IS NOT NULL
                    UNION ALL
                    SELECT household_id, month, CASE kind WHEN %s THEN %s ELSE %s END, activity_id, unit_id,
                           child_id, segment, bracket, rank, n, penalty_cents, n * penalty_cents, NULL::varchar, NULL::bigint
                    FROM {GROUPS} WHERE unit_price_cents IS NOT NULL AND penalty_cents > 0""",
                [rules.LATE_CANCELLATION, rules.LATE_PENALTY, rules.ABSENCE_PENALTY])
            cursor.execute(
                f"""SELECT household_id, activity_id, unit_id, month, sum(n) FROM {GROUPS}
                    WHERE unit_price_cents IS NULL GROUP BY household_id, activity_id, unit_id, month""")
            for h, a, u, m, n in cursor.fetchall():
                anomalies.append((RunAnomaly.Kind.NO_TARIFF, h, f"unit:{u}:{m:%Y-%m}:h{h}", int(n),
                                  {"activity": a, "unit": u, "month": f"{m:%Y-%m}"}))
            cursor.execute(
                f"""SELECT household_id, month, min(bracket), sum(n) FROM {GROUPS} WHERE unit_price_cents IS NOT NULL
                    GROUP BY household_id, month HAVING bool_or(defaulted)""")
            for h, m, bracket, _n in cursor.fetchall():
                anomalies.append((RunAnomaly.Kind.NO_QUOTIENT, h, f"household:{h}:{m:%Y-%m}", 1,
                                  {"month": f"{m:%Y-%m}", "bracket": bracket}))
            cursor.execute(f"SELECT coalesce(sum(n), 0) FROM {GROUPS} WHERE unit_price_cents IS NOT NULL")
            expected_items = int(cursor.fetchone()[0])
            t = result.lap("price", t)
        if creche_activities:
            creche = _Invoices(run, now)
            _creche_lines(run, book, creche_activities, household_ids, quotients, creche, anomalies)
            _copy(cursor, LINES, LINE_TMP_COLUMNS, [
                (h, x.month, x.kind, x.activity_id, x.unit_id, x.child_id, x.tariff_date, x.bracket, x.sibling_rank,
                 x.quantity, x.unit_price_cents, x.amount_cents, None, key.contract)
                for (h, _first), lines in creche.lines.items() for x, key in lines])
            t = result.lap("price", t)
        # one invoice per household and period, its id from the table's own sequence; then the
        # lines with theirs, in the invoice's display order
        cursor.execute(
            f"""CREATE TEMP TABLE {INVOICES} ON COMMIT DROP AS
                SELECT nextval(pg_get_serial_sequence('billing_invoice', 'id')) AS id, x.*
                FROM (SELECT l.household_id, {first_sql} AS first_month, {last_sql} AS last_month,
                             sum(l.amount_cents) AS total
                      FROM {LINES} l GROUP BY 1, 2, 3 ORDER BY 1, 2) x""", period)
        cursor.execute(
            f"""INSERT INTO billing_invoice (id, organisation_id, household_id, run_id, kind, status, number,
                    first_month, last_month, total_cents, created_at, reason, rebill)
                SELECT id, %s, household_id, %s, %s, %s, NULL, first_month, last_month, total, %s, '', false
                FROM {INVOICES} ORDER BY id""",
            [org, run.pk, Invoice.Kind.INVOICE, Invoice.Status.DRAFT, now])
        cursor.execute(
            f"""CREATE TEMP TABLE {MAP} ON COMMIT DROP AS
                SELECT nextval(pg_get_serial_sequence('billing_invoiceline', 'id')) AS id, x.*
                FROM (SELECT l.*, i.id AS invoice_id FROM {LINES} l
                      JOIN {INVOICES} i ON i.household_id = l.household_id AND i.first_month = {first_sql}
                      ORDER BY i.id, l.month, l.child_id, l.activity_id, l.kind, l.unit_id, l.tariff_date) x""",
            period[:1])
        cursor.execute(
            f"""INSERT INTO billing_invoiceline ({", ".join(LINE_COLUMNS)}, corrects_line_id)
                SELECT id, %s, invoice_id, month, kind, activity_id, unit_id, child_id, tariff_date,
                       coalesce(bracket, ''), sibling_rank, quantity, unit_price_cents, amount_cents, '', NULL
                FROM {MAP} ORDER BY id""", [org])
        t = result.lap("write invoices and lines", t)
        if booking_activities:
            # every booking to its line: the booking is the ledger's primary key
            cursor.execute(
                f"""INSERT INTO billing_billeditem (booking_id, organisation_id, line_id, invoice_id)
                    SELECT st.booking_id, %s, m.id, m.invoice_id
                    FROM {MAP} m, {chunk_rows} {pending}
                         AND m.child_id = st.child_id AND m.unit_id = st.unit_id AND m.month = st.month
                         AND m.tariff_date = st.segment AND m.item_kind = st.kind
                    ORDER BY st.booking_id""",
                [org, *chunk_params])
            linked = cursor.rowcount
            t = result.lap("link items", t)
            if linked != expected_items:
                raise RuntimeError(f"billing run {run.pk}: {linked} items linked, {expected_items} expected")
        if creche_activities:
            cursor.execute(
                f"""INSERT INTO billing_billedcrechemonth (organisation_id, contract_id, month, line_id, invoice_id)
                    SELECT %s, contract_id, month, id, invoice_id FROM {MAP} WHERE contract_id IS NOT NULL""", [org])
        cursor.execute(f"SELECT id FROM {INVOICES} ORDER BY id")
        result.invoice_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"""SELECT activity_id, month, count(*), sum(amount_cents),
                       sum(CASE WHEN item_kind IS NOT NULL THEN quantity WHEN contract_id IS NOT NULL THEN 1 ELSE 0 END)
                FROM {MAP} GROUP BY activity_id, month""")
        for a, m, n, amount, items in cursor.fetchall():
            result.lines += n
            result.amount_cents += int(amount)
            result.by_activity_month[f"{a}|{m:%Y-%m}"] = [int(amount), int(items)]
    result.invoices = len(result.invoice_ids)
    result.items = expected_items
    _record_anomalies(run, result, anomalies)
    return result
