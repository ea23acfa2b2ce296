"""Taking a basket in under load: receipt first, then an answer within a bounded time.

``services.basket_submit`` receives a basket (its place in line) and answers the queue of
received baskets in receipt order. In front of it, per process:

- **one drainer.** A background thread per process (``_Drainer``) answers the queue: it is woken
  by every receipt (and sweeps every few seconds for baskets left received, e.g. by a process
  that was stopped), and calls ``services.basket_submit`` for the oldest received basket of the
  organisation, which answers every basket received so far in ``seq`` order (group commit), until
  none is left. Request threads never drain (so they never pile up on the queue's advisory
  lock): they wait on an ``Event`` set by the drainer when their basket is answered.
- **bounded waiting.** At most ``GUICHET_BOOKING_CONCURRENCY`` request threads wait for an answer
  at once (a semaphore; keep it below gunicorn's ``--threads`` so that threads stay free to take
  receipts and answer polls). When every slot is taken, the basket is still *received* (it keeps
  its place in line: the drainer answers it in order) and the caller answers at once "busy":
  received, in line (HTTP 202 with ``Retry-After`` and the URL to poll; the receipt needs no
  slot, only waiting for the answer does). An answer is awaited at most ``GUICHET_BOOKING_ANSWER_WAIT``
  seconds (default 2); after that the caller answers "received" (HTTP 202) with the basket's id
  to poll.
- **a poll only reads.** ``read`` returns the basket as it is ("done" or "received"); it neither
  waits nor drains.

On PostgreSQL there is **one drainer for the whole deployment**, not one per process
(``_PgIntake``): whoever holds the drainer's session lock (``pg_try_advisory_lock``) drains.
That is ``guichet bookings drainer`` when it runs (a process of its own, its own GIL), else one
of the server's processes, whichever takes the lock first (a standby takes over within
``LEADER_RETRY`` seconds if it stops). Every receipt wakes it (``NOTIFY`` in the receipt's own
statement); after each round it publishes ``NOTIFY guichet_basket_answered`` with the head of
the line and the round's duration, and every process reads the answers of the requests waiting
in it (one query for all of them) and learns the pace of the line (``Retry-After``). Several
processes draining would take turns on the queue's lock and hear of their own answers only.

Where another thread cannot see this connection's data (a test's transaction, SQLite's shared
in-memory test database) there is no background thread: ``answer`` drains in the calling thread,
under a process-wide lock.

The same idempotency key always designates the same basket: a retry or a poll never books twice.
See docs/operations.md ("Booking under load") for the settings.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from guichet.common import dbpool
from guichet.common.actor import Actor
from guichet.common.fastread import members, read_values

from . import services
from .models import Basket

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4  # request threads waiting for an answer, per process (< gunicorn threads)
DEFAULT_WAIT = 2.0
DEFAULT_DRAIN_PERIOD = 0.1  # seconds between drain rounds under a steady flow (see ``drain``)
RETRY_AFTER = 1  # seconds, sent with 503 and 202 (at least)
MAX_RETRY_AFTER = 10  # seconds: Retry-After grows with the line ahead of the basket, up to this
FAILED_ROUND_PAUSE = 5.0  # seconds: a line whose round failed waits this long before another try
SWEEP_EVERY = 5.0  # seconds: the drainer looks for baskets left received by anyone
IDLE_CLOSE = 1.0  # seconds without work before the drainer gives its connection back (CONN_MAX_AGE=0)
DRAINER_ACTOR = Actor.system("bookings-drainer")
RECEIVED_CHANNEL = "guichet_basket_received"  # NOTIFY'd by each receipt (services._receipt_sql)
ANSWERED_CHANNEL = services.ANSWERED_CHANNEL  # NOTIFY'd after each round (drainer, paper forms)
LEADER_LOCK = (0x47550003, 0)  # pg_try_advisory_lock: who drains (session lock, held while it lives)
SERVICE_LOCK = (0x47550004, 0)  # held by `guichet bookings drainer` while it runs: web processes step down
LEADER_RETRY = 2.0  # seconds: a standby process tries to become the drainer this often


def _configured(name: str, default):
    """A setting of this module: Django's settings when the deployment sets it there, else the
    environment variable of the same name, else ``default``."""
    value = getattr(settings, name, None)
    return os.environ.get(name, default) if value is None else value


def concurrency() -> int:
    try:
        return max(0, int(_configured("GUICHET_BOOKING_CONCURRENCY", DEFAULT_CONCURRENCY)))
    except (TypeError, ValueError):
        return DEFAULT_CONCURRENCY


def drain_period() -> float:
    """Seconds between the starts of two drain rounds under a steady flow (see ``drain``)."""
    try:
        return min(1.0, max(0.0, float(_configured("GUICHET_BOOKING_DRAIN_PERIOD", DEFAULT_DRAIN_PERIOD))))
    except (TypeError, ValueError):
        return DEFAULT_DRAIN_PERIOD


def answer_wait() -> float:
    try:
        return max(0.0, float(_configured("GUICHET_BOOKING_ANSWER_WAIT", DEFAULT_WAIT)))
    except (TypeError, ValueError):
        return DEFAULT_WAIT


def receipt_batching() -> bool:
    """``GUICHET_BOOKING_RECEIPT_BATCHING`` (default on): off, each request sends its own
    receipt statement from its own connection (``bookings.receipts``)."""
    return str(_configured("GUICHET_BOOKING_RECEIPT_BATCHING", "1")).strip().lower() not in {
        "0", "false", "no", "off"}


class _Slots:
    """The waiting slots (a semaphore), rebuilt if the configured size changes (tests)."""

    _lock = threading.Lock()
    _size: int | None = None
    _sem: threading.Semaphore | None = None

    @classmethod
    def get(cls) -> threading.Semaphore:
        size = concurrency()
        with cls._lock:
            if cls._size != size or cls._sem is None:
                cls._size = size
                cls._sem = threading.Semaphore(size)
            return cls._sem


def _answered_sql(qn, columns: list[str], member: str) -> str:
    """``_notify_answered``'s read: which of the baskets waited for here are answered (every
    round, in every process: plain SQL, built once)."""
    meta = Basket._meta
    table = qn(meta.db_table)
    # Identifiers from the model, quoted; values are parameters.
    return (f"SELECT {', '.join(columns)} FROM {table} WHERE {table}.{qn(meta.pk.column)} {member} "  # noqa: S608
            f"AND {table}.{qn(meta.get_field('status').column)} = %s")


class _Drainer:
    """The process's single drainer thread and the requests waiting for it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cond = threading.Condition()
        self.orgs: set[int] = set()
        self.waiters: dict[int, list[threading.Event]] = {}
        self.answers: dict[int, tuple] = {}  # pk -> (status, result, answered_at), for waiters
        self.thread: threading.Thread | None = None
        self.stopping = False

    # --- request side ---

    def kick(self, organisation_id: int) -> None:
        with self.cond:
            self.orgs.add(organisation_id)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="guichet-basket-drainer", daemon=True)
                self.thread.start()
            self.cond.notify_all()

    def wait(self, basket: Basket, timeout: float) -> bool:
        """Waits for the drainer to answer ``basket``; True (and the basket updated in place,
        without a query) when it did within ``timeout``."""
        event = threading.Event()
        with self.cond:
            self.waiters.setdefault(basket.pk, []).append(event)
        try:
            self.kick(basket.organisation_id)
            self._registered(basket)
            dbpool.release()  # a waiting request holds no connection (with a pool)
            event.wait(timeout)
        finally:
            with self.cond:
                events = self.waiters.get(basket.pk, [])
                if event in events:
                    events.remove(event)
                if not events:
                    self.waiters.pop(basket.pk, None)
                answer = self.answers.pop(basket.pk, None)  # a double click's twin reads instead
        if answer is None:
            return False
        basket.status, basket.result, basket.answered_at = answer
        return True

    def _registered(self, basket: Basket) -> None:
        """Called once a request waits for ``basket`` (PostgreSQL: an answer heard before)."""

    # --- drainer side ---

    def _notify_answered(self, answered: list[int] | None = None, *, upto: int | None = None,
                         only: int | None = None) -> None:
        """Wakes the requests of this process whose basket is answered (one query for all of
        them). ``upto``: only baskets up to that primary key can have been (a round's last).
        ``only``: that basket alone (a request that starts waiting after its answer was heard)."""
        with self.cond:
            if only is not None:
                waiting = [only] if only in self.waiters else []
            else:
                waiting = [pk for pk in self.waiters if upto is None or pk <= upto]
        if not waiting:
            return
        done = read_values(Basket, "answered-waiting", _answered_sql, [
            members(connection, waiting), Basket.Status.DONE], fields=("id", "status", "result", "answered_at"))
        with self.cond:
            for pk, *answer in done:
                events = self.waiters.pop(pk, [])
                if events:
                    self.answers[pk] = tuple(answer)
                for event in events:
                    event.set()

    def _run(self) -> None:
        last_sweep = time.monotonic()
        while not self.stopping:
            with self.cond:
                if not self.orgs:
                    self.cond.wait(IDLE_CLOSE)
                org = self.orgs.pop() if self.orgs else None
            try:
                if org is not None:
                    drain(org, notify=self._notify_answered, period=drain_period())
                elif time.monotonic() - last_sweep >= SWEEP_EVERY:
                    last_sweep = time.monotonic()
                    left = set(Basket.objects.filter(status=Basket.Status.RECEIVED)
                               .values_list("organisation_id", flat=True).distinct())
                    with self.cond:
                        self.orgs |= left
                    if not left:
                        self._notify_answered()
                        connection.close()
                else:
                    connection.close()  # idle: give the connection back
            except Exception:  # noqa: BLE001 - never let the drainer die; the baskets stay in line
                log.exception("basket drainer: drain failed, retrying")
                if org is not None:
                    with self.cond:
                        self.orgs.add(org)
                with contextlib.suppress(Exception):
                    connection.close()
                time.sleep(0.5)
        connection.close()


