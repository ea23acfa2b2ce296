"""The drainer's CPU per basket, alone (no HTTP, no rush). See docs/benchmarks.md.

    .venv/bin/python bench/drain_cpu.py              # the rush's scenario: 3,000 families
    .venv/bin/python bench/drain_cpu.py --families 600 --centres 4

Creates a scratch PostgreSQL database, builds the opening-day scenario in it with the window
already open, receives every family's basket as the web does (``services.basket_receive``; not
measured), then answers them all with ``services.basket_drain_round`` round after round, as the
drainer does, until nothing is left. Measures this process's CPU (``time.process_time``) and the
CPU of the PostgreSQL backends of the scratch database, and prints each per basket, the drain's
baskets/s, the machine, and the invariants (bench/checks.py).

Receipt times are fixed (today, 00:00 UTC, plus a millisecond per family) and the database is
new, so two runs of the same code on the same day write the same rows: the printed fingerprint
(answers, bookings, waiting-list entries, journal head, confirmation tasks) lets two versions of
the drain be compared for behaviour as well as for speed. Drops the scratch database unless
``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT / "src"), str(ROOT)):
    if p not in sys.path:
        sys.path.append(p)  # after PYTHONPATH: another tree's src/ can be measured with this script

from bench import checks, scenario, server  # noqa: E402
from bench.rush import create_database, drop_database, machine  # noqa: E402


def receive_all(scen, base: dt.datetime) -> int:
    """Every family's basket received, in family order, at a fixed instant each (not measured)."""
    from guichet.bookings import models as m
    from guichet.bookings import services
    from guichet.common.actor import Actor

    households = m.Household.objects.in_bulk([f.household_id for f in scen.families])
    for f in scen.families:
        services.basket_receive(
            household=households[f.household_id], items=f.items, mode=f.mode,
            actor=Actor(ref=f"user:{f.user_id}", channel="web", user_id=f.user_id),
            now=base + dt.timedelta(milliseconds=f.index), idempotency_key=f"drain-{f.index}", channel="portal",
        )
    return len(scen.families)


def drain_all(org: int, admin_url: str, database: str) -> dict:
    """``basket_drain_round`` until a round answers nothing; the CPU and time it took."""
    from guichet.bookings import services

    pg0, cpu0, t0 = server.postgres_cpu_seconds(admin_url, database), time.process_time(), time.perf_counter()
    rounds = baskets = 0
    while True:
        answered = services.basket_drain_round(org)
        if not answered:
            break
        rounds += 1
        baskets += len(answered)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    pg = server.postgres_cpu_seconds(admin_url, database) - pg0
    return {"rounds": rounds, "baskets": baskets, "wall_s": wall, "drainer_cpu_s": cpu, "pg_cpu_s": pg}


def fingerprint(org: int) -> str:
    """A digest of what the drain wrote: answers, bookings, waiting-list entries, the journal's
    head and the confirmation tasks queued."""
    from django.db import connection

    from guichet.bookings import models as m
    from guichet.journal.models import Head

    h = hashlib.sha256()
    for part in (
        m.Basket.objects.filter(organisation_id=org).order_by("pk").values_list("pk", "status", "result",
                                                                                  "answered_at"),
        m.Booking.objects.filter(organisation_id=org).order_by("pk").values_list(
            "pk", "household_id", "child_id", "session_id", "unit_id", "basket_id", "booked_at", "status"),
        m.WaitlistEntry.objects.filter(organisation_id=org).order_by("pk").values_list(
            "pk", "child_id", "session_id", "unit_id", "basket_id", "requested_at", "status"),
        m.SessionPart.objects.filter(organisation_id=org).order_by("pk").values_list("pk", "booked"),
        Head.objects.filter(chain=org).values_list("seq", "hash"),
    ):
        h.update(json.dumps(list(part), default=str, sort_keys=True).encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT task_path, args_kwargs FROM django_tasks_database_dbtaskresult ORDER BY enqueued_at")
        h.update(json.dumps([[path, args] for path, args in cursor.fetchall()], default=str).encode())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", default=os.environ.get("GUICHET_BENCH_PG", "postgres://postgres@127.0.0.1:5432"),
                    help="PostgreSQL server URL (no database name)")
    ap.add_argument("--db", default="guichet_drain_cpu", help="scratch database (dropped and recreated)")
    ap.add_argument("--families", type=int, default=scenario.Params.families)
    ap.add_argument("--centres", type=int, default=scenario.Params.centres)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = ap.parse_args(argv)

    admin_url = f"{args.pg.rstrip('/')}/postgres"
    os.environ.update({"DATABASE_URL": f"{args.pg.rstrip('/')}/{args.db}", "SECRET_KEY": secrets.token_urlsafe(40),
                       "DEBUG": "0", "DJANGO_SETTINGS_MODULE": "guichet.settings", "LOG_LEVEL": "WARNING",
                       "GUICHET_BOOKING_RECEIPT_BATCHING": "0"})
    info = machine(admin_url)
    import guichet

    info["code"] = str(Path(guichet.__file__).resolve().parent)
    print("== machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    create_database(admin_url, args.db)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        t = time.perf_counter()
        call_command("migrate", verbosity=0)
        base = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        params = scenario.Params(families=args.families, centres=args.centres)
        scen = scenario.build(params, opens_at=base - dt.timedelta(hours=1), prefix="drain")
        received = receive_all(scen, base)
        with connections["default"].cursor() as cursor:
            cursor.execute("ANALYZE")  # the planner's statistics, as a deployment's autovacuum keeps them
        print(f"== setup (not measured): {time.perf_counter() - t:.1f} s; {received} baskets received, "
              f"{scen.demand} child-days for {scen.capacity} places")

        figures = drain_all(scen.organisation_id, admin_url, args.db)
        n = max(figures["baskets"], 1)
        print(f"== drain: {figures['baskets']} baskets in {figures['rounds']} rounds, {figures['wall_s']:.2f} s "
              f"({figures['baskets'] / figures['wall_s']:.0f} baskets/s)")
        print(f"   drainer CPU     {1000 * figures['drainer_cpu_s'] / n:.3f} ms/basket "
              f"({figures['drainer_cpu_s']:.2f} s)")
        print(f"   PostgreSQL CPU  {1000 * figures['pg_cpu_s'] / n:.3f} ms/basket ({figures['pg_cpu_s']:.2f} s)")

        from guichet.bookings import models as m

        told = {hh: sum(1 for i in (r or {}).get("items", []) if i.get("outcome") == "booked")
                for hh, r in m.Basket.objects.filter(organisation_id=scen.organisation_id)
                .values_list("household_id", "result")}
        inv = checks.check(scen.organisation_id, told)
        for line in inv.lines():
            print("   " + line)
        figures["fingerprint"] = fingerprint(scen.organisation_id)
        ok = inv.ok and figures["baskets"] == received
        print(f"== invariants {'PASS' if ok else 'FAIL'}; fingerprint {figures['fingerprint']}")
        if args.json:
            print(json.dumps({**figures, "machine": info, "ok": ok}))
        return 0 if ok else 1
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(admin_url, args.db)


if __name__ == "__main__":
    sys.exit(main())
