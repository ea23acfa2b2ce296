"""Crash safety: nothing acknowledged is lost, nothing is overbooked, a retry acts once.

Concurrent booking, deposit and payment requests go through the HTTP stack (gunicorn, threaded
workers, DEBUG off) to a PRIVATE PostgreSQL cluster (``cluster.py``: initdb in a temporary
directory, its own port — the shared cluster is never touched), while first the application
server and then PostgreSQL are killed with ``kill -9`` at random moments and restarted. Then:

- every acknowledged request is in the database, as the client was told (basket and its
  answer, bookings, receipt number and amount);
- no session part is above its capacity, and each booked counter equals its active bookings;
- each request of unknown outcome, replayed twice with its idempotency key, gets a definitive
  answer, the same both times, and acted once (one basket / one payment per key, one journaled
  answer per basket, gapless receipt numbers, no money allocated twice).

The negative control runs the same client against the same cluster restarted with durability
weakened (``fsync=off``, ``synchronous_commit=off``, a sleepy WAL writer) and kills it: the
checker must report acknowledged writes as lost — proof that it would see them.

Bounded: each test stays under a minute (the cluster's set-up is shared by the module).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bench import server as http_server
from django.conf import settings

from . import cluster as pg
from .load import BOOKING, DEPOSIT, Target, check, replay, run_clients

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]  # the test database: the schema to copy

ROOT = Path(__file__).resolve().parents[2]
DB = "crash"
FAMILIES, SESSIONS, CAPACITY = 40, 6, 4


def _test_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict  # the test database, once pytest-django has set it up
    auth = db["USER"] or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def private_cluster(django_db_setup, django_db_blocker):
    """A private cluster holding the test database's schema (copied, not migrated: faster) and
    the scenario. Module-scoped: both tests use it."""
    reason = pg.tools_available()
    if reason:
        pytest.skip(f"no private PostgreSQL cluster: {reason}")
    c = pg.Cluster()
    try:
        c.start()
        with django_db_blocker.unblock():
            c.copy_schema(_test_database_url(), DB)
        env = {**os.environ, "DATABASE_URL": c.url(DB), "SECRET_KEY": settings.SECRET_KEY, "DEBUG": "0",
               "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
        out = subprocess.run([sys.executable, "-m", "tests.crash.seed", str(FAMILIES), str(SESSIONS), str(CAPACITY)],
                             cwd=ROOT, env=env, capture_output=True, check=False, timeout=60)
        if out.returncode:
            raise RuntimeError(out.stderr.decode(errors="replace")[-3000:])
        c.scenario = json.loads(out.stdout.decode().strip().splitlines()[-1])
        yield c
    finally:
        c.destroy()


def _start_app(c: pg.Cluster) -> http_server.Server:
    return http_server.start(database_url=c.url(DB), secret_key=settings.SECRET_KEY, workers=2, threads=4,
                             timeout=30, extra_env={"CONN_MAX_AGE": "0"})


def _kill9(srv: http_server.Server) -> None:
    """``kill -9`` the whole application server (master and workers) at once."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(10)