class _PgIntake(_Drainer):
    """PostgreSQL: one drainer for the deployment (see the module's docstring). Each process
    runs one thread with one connection of its own: it listens for answers (and wakes the
    requests waiting in this process), and drains whenever it holds ``LEADER_LOCK``. A web
    server process that drains steps down as soon as the drainer service runs
    (``SERVICE_LOCK``), so that the service, with an interpreter of its own, drains."""

    def __init__(self) -> None:
        super().__init__()
        self.leader = False
        self.service = False  # this is `guichet bookings drainer`
        self.conn = None  # the thread's own connection: LISTEN and the drainer's session locks
        self._draining = 0  # the organisation of the round under way
        self.paused: dict[int, float] = {}  # organisation -> until when its failing line waits
        self._uptos: list[int | None] = []

    def kick(self, organisation_id: int) -> None:
        """Starts this process's thread if need be; the receipt's own NOTIFY wakes the drainer."""
        with self.cond:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="guichet-basket-drainer", daemon=True)
                self.thread.start()

    def _registered(self, basket: Basket) -> None:
        # Answered before this request started to wait (its NOTIFY came first): read it now.
        if _Pace.answered(basket):
            # Its own answer only: the others waiting here were woken by the rounds they heard of
            # (reading them all for each late request cost a query of every waiting basket each).
            self._notify_answered(only=basket.pk)

    # --- the thread ---

    def _connect(self):
        # Its own connection, with keepalives: a leader whose network died must lose its lock
        # (and a standby take over) in about a minute, not hours. Outside any pool
        # (``_own_connection``).
        conn = _own_connection(keepalives=1, keepalives_idle=20, keepalives_interval=5, keepalives_count=4)
        if self.service:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", SERVICE_LOCK)  # never contended for long
        else:
            conn.execute(f"LISTEN {ANSWERED_CHANNEL}")  # waiters live in web processes only
        return conn

    def _try_lead(self) -> bool:
        if not self.service and self._service_runs():
            return False  # the service drains (or is about to)
        if not self.conn.execute("SELECT pg_try_advisory_lock(%s, %s)", LEADER_LOCK).fetchone()[0]:
            return False
        self.conn.execute(f"LISTEN {RECEIVED_CHANNEL}")
        left = set(Basket.objects.filter(status=Basket.Status.RECEIVED)
                   .values_list("organisation_id", flat=True).distinct())
        with self.cond:
            self.leader = True
            self.orgs |= left
        log.info("basket drainer: this process drains the queue (pid %s)", os.getpid())
        return True

    def _service_runs(self) -> bool:
        row = self.conn.execute(
            # Advisory locks belong to a database: another deployment's drainer on the same
            # PostgreSQL server (another town, a staging copy) is not this one's.
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            SERVICE_LOCK).fetchone()
        return row is not None

    def _step_down(self) -> None:
        """A web process hands the queue over to the drainer service, between two rounds."""
        self.conn.execute(f"UNLISTEN {RECEIVED_CHANNEL}")
        self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", LEADER_LOCK)
        with self.cond:
            self.leader = False
            self.orgs.clear()
        log.info("basket drainer: the drainer service takes over (pid %s steps down)", os.getpid())

    def _published(self, answered: list[int]) -> None:
        """After a round: tells every process (payload: organisation, head of the line, the
        round's last basket or 0 when the line is empty, the round's duration) and wakes this
        process's own waiters."""
        upto = answered[-1] if answered else None
        org = self._draining
        with _Pace.lock:
            head, seconds = _Pace.head.get(org), _Pace.round_seconds.get(org, 0.0)
        self.conn.execute("SELECT pg_notify(%s, %s)",
                          [ANSWERED_CHANNEL, services.answered_notice(org, head, upto, seconds)])
        self._notify_answered(upto=upto)

    def _heard(self, notify) -> None:
        if notify.channel == RECEIVED_CHANNEL:
            with contextlib.suppress(ValueError), self.cond:
                self.orgs.add(int(notify.payload))
        elif notify.channel == ANSWERED_CHANNEL and notify.pid != self.conn.info.backend_pid:
            try:
                org, head, upto, seconds = notify.payload.split()
                upto = int(upto) or None
                _Pace.saw(int(org), int(head) or None, float(seconds), answered_upto=upto)
            except ValueError:
                upto = None
            self._uptos.append(upto)  # the highest basket the round may have answered (None: any)

    def _listen(self, timeout: float) -> None:
        if timeout:
            dbpool.release()  # a listening drainer holds none of the pool's connections
        self._uptos: list[int | None] = []
        for notify in self.conn.notifies(timeout=timeout, stop_after=1):
            self._heard(notify)
        for notify in self.conn.notifies(timeout=0):  # and whatever else is already there
            self._heard(notify)
        if self._uptos:
            self._notify_answered(upto=None if None in self._uptos else max(self._uptos))

    def _drain_each(self) -> None:
        """One round for each organisation with baskets in line, in turn (one organisation's
        rush never holds up another's), then again while any line is not empty; rounds paced
        by ``drain_period`` under a steady flow. A round that fails for another reason than the
        database (a basket the code cannot answer) pauses that organisation's line for
        ``FAILED_ROUND_PAUSE`` seconds, logged, while the other lines go on."""
        with self.cond:
            orgs, self.orgs = sorted(self.orgs), set()
        started, full, drained = time.monotonic(), False, False
        for org in orgs:
            if self.paused.get(org, 0.0) > time.monotonic():
                with self.cond:
                    self.orgs.add(org)  # its turn comes after the pause
                continue
            self._draining = org
            try:
                answered = drain_round(org, notify=self._published)
            except (OperationalError, InterfaceError):
                raise  # the database or the connection: reconnect (``_run``)
            except Exception:  # noqa: BLE001 - one line's failure must not stop the others
                log.exception("basket drainer: a round of organisation %s failed; its line waits %s s",
                              org, FAILED_ROUND_PAUSE)
                self.paused[org] = time.monotonic() + FAILED_ROUND_PAUSE
                with self.cond:
                    self.orgs.add(org)
                continue
            drained = True
            if answered:
                with self.cond:
                    self.orgs.add(org)  # maybe more behind
                full = full or len(answered) >= services.DRAIN_BATCH
        if not drained:  # every line with baskets is paused: wait for the first to resume
            resume = min(self.paused.get(org, 0.0) for org in orgs)
            self._listen(max(0.0, min(resume - time.monotonic(), SWEEP_EVERY)))
            return
        self._listen(0)  # take in the receipts' NOTIFYs that came meanwhile
        period = drain_period()
        if self.orgs and not full and period:
            time.sleep(max(0.0, started + period - time.monotonic()))

    def _run(self) -> None:
        last_try = 0.0
        while not self.stopping:
            try:
                if self.conn is None or self.conn.closed:
                    self.leader = False
                    self.conn = self._connect()
                if not self.leader and time.monotonic() - last_try >= (0.5 if self.service else LEADER_RETRY):
                    last_try = time.monotonic()
                    self._try_lead()
                if not self.leader:
                    if self.service:
                        time.sleep(0.5)  # no LISTEN while waiting: a listener that never reads holds the queue back
                    else:
                        self._listen(LEADER_RETRY)
                    continue
                if not self.service and time.monotonic() - last_try >= LEADER_RETRY:
                    last_try = time.monotonic()
                    if self._service_runs():
                        self._step_down()
                        continue
                if not self.orgs:
                    self._listen(SWEEP_EVERY)
                    with self.cond:
                        if not self.orgs:  # a quiet moment: look for baskets left received
                            self.orgs |= set(Basket.objects.filter(status=Basket.Status.RECEIVED)
                                             .values_list("organisation_id", flat=True).distinct())
                    continue
                self._drain_each()
            except Exception:  # noqa: BLE001 - never let the drainer die; the baskets stay in line
                log.exception("basket drainer: failed, reconnecting")
                with self.cond:
                    self.leader = False
                with contextlib.suppress(Exception):
                    self.conn.close()
                self.conn = None
                with contextlib.suppress(Exception):
                    connection.close()
                time.sleep(0.5)
        with contextlib.suppress(Exception):
            self.conn.close()
        connection.close()

    def run_forever(self) -> None:
        """``guichet bookings drainer``: this process drains; a web process that drained hands
        over within ``LEADER_RETRY`` seconds."""
        self.service = True
        self.thread = threading.current_thread()
        self._run()


