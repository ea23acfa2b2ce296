"""Receipts of a server process, several per statement (PostgreSQL).

A receipt takes the organisation's receipt lock through its own commit, so that primary keys
become visible in the order they were given: receipt order is the order of the line (ADR 5).
One statement per request made that lock a convoy under a rush: each hand-over waits for the
next backend to be scheduled on a busy machine, and measured at the opening minute eight
requests stood in line for the lock on average while the processors were a fifth idle
(docs/benchmarks.md). Here one thread per process sends the receipts of every request of the
process that arrive while the previous statement runs, in their order of arrival, as one
statement (``services.receipt_batch``): one turn of the lock and one commit for all of them.
A request waits for its own receipt only, and is told its primary key once it is committed,
as before: nothing is acknowledged before it is durable.

A statement that fails for a batch of several (a value the database refuses in one of them)
is tried again one receipt at a time, so that one bad request does not fail its neighbours.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    connection,
)

from guichet.common import dbpool

from . import services

log = logging.getLogger(__name__)

IDLE_CLOSE = 1.0  # seconds without receipts before the thread gives its connection back
CONFIRM_WITHIN = 30.0  # seconds: a receipt not committed by then is answered "database busy"


@dataclass
class _Ticket:
    organisation_id: int
    row: list
    done: threading.Event = field(default_factory=threading.Event)
    pk: int | None = None
    error: BaseException | None = None


class _Batcher:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cond = threading.Condition()
        self.pending: list[_Ticket] = []
        self.thread: threading.Thread | None = None
        self.stopping = False

    def receive(self, organisation_id: int, row: list) -> int | None:
        ticket = _Ticket(organisation_id, row)
        with self.cond:
            self.pending.append(ticket)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="guichet-basket-receipts", daemon=True)
                self.thread.start()
            self.cond.notify()
        dbpool.release()  # the receipt thread may need it (a pool's last connection)
        if not ticket.done.wait(CONFIRM_WITHIN):
            # The database does not answer: "busy, send the same request again" (the same
            # idempotency key finds this basket if it was received after all).
            raise OperationalError("the receipt was not confirmed in time")
        if ticket.error is not None:
            raise ticket.error
        return ticket.pk

    def _run(self) -> None:
        while not self.stopping:
            with self.cond:
                if not self.pending:
                    self.cond.wait(IDLE_CLOSE)
                batch, self.pending = self.pending, []
            if not batch:
                connection.close()  # idle: give the connection back
                continue
            by_organisation: dict[int, list[_Ticket]] = {}
            for ticket in batch:
                by_organisation.setdefault(ticket.organisation_id, []).append(ticket)
            for organisation_id, tickets in by_organisation.items():
                self._send(organisation_id, tickets)
        connection.close()

    def _send(self, organisation_id: int, tickets: list[_Ticket]) -> None:
        try:
            pks = services.receipt_batch(organisation_id, [t.row for t in tickets])
        except Exception as exc:  # noqa: BLE001 - handed to the requests, never lost
            with contextlib.suppress(Exception):
                connection.close()  # a broken connection is opened again by the next statement
            if len(tickets) > 1 and isinstance(exc, DataError | IntegrityError | ProgrammingError):
                for ticket in tickets:  # one bad value must not fail its neighbours
                    self._send(organisation_id, [ticket])
                return
            # The database is unreachable or failing (or one request alone failed): every request
            # of the batch hears it at once ("busy, send again"), none waits for the others' retries.
            if not isinstance(exc, DatabaseError):
                log.exception("receipts: a batch of %s failed", len(tickets))
            for ticket in tickets:
                ticket.error = exc
                ticket.done.set()
            return
        for ticket, pk in zip(tickets, pks, strict=True):
            ticket.pk = pk
            ticket.done.set()


_lock = threading.Lock()
_batcher: _Batcher | None = None


def _get() -> _Batcher:
    global _batcher
    with _lock:
        if _batcher is None or _batcher.pid != os.getpid():  # new process (fork): its own thread
            _batcher = _Batcher()
        return _batcher


def receive(organisation_id: int, row: list) -> int | None:
    """Receives one basket (its prepared column values) with the others of this process that
    arrive meanwhile; returns its primary key once committed, None if its key was already
    received. Raises what the database raised for it."""
    return _get().receive(organisation_id, row)


def stop(timeout: float = 5.0) -> None:
    """Stops this process's receipt thread (tests, before their database is dropped)."""
    global _batcher
    with _lock:
        batcher, _batcher = _batcher, None
    if batcher is None or batcher.pid != os.getpid() or batcher.thread is None:
        return
    batcher.stopping = True
    with batcher.cond:
        batcher.cond.notify_all()
    batcher.thread.join(timeout)
    with batcher.cond:  # arrived too late for the last statement: told, not left waiting
        left, batcher.pending = batcher.pending, []
    for ticket in left:
        ticket.error = OperationalError("the server is stopping")
        ticket.done.set()
