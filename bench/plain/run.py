"""The opening-day rush against the plain-Django reference (``bench.plain.views``), on this machine.

    .venv/bin/python bench/plain/run.py --quick   # 300 families, 4 centres: builds a scratch DB
    .venv/bin/python bench/plain/run.py           # the issue's 3,000 families, 20 centres

From ``bench/rush.py``, in the same run as Guichet (same scenario, same client, same machine)::

    from bench.plain import run as plain
    figures = plain.measure(params, scen, db_url=db_url, admin_url=admin_url, secret=secret,
                            burst=args.burst, arrival=args.arrival, timeout=args.timeout)

``measure`` resets the bookings, starts gunicorn (gthread) on ``bench.plain.settings``, warms
it up, releases every family at the next opening instant through ``bench.loadgen`` on the plain
view's path, stops the server, checks the invariants (``bench.checks``) and returns the
figures. It leaves the bookings it made in the database (reset them before the next phase).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # run as a script: this package's modules are not top-level modules
for _p in (str(ROOT / "src"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench import checks, loadgen, scenario, server  # noqa: E402

SETTINGS = "bench.plain.settings"
PATH = "/plain/v1/bookings/baskets"  # bench.plain.urls.PATH (not imported: it needs Django set up)
WORKERS = 4  # a plain deployment on 2 cores: 2 x cores processes ...
THREADS = 8  # ... of a few threads each (gthread)


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: the plain settings, and the repository root on the path."""
    path = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"DJANGO_SETTINGS_MODULE": SETTINGS, "PYTHONPATH": path, **(extra or {})}


def warm_up(srv: server.Server, n: int = 64) -> None:
    """As ``server.warm_up``, and the plain view's URL too (a GET: 405, nothing written)."""
    server.warm_up(srv, n)
    for _ in range(8):
        try:
            with urllib.request.urlopen(f"{srv.url}{PATH}", timeout=5) as resp:  # noqa: S310
                resp.read()
        except (OSError, urllib.error.HTTPError):
            pass


def measure(params: scenario.Params, scen: scenario.Scenario, *, db_url: str, admin_url: str, secret: str,
            workers: int = WORKERS, threads: int = THREADS, burst: float = 1.0, arrival: str = "uniform",
            connections: int | None = None, timeout: float = 120.0, extra_env: dict[str, str] | None = None,
            out=print) -> dict:
    """The rush of ``scen`` (built in ``db_url``'s database; Django set up on it in this process)
    against the plain view; returns ``loadgen.summarise``'s figures (``throughput``, ``makespan``,
    ``p50``, ``p99``, ``statuses``, ``done``, ``errors``, ``timeouts``, ``http_5xx``...) plus
    ``overbooked``, ``ledger_mismatches``, ``invariants_ok``, ``invariants`` (every field of
    ``checks.Invariants``), ``cpu_ms_per_family``, ``load`` and ``server`` (workers, threads).
    Session auth only (the plain view has no bearer tokens): families without a session get one
    first. ``out`` prints the figures (``lambda *_: None`` to keep quiet)."""
    from django.db import connections as db_connections

    from guichet.bookings.models import RegistrationWindow

    if any(not f.session_key for f in scen.families):
        scenario.prepare_auth(scen, auth="session")
    scenario.reset_bookings(scen)
    database = db_url.rsplit("/", 1)[1]
    srv = server.start(database_url=db_url, secret_key=secret, workers=workers, threads=threads,
                       worker_class="gthread", extra_env=server_env(extra_env))
    try:
        warm_up(srv)
        opens = math.ceil(time.time()) + 2
        opens_at = dt.datetime.fromtimestamp(opens, tz=dt.UTC)
        RegistrationWindow.objects.filter(pk=scen.window_id).update(opens_at=opens_at)
        db_connections.close_all()  # nothing of this process holds a connection during the rush
        offsets = loadgen.schedule(params.families, burst=burst, arrival=arrival, seed=params.seed)
        out(f"== plain Django reference ({srv.url}{PATH}): gunicorn {workers} workers x {threads} threads "
            f"(gthread), families released over {burst:.1f} s ({arrival})")
        from bench.rush import LoadSampler  # here: rush.py may import this module

        cpu0 = (srv.cpu_seconds(), server.postgres_cpu_seconds(admin_url, database), time.process_time())
        with LoadSampler() as load:
            records, pool = asyncio.run(loadgen.run(
                scen.families, offsets, host="127.0.0.1", port=srv.port, auth="session",
                connections=connections or params.families, timeout=timeout, opens_at_epoch=opens, path=PATH))
        cpu1 = (srv.cpu_seconds(), server.postgres_cpu_seconds(admin_url, database), time.process_time())
        log_tail = srv.log_tail(30)
    finally:
        srv.stop()
    s = loadgen.summarise(records)
    told = {r.household: r.booked for r in records if r.result == "done"}
    inv = checks.check(scen.organisation_id, told)
    per = {k: 1000 * (cpu1[i] - cpu0[i]) / params.families for i, k in enumerate(("server", "postgresql", "client"))}
    s.update(
        overbooked=inv.overbooked, ledger_mismatches=inv.ledger_mismatches, invariants_ok=inv.ok,
        invariants=inv.__dict__ | {"refusal_codes": dict(inv.refusal_codes)}, cpu_ms_per_family=per,
        client_connections_opened=pool.opened, load=load.text(),
        server={"workers": workers, "threads": threads, "worker_class": "gthread", "settings": SETTINGS},
    )
    out(f"   every family answered after   {_s(s['makespan'])} (from the opening)")
    out(f"   week-baskets per second       {s['throughput']:.0f} /s")
    out(f"   latency (definitive answer)   p50 {_s(s['p50'])}, p90 {_s(s['p90'])}, p99 {_s(s['p99'])}, "
        f"max {_s(s['max'])}")
    out(f"   HTTP statuses                 {s['statuses']} ({s['retries']} retries after 503/429, "
        f"{s['conn_errors']} connection errors)")
    out(f"   families                      {s['done']} answered, {s['errors']} errors, {s['timeouts']} timeouts; "
        f"items {s['outcomes']}")
    for sample in s["error_samples"]:
        out(f"     e.g. {sample}")
    for line in inv.lines():
        out(f"   {line}")
    out(f"   CPU per family                server {per['server']:.1f} ms, PostgreSQL {per['postgresql']:.1f} ms, "
        f"client {per['client']:.1f} ms")
    out(f"   machine during the rush       {s['load']}")
    if s["http_5xx"]:
        out("   server log (tail):\n" + log_tail)
    return s