def _own_connection(**params):
    """A connection in autocommit mode, opened for the caller alone: never one of the pool's
    (``GUICHET_DB_POOL``), from which Django's ``get_new_connection`` would take it for good,
    without ``params`` and, once closed, without giving it back."""
    conn = connection.Database.connect(**{**connection.get_connection_params(), **params})
    conn.autocommit = True
    return conn


_drainer_lock = threading.Lock()
_drainer: _Drainer | None = None
_inline_lock = threading.Lock()


def drainer() -> _Drainer:
    global _drainer
    with _drainer_lock:
        if _drainer is None or _drainer.pid != os.getpid():  # new process (fork): its own drainer
            _drainer = _PgIntake() if connection.vendor == "postgresql" else _Drainer()
        return _drainer


def run_drainer() -> None:
    """``guichet bookings drainer``: this process answers the queue for the whole deployment
    (PostgreSQL); it waits for the drainer's lock while another process holds it."""
    intake = drainer()
    if not isinstance(intake, _PgIntake):
        raise RuntimeError("the drainer process needs PostgreSQL")
    from guichet.common.startup import tune_garbage_collector

    tune_garbage_collector()
    intake.run_forever()


def stop(timeout: float = 5.0) -> None:
    """Stops this process's drainer thread and closes its connections (tests, before their
    database is dropped). The next basket starts a new one."""
    global _drainer
    with _drainer_lock:
        intake, _drainer = _drainer, None
    if intake is None or intake.pid != os.getpid() or intake.thread is None:
        return
    intake.stopping = True
    with intake.cond:
        intake.cond.notify_all()
    if isinstance(intake, _PgIntake):  # wake it from its LISTEN (autocommit: delivered now)
        with contextlib.suppress(Exception):
            waker = _own_connection()
            waker.execute("SELECT pg_notify(%s, %s)", [ANSWERED_CHANNEL, "0 0 0 0"])
            waker.close()
    if intake.thread is not threading.current_thread():
        intake.thread.join(timeout)
    if isinstance(intake, _PgIntake) and intake.conn is not None:
        with contextlib.suppress(Exception):
            intake.conn.close()  # a thread that did not stop in time keeps no session open