def test_killing_the_app_server_then_postgres_loses_nothing_acknowledged(private_cluster):
    c = private_cluster
    scenario = c.scenario
    rng = random.Random(20261124)
    # The serving server and two standbys (as a load balancer's other nodes), started at once.
    with ThreadPoolExecutor(3) as pool:
        servers = list(pool.map(lambda _i: _start_app(c), range(3)))
    target = Target(servers[0].port)
    faults: list[str] = []
    outage = [0.0, 0.0]  # when PostgreSQL was down
    stop = threading.Event()

    def inject():
        try:
            # Twice: the serving server is killed with kill -9 at a random moment, in-flight
            # requests and all, and traffic goes to the next one. Then PostgreSQL is killed
            # with kill -9 (every process of the cluster) and restarted: crash recovery.
            for i in range(2):
                time.sleep(rng.uniform(0.7, 2.0))
                _kill9(servers[i])
                faults.append("app")
                target.set(servers[i + 1].port)
            time.sleep(rng.uniform(1.0, 2.5))
            outage[0] = time.monotonic()
            c.kill9()
            faults.append("postgres")
            time.sleep(rng.uniform(0.2, 1.0))
            c.start()
            outage[1] = time.monotonic()
            time.sleep(3.0)  # traffic after the recovery too
        finally:
            stop.set()

    killer = threading.Thread(target=inject, daemon=True)
    started = time.monotonic()
    killer.start()
    requests = run_clients(target, scenario, seconds=45, threads=6, seed=1, prefix="run", stop=stop)
    killer.join(30)
    assert faults == ["app", "app", "postgres"], faults

    # After the faults: every request of unknown outcome replayed twice with its key, and a
    # sample of the acknowledged deposits and payments once (the same receipt must come back).
    try:
        unknown = [r for r in requests if r.outcome == "unknown"]
        acknowledged = [r for r in requests if r.outcome == "acknowledged" and r.kind != BOOKING]
        again = rng.sample(acknowledged, k=min(10, len(acknowledged)))

        def replay_all(req):
            req.replays = [replay(target, scenario, req) for _ in range(2 if req.outcome == "unknown" else 1)]

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(replay_all, unknown + again))
        findings = check(c.url(DB), scenario["organisation"], requests)
    finally:
        servers[-1].stop()
    elapsed = time.monotonic() - started
    by_kind = {k: sum(1 for r in requests if r.kind == k) for k in (BOOKING, DEPOSIT, "payment")}
    statuses = Counter(r.status for r in requests)
    during = sum(1 for r in requests if r.status >= 500 and outage[0] - 6 <= r.sent_at <= outage[1])
    summary = (f"{len(requests)} requests {by_kind}, {findings.acknowledged} acknowledged, "
               f"{findings.unknown} of unknown outcome (HTTP statuses {dict(statuses)}; 5xx while PostgreSQL "
               f"was down or recovering: {during}; outage {outage[1] - outage[0]:.1f} s), faults {faults}, "
               f"{elapsed:.0f} s")
    print(summary)  # noqa: T201 - shown with -s: what the run exercised
    assert findings.acknowledged >= 10 and all(by_kind.values()), summary
    assert findings.unknown >= 1, f"no request was caught by a fault: the test proved nothing ({summary})"
    assert not findings.problems(), (summary, findings.problems())
    # The journal's hash chain is intact after the kills (every entry was written in its
    # service's transaction: a killed transaction left no half-written entry).
    verify = subprocess.run([sys.executable, "-m", "guichet.cli", "journal", "verify"], cwd=ROOT, capture_output=True,
                            timeout=60, env={**os.environ, "DATABASE_URL": c.url(DB), "DEBUG": "0",
                                             "SECRET_KEY": settings.SECRET_KEY,
                                             "GUICHET_INSECURE_DEV_KEY": "1",  # field key: the tests' own
                                             "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"})
    assert verify.returncode == 0 and b"journal OK" in verify.stdout, verify.stdout[-2000:] + verify.stderr[-2000:]


def test_negative_control_weakened_durability_is_detected(private_cluster):
    """Same client, same checker; PostgreSQL acknowledges commits before writing their WAL and
    is killed while requests are acknowledged: the checker must report lost writes."""
    c = private_cluster
    scenario = c.scenario
    detected = []
    for attempt in range(3):  # a kill can fall just after a WAL page was written: try again
        c.stop()
        c.start(pg.WEAKENED)
        srv = _start_app(c)
        target = Target(srv.port)
        try:
            # Deposits only: each is one short transaction, acknowledged with its receipt.
            requests = run_clients(target, scenario, seconds=2.5, threads=4, seed=100 + attempt,
                                   prefix=f"control{attempt}", kinds=(DEPOSIT,))
            c.kill9()  # right after the last acknowledgements
        finally:
            _kill9(srv)
        c.start(pg.DURABLE)  # crash recovery replays what reached the WAL, nothing more
        findings = check(c.url(DB), scenario["organisation"], requests)
        if findings.lost:
            detected = findings.lost
            break
    # The cluster is durable again here: every attempt ended by restarting it so.
    assert c.settings == pg.DURABLE
    assert detected, "weakened durability lost nothing in three tries: the checker may be blind"