def _s(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f} s"


def main(argv: list[str] | None = None) -> int:
    import argparse
    import secrets

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 families, 4 centres, 28 places")
    ap.add_argument("--families", type=int)
    ap.add_argument("--centres", type=int)
    ap.add_argument("--places", type=int)
    ap.add_argument("--seed", type=int, default=20240604)
    ap.add_argument("--burst", type=float, default=1.0)
    ap.add_argument("--arrival", choices=["uniform", "poisson", "instant"], default="uniform")
    ap.add_argument("--workers", type=int, default=WORKERS)
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--pg", default=os.environ.get("GUICHET_BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    ap.add_argument("--db", default="guichet_plain_bench", help="scratch database (dropped and recreated)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    # The machine line and the scratch database, as rush.py prints and makes them.
    from bench import rush

    params = scenario.Params(families=args.families or (300 if args.quick else 3000),
                             centres=args.centres or (4 if args.quick else 20),
                             places=args.places or (28 if args.quick else 60), seed=args.seed)
    pg = args.pg.rstrip("/")
    admin_url, db_url = f"{pg}/postgres", f"{pg}/{args.db}"
    info = rush.machine(admin_url)
    print("== machine")
    print(f"   CPU {info.get('cpu', '?')}, {info['cores']} cores, {info.get('ram_gb', '?')} GB RAM; "
          f"Python {info['python']}; PostgreSQL {info.get('postgresql')} "
          f"(max_connections {info.get('pg_max_connections', '?')}, "
          f"synchronous_commit {info.get('pg_synchronous_commit', '?')}); commit {info.get('commit', '?')}")
    print(f"   load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    secret = secrets.token_urlsafe(40)
    os.environ.update({"DATABASE_URL": db_url, "SECRET_KEY": secret, "DEBUG": "0",
                       "DJANGO_SETTINGS_MODULE": "guichet.settings", "LOG_LEVEL": "WARNING"})
    rush.create_database(admin_url, args.db)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.utils import timezone

        t = time.perf_counter()
        call_command("migrate", verbosity=0)
        scen = scenario.build(params, opens_at=timezone.now() + dt.timedelta(hours=1))
        scenario.prepare_auth(scen, auth="session")
        print(f"== setup (not measured): {time.perf_counter() - t:.1f} s; {params.families} families, "
              f"{params.centres} centres x {params.days} days x {params.places} places; demand "
              f"{scen.demand} child-days for {scen.capacity} places ({scen.demand / scen.capacity:.2f}x)")
        s = measure(params, scen, db_url=db_url, admin_url=admin_url, secret=secret, workers=args.workers,
                    threads=args.threads, burst=args.burst, arrival=args.arrival, timeout=args.timeout,
                    extra_env=dict(kv.split("=", 1) for kv in args.server_env))
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"== kept database {args.db}")
        else:
            rush.drop_database(admin_url, args.db)
    ok = (s["done"] == params.families and s["http_5xx"] == 0 and s["errors"] == 0 and s["timeouts"] == 0
          and s["invariants_ok"])
    print(f"== {'OK' if ok else 'FAILED'}: {s['throughput']:.0f} week-baskets/s (plain Django), "
          f"makespan {_s(s['makespan'])}, p99 {_s(s['p99'])}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