class _Pace:
    """What this process saw of the queue: the oldest received basket (the head of the line)
    and how long one drain round takes, to tell a family when to come back (``Retry-After``)
    instead of letting every waiting page poll each second while the drainer needs the CPU.

    A round answers everything received before it started, up to ``DRAIN_BATCH`` baskets, so a
    basket ``n`` places behind the head is answered within ``ceil(n / DRAIN_BATCH) + 1`` rounds
    (+1: it may have arrived just after the current round read the line). Measuring "baskets per
    second" instead would read the arrival rate, not the drain's: a round of 6 baskets taking 0.3 s
    is not a drain of 20 per second."""

    lock = threading.Lock()
    head: dict[int, int] = {}  # organisation -> pk of the oldest received basket
    round_seconds: dict[int, float] = {}  # organisation -> duration of a drain round (moving average)
    upto: dict[int, int] = {}  # organisation -> the highest basket known answered (rounds go in pk order)

    @classmethod
    def saw(cls, organisation_id: int, head_pk: int | None, seconds: float = 0.0, *,
            answered_upto: int | None = None) -> None:
        with cls.lock:
            if head_pk is None:
                cls.head.pop(organisation_id, None)
            else:
                cls.head[organisation_id] = head_pk
                answered_upto = max(answered_upto or 0, head_pk - 1)
            if answered_upto:
                cls.upto[organisation_id] = max(cls.upto.get(organisation_id, 0), answered_upto)
            if seconds > 0:
                old = cls.round_seconds.get(organisation_id)
                cls.round_seconds[organisation_id] = seconds if old is None else 0.5 * old + 0.5 * seconds

    @classmethod
    def answered(cls, basket: Basket) -> bool:
        """True when a round known here answered baskets up to ``basket`` or beyond: receipt
        order is commit order (ADR 5), so a round that answered a later basket answered it."""
        with cls.lock:
            return cls.upto.get(basket.organisation_id, 0) >= basket.pk

    @classmethod
    def still_in_line(cls, basket: Basket) -> bool:
        """True when the drainer's last look at the queue had ``basket`` in it (not answered)."""
        with cls.lock:
            head = cls.head.get(basket.organisation_id)
        return head is not None and head <= basket.pk

    @classmethod
    def retry_after(cls, basket: Basket) -> int:
        with cls.lock:
            head, seconds = cls.head.get(basket.organisation_id), cls.round_seconds.get(basket.organisation_id)
        if head is None or not seconds or basket.pk < head:
            return RETRY_AFTER
        rounds = math.ceil((basket.pk - head + 1) / services.DRAIN_BATCH) + 1
        return int(min(MAX_RETRY_AFTER, max(RETRY_AFTER, math.ceil(rounds * seconds))))


