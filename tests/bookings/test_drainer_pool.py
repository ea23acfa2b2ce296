"""The drainer thread of a web process beside a connection pool (``GUICHET_DB_POOL``).

Each web process's drainer thread listens on a connection of its own, with keepalives, outside
the pool; and while it listens it holds none of the pool's: every connection of the pool is
there for the process's requests, and a drainer that reconnects (its database restarted) takes
none of them away for good."""

from __future__ import annotations

import pytest

from guichet.bookings import intake
from tests.bookings.test_drainer import _wait_for
from tests.common.test_dbpool import WAITERS, _waiters, small_pool  # noqa: F401 - fixture

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

POOL = WAITERS // 2  # small_pool's max_size


def _requests_at_once() -> list[BaseException]:
    """As many request threads as the pool has connections, each holding one at the same moment."""
    return _waiters(lambda: None, threads=POOL)


def test_the_drainers_connection_is_its_own_and_a_reconnection_costs_the_pool_nothing(small_pool):  # noqa: F811
    for _ in range(POOL):  # the drainer reconnects, e.g. after the database restarted
        conn = intake._PgIntake()._connect()  # noqa: SLF001
        assert conn.info.get_parameters().get("keepalives_idle") == "20"  # a dead leader loses its lock
        conn.close()
    assert _requests_at_once() == []


def test_a_listening_drainer_holds_none_of_the_pools_connections(small_pool):  # noqa: F811
    drainer = intake.drainer()
    drainer.kick(0)  # starts this process's thread: it takes the lead, looks at the line, listens
    assert _wait_for(lambda: drainer.leader)
    assert _requests_at_once() == []
