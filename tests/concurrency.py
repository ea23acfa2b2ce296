"""Running the same work in several threads at once, for the concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_together(work: Callable[[int], object], threads: int, *, timeout: float = 120) -> list[BaseException]:
    """Call ``work(n)`` for n in 0..threads-1, each in its own thread (so its own database
    connection), all released at the same moment by a barrier. Each thread closes its connection
    when done. Returns whatever the calls raised, so the test can assert on it."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            work(n)
        except BaseException as e:  # noqa: BLE001 - returned to the test, which asserts on it
            errors.append(e)
        finally:
            connection.close()

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=timeout)
    return errors