def busy_logged(response, *, what: str, basket_id: int | None = None, level: int = logging.INFO):
    """A 503 "busy" (or "closed") is an expected answer, not a server error: Django would log
    every one at ERROR ("Service Unavailable: /api/...") and a rush would flood the error log.
    Logs it once here, at ``level``, with ids only (no name, no address, no path that could
    identify a family), and tells Django it is logged. Returns the response."""
    log.log(level, "%s: HTTP %s%s", what, response.status_code, f" (basket #{basket_id})" if basket_id else "")
    response._has_been_logged = True  # Django's log_response skips a response marked so
    return response


def retry_after(basket: Basket) -> int:
    """Seconds before asking again about a received basket: about when its turn should come."""
    return _Pace.retry_after(basket)


def drain_round(organisation_id: int, notify=None) -> list[int]:
    """One round of the organisation's line (``services.basket_drain_round``); returns the
    baskets it answered. ``notify(answered_pks)`` is called after it, with ``[]`` when the line
    was empty."""
    started = time.monotonic()
    answered = services.basket_drain_round(organisation_id)
    if not answered:
        _Pace.saw(organisation_id, None)
    else:
        seconds = time.monotonic() - started
        log.debug("drain round: %s baskets in %.3f s", len(answered), seconds)
        # The head of the line is now just behind this round (a basket received meanwhile).
        _Pace.saw(organisation_id, answered[-1] + 1, seconds)
    if notify is not None:
        notify(answered)
    return answered


