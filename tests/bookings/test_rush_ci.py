"""A short opening-day rush through the real HTTP stack, as an invariant test.

gunicorn (threaded workers, or gevent workers with a connection pool; DEBUG off) is started
against the test database; 40 families are
released within a tenth of a second by the benchmark's open-loop client (session cookie +
CSRF header, Idempotency-Key, 202/poll and 503/Retry-After followed). The test fails on any 5xx,
any error or timeout shown to a family, any overbooked session, a booked counter that differs
from the ledger, a fairness inversion (first come, first served by receipt order), a family
told something the ledger does not say, or a refusal for another reason than lack of room.
The full benchmark is ``bench/rush.py`` (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time

import pytest
from bench import checks, loadgen, scenario, server
from django.conf import settings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Refusals and waiting-list entries a family may legitimately get in a rush: no room.
NO_ROOM = {"full", "basket_incomplete", "incomplete", "not_all_available", "waitlisted", "-"}


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


# The opening-day deployment of docs/operations.md: gevent workers, each with a pool of 3
# connections for 40 families waiting at once (each request gives its connection back while it
# waits), answered on the request itself.
GEVENT = {"GUICHET_DB_POOL": "3", "GUICHET_BOOKING_CONCURRENCY": "100", "GUICHET_BOOKING_ANSWER_WAIT": "10"}


@pytest.fixture(params=["server", "drainer process", "gevent workers with a pool"])
def rush_server(request):
    """gunicorn alone (one of its processes drains the queue), or with ``guichet bookings
    drainer`` beside it (the deployment docs/operations.md describes), threaded or gevent."""
    gevent = request.param.startswith("gevent")
    srv = server.start(database_url=_database_url(), secret_key=settings.SECRET_KEY, workers=2,
                       threads=100 if gevent else 4, timeout=20, drainer=request.param != "server",
                       worker_class="gevent" if gevent else "gthread", extra_env=GEVENT if gevent else None)
    try:
        yield srv
    finally:
        srv.stop()


def test_rush_books_fairly_without_overbooking_nor_5xx(rush_server):
    from guichet.bookings.models import RegistrationWindow

    params = scenario.Params(families=40, centres=2, places=7, seed=7)
    scen = scenario.build(params, opens_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), prefix="ci")
    scenario.prepare_auth(scen, auth="session")
    assert scen.demand > 1.5 * scen.capacity  # a real rush: about twice as many requests as places

    opens = math.ceil(time.time()) + 1
    RegistrationWindow.objects.filter(pk=scen.window_id).update(
        opens_at=dt.datetime.fromtimestamp(opens, tz=dt.UTC))
    offsets = loadgen.schedule(params.families, burst=0.1, seed=params.seed)
    records, _pool = asyncio.run(loadgen.run(
        scen.families, offsets, host="127.0.0.1", port=rush_server.port, auth="session",
        connections=params.families, timeout=12.0, poll_interval=0.1, opens_at_epoch=opens))
    summary = loadgen.summarise(records)
    log = rush_server.log_tail(30)

    assert summary["http_5xx"] == 0, (summary["statuses"], log)
    assert summary["errors"] == 0 and summary["timeouts"] == 0, (summary["error_samples"], log)
    assert summary["done"] == params.families

    told = {r.household: r.booked for r in records}
    inv = checks.check(scen.organisation_id, told)
    report = "\n".join(inv.lines())
    assert inv.booked > 0, report
    assert inv.overbooked == 0, report
    assert inv.ledger_mismatches == 0, report
    assert inv.booked_twice_same_day == 0, report
    assert inv.inversions == 0, report
    assert inv.unanswered == 0 and inv.duplicate_baskets == 0, report
    assert inv.answer_mismatches == 0, report
    # A deadlock or an internal error must never reach a family disguised as a refusal.
    odd = {code: n for code, n in inv.refusal_codes.items() if code.split("/", 1)[1] not in NO_ROOM}
    assert not odd, report
    # The whole rush is answered quickly (each family within its 12 s timeout, checked above).
    assert summary["makespan"] < 12.0, summary
