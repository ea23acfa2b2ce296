"""The database-only ceiling and the naive control, run in-process (no HTTP).

- ceiling: the very allocation transaction of the portal, ``services.basket_submit``, called by
  ``procs`` processes x ``threads`` threads as fast as they can: the physical limit of the
  database (and of Python) for that transaction, without HTTP, auth or JSON.
- naive control: the textbook check-then-insert ("count the bookings; if below capacity,
  insert"), no lock, no guard, no constraint, in a scratch table, with the same concurrency.
  It is expected to overbook: that is what the guard and the constraint are for.

Processes are forked after Django is set up (connections closed first); each process prepares
its families, then all start together at an agreed instant.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field

NAIVE_TABLE = "bench_naive_booking"


@dataclass
class Outcome:
    calls: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    booked: int = 0
    not_booked: int = 0

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else float("nan")


def _worker(kind: str, families: list, threads: int, start_at: float, extra: dict) -> dict:
    from django.db import connection, connections, transaction
    from django.utils import timezone

    from guichet.bookings import models as m

    households = m.Household.objects.in_bulk([f.household_id for f in families])
    capacity = extra.get("capacity", {})
    connections.close_all()

    def ceiling(fam):
        from guichet.bookings import services
        from guichet.common.actor import Actor

        actor = Actor(ref=f"user:{fam.user_id}", channel="web", user_id=fam.user_id)
        basket = services.basket_submit(
            household=households[fam.household_id], items=fam.items, mode=fam.mode, actor=actor,
            now=timezone.now(), idempotency_key=f"db-{fam.index}", channel="portal",
        )
        items = (basket.result or {}).get("items", [])
        return sum(1 for i in items if i.get("outcome") == "booked"), sum(
            1 for i in items if i.get("outcome") != "booked")

    def naive(fam):
        booked = refused = 0
        with transaction.atomic(), connection.cursor() as cur:
            def count(session):
                cur.execute(f"SELECT count(*) FROM {NAIVE_TABLE} WHERE session_id = %s", [session])
                return cur.fetchone()[0]

            sessions = Counter(int(i["session"]) for i in fam.items)
            if fam.mode == "all_or_nothing":
                ok = all(count(s) + n <= capacity[s] for s, n in sessions.items())
                chosen = fam.items if ok else []
            else:
                chosen = [i for i in fam.items if count(int(i["session"])) < capacity[int(i["session"])]]
            for item in chosen:
                cur.execute(f"INSERT INTO {NAIVE_TABLE} (session_id, child_id) VALUES (%s, %s)",
                            [item["session"], item["child"]])
            booked, refused = len(chosen), len(fam.items) - len(chosen)
        return booked, refused

    fn = ceiling if kind == "ceiling" else naive

    def call(fam):
        t = time.perf_counter()
        try:
            b, r = fn(fam)
            return time.perf_counter() - t, b, r, None
        except Exception as exc:  # noqa: BLE001 - every failure is a figure of the benchmark
            code = getattr(exc, "code", None)
            return time.perf_counter() - t, 0, 0, f"{type(exc).__name__}{'/' + code if code else ''}"

    def run_thread(chunk):
        try:
            return [call(f) for f in chunk]
        finally:
            connections.close_all()

    time.sleep(max(0.0, start_at - time.time()))
    chunks = [families[i::threads] for i in range(threads)]
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        results = [r for part in ex.map(run_thread, chunks) for r in part]
    return {"end": time.time(), "results": results}


def run(kind: str, families: list, *, procs: int, threads: int, capacity: dict | None = None) -> Outcome:
    """Call ``kind`` ("ceiling" or "naive") for every family with procs x threads workers."""
    from django.db import connections

    connections.close_all()  # never share a connection with forked children
    ctx = multiprocessing.get_context("fork")
    start_at = time.time() + 2.0 + 0.2 * procs
    extra = {"capacity": capacity or {}}
    with concurrent.futures.ProcessPoolExecutor(procs, mp_context=ctx) as ex:
        futures = [ex.submit(_worker, kind, families[p::procs], threads, start_at, extra) for p in range(procs)]
        outs = [f.result() for f in futures]
    out = Outcome()
    out.seconds = max(o["end"] for o in outs) - start_at
    for o in outs:
        for latency, booked, refused, error in o["results"]:
            out.calls += 1
            out.latencies.append(latency)
            out.booked += booked
            out.not_booked += refused
            if error:
                out.errors[error] += 1
    return out


def naive_setup() -> dict[int, int]:
    """Create (or empty) the scratch table; return each session's capacity."""
    from django.db import connection

    from guichet.bookings.models import SessionPart

    with connection.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {NAIVE_TABLE} (id bigserial PRIMARY KEY, "
                    "session_id bigint NOT NULL, child_id bigint NOT NULL)")
        cur.execute(f"CREATE INDEX IF NOT EXISTS {NAIVE_TABLE}_session ON {NAIVE_TABLE} (session_id)")
        cur.execute(f"TRUNCATE {NAIVE_TABLE}")
    return {p.session_id: p.capacity for p in SessionPart.objects.all()}


def naive_overbooking(capacity: dict[int, int]) -> tuple[int, int]:
    """(sessions over capacity, places sold beyond capacity) in the scratch table."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"SELECT session_id, count(*) FROM {NAIVE_TABLE} GROUP BY session_id")
        rows = cur.fetchall()
    over = [(s, n - capacity[s]) for s, n in rows if n > capacity[s]]
    return len(over), sum(x for _, x in over)


@dataclass
class Split:
    receipts: int = 0
    receipt_seconds: float = 0.0
    receipt_cpu: float = 0.0  # this process's CPU seconds (every thread) for the receipts
    drain_calls: int = 0
    drain_seconds: float = 0.0
    drain_cpu: float = 0.0

    @property
    def receipt_rate(self) -> float:
        return self.receipts / self.receipt_seconds if self.receipt_seconds > 0 else float("nan")

    @property
    def drain_rate(self) -> float:
        return self.receipts / self.drain_seconds if self.drain_seconds > 0 else float("nan")


def split(families: list, *, threads: int, organisation_id: int) -> Split:
    """The ceiling's two halves apart, in this process: every family's receipt
    (``services.basket_receive``) from ``threads`` threads, nothing answered; then one drain
    (``intake.drain``: the queue answered in receipt order, batch after batch) in one thread.
    Shows which half bounds the ceiling; wall time and this process's CPU time of each."""
    from django.db import connections
    from django.utils import timezone

    from guichet.bookings import intake, services
    from guichet.bookings import models as m
    from guichet.common.actor import Actor

    households = m.Household.objects.in_bulk([f.household_id for f in families])

    def receive(chunk):
        try:
            for fam in chunk:
                services.basket_receive(
                    household=households[fam.household_id], items=fam.items, mode=fam.mode,
                    actor=Actor(ref=f"user:{fam.user_id}", channel="web", user_id=fam.user_id), now=timezone.now(),
                    idempotency_key=f"split-{fam.index}", channel="portal",
                )
        finally:
            connections.close_all()

    out = Split(receipts=len(families))
    cpu, t = time.process_time(), time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        list(ex.map(receive, [families[i::threads] for i in range(threads)]))
    out.receipt_seconds, out.receipt_cpu = time.perf_counter() - t, time.process_time() - cpu
    cpu, t = time.process_time(), time.perf_counter()
    out.drain_calls = intake.drain(organisation_id)
    out.drain_seconds, out.drain_cpu = time.perf_counter() - t, time.process_time() - cpu
    return out