def drain(organisation_id: int, notify=None, *, period: float = 0.0) -> int:
    """Answers every received basket of the organisation, in receipt order, in the calling
    thread, round after round (``drain_round``). Returns how many rounds answered something.
    Used by the SQLite drainer thread, tests and the inline mode.

    ``period``: under a steady flow, a round starts at most every ``period`` seconds, so that each
    answers what arrived meanwhile in one go. A round costs about 10 ms of CPU whatever its size
    and 0.35 ms per basket (docs/benchmarks.md): rounds of 5 baskets cost 2.4 ms per basket,
    rounds of 40, 0.6 ms. A basket arriving on an empty line is answered at once."""
    rounds = 0
    while True:
        started = time.monotonic()
        answered = drain_round(organisation_id, notify)
        if not answered:
            return rounds
        rounds += 1
        if period and len(answered) < services.DRAIN_BATCH:
            time.sleep(max(0.0, started + period - time.monotonic()))


@dataclass
class Outcome:
    basket: Basket
    state: str  # "done", "received" (answer pending, poll), "busy" (received, come back later)


def receive(*, household, items, mode, actor, now, idempotency_key, channel) -> Basket:
    """The receipt alone (the basket's place in line), or the basket already received under
    this key: ``services.basket_receive``. Raises ``services.BookingError`` on bad input."""
    return services.basket_receive(
        household=household, items=items, mode=mode, actor=actor, now=now, idempotency_key=idempotency_key,
        channel=channel,
    )


