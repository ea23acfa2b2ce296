"""With a connection pool (``GUICHET_DB_POOL``), a request that waits for another thread gives
its connection back first (``common.dbpool.release``), so a process keeps more requests waiting
than its pool has connections. Without it, the waiters hold every connection and the threads
they wait for starve: the control shows the pool running dry."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, connections

from guichet.common import dbpool

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAITERS = 4  # twice the pool


@pytest.fixture
def small_pool():
    settings_dict = connection.settings_dict
    saved = (settings_dict.get("CONN_MAX_AGE"), dict(settings_dict.get("OPTIONS") or {}))
    connection.close()
    settings_dict["CONN_MAX_AGE"] = 0
    settings_dict["OPTIONS"] = {**saved[1], "pool": {"min_size": 1, "max_size": WAITERS // 2, "timeout": 2}}
    try:
        yield
    finally:
        connection.close()
        connection.close_pool()
        settings_dict["CONN_MAX_AGE"], settings_dict["OPTIONS"] = saved


def _waiters(release, threads: int = WAITERS) -> list[BaseException]:
    """``threads`` threads each read, then wait for all the others (as a request waits for the
    receipt thread or the drainer), then read again."""
    barrier = threading.Barrier(threads, timeout=8)
    errors: list[BaseException] = []

    def request():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            release()
            barrier.wait()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except (OperationalError, threading.BrokenBarrierError) as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            connections.close_all()

    started = [threading.Thread(target=request) for _ in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join(20)
    return errors


def test_waiting_requests_hold_no_connection(small_pool):
    assert dbpool.pooled()
    assert _waiters(dbpool.release) == []


def test_control_without_release_the_pool_runs_dry(small_pool):
    errors = _waiters(lambda: None)
    assert any(isinstance(e, OperationalError) and "couldn't get a connection" in str(e) for e in errors)


def test_without_a_pool_release_keeps_the_connection(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    dbpool.release()
    assert not dbpool.pooled() and connection.connection is not None
