"""Giving a request's database connection back while it waits for another thread.

With a connection pool (``GUICHET_DB_POOL``, Django's psycopg pool), a connection closed by
Django goes back to the pool. A request that waits for another thread of its process (the
receipt thread, the drainer's answer) gives its connection back first: a waiting request then
holds none, a process can keep many more requests waiting than it has connections, and the
thread it waits for never starves for a connection held by its own waiters.
"""

from __future__ import annotations

from django.db import connection


def pooled() -> bool:
    return getattr(connection, "pool", None) is not None


def release() -> None:
    """Gives this thread's connection back to the pool, if there is one and no transaction is
    open on it; the next query takes one again. Without a pool, does nothing."""
    if pooled() and connection.connection is not None and not connection.in_atomic_block:
        connection.close()