def threads_usable() -> bool:
    """Another thread sees the receipt only if it is committed, and only through a database it
    can open (not SQLite's shared in-memory test database, which locks whole tables)."""
    if connection.in_atomic_block:
        return False
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict.get("NAME") or "")
        test_name = str((connection.settings_dict.get("TEST") or {}).get("NAME") or "")
        if ":memory:" in name or "mode=memory" in name or (name.startswith("file:") and not test_name):
            return False
    return True


def read(basket: Basket) -> Outcome:
    """A poll: the basket as it is now. Never waits, never drains."""
    basket.refresh_from_db()
    return Outcome(basket, "done" if basket.status == Basket.Status.DONE else "received")


def answer(basket: Basket, *, actor=None, wait: float | None = None) -> Outcome:
    """Waits at most ``wait`` seconds (``None``: ``GUICHET_BOOKING_ANSWER_WAIT``) for the drainer
    to answer a received basket, if a waiting slot is free; "busy" at once otherwise. Never
    raises for a busy database: the basket stays received and keeps its place in line."""
    if basket.status == Basket.Status.DONE:
        return Outcome(basket, "done")
    wait = answer_wait() if wait is None else max(0.0, wait)
    inline = not threads_usable()
    if not inline:
        drainer().kick(basket.organisation_id)
    if not inline and wait == 0:
        return Outcome(basket, "received")  # nobody waits: "received", poll (it was not done above)
    sem = _Slots.get()
    if not sem.acquire(blocking=False):
        return Outcome(basket, "busy")
    try:
        if inline:
            try:
                with _inline_lock:
                    drain(basket.organisation_id)
            except OperationalError:
                log.warning("basket #%s: database busy, left in line", basket.pk)
                return Outcome(basket, "busy")
        elif drainer().wait(basket, wait):
            return Outcome(basket, "done")
        elif _Pace.still_in_line(basket):
            # Not answered in time, and this process's drainer last saw it in line: "received",
            # poll, without a query (an answer landing just now is read by the poll).
            return Outcome(basket, "received")
    finally:
        sem.release()
    return read(basket)


def submit(*, household, items, mode, actor, idempotency_key, channel="portal", wait: float | None = None) -> Outcome:
    """Receive then answer (see the module's docstring)."""
    basket = receive(
        household=household, items=items, mode=mode, actor=actor, now=timezone.now(),
        idempotency_key=idempotency_key, channel=channel,
    )
    return answer(basket, actor=actor, wait=wait)
