"""Taking a basket in under load: receipt first, then an answer within a bounded time.

``services.basket_submit`` receives a basket (its place in line) and answers it in receipt
order. In front of it, per process:

- at most ``GUICHET_BOOKING_CONCURRENCY`` baskets are being answered at once (a semaphore).
  When every slot is taken, the basket is still *received* (it keeps its place in line: a later
  request of anyone answers it in order) and the caller answers at once "busy" (HTTP 503 with
  ``Retry-After``) instead of queueing threads until a timeout;
- an answer is awaited at most ``GUICHET_BOOKING_ANSWER_WAIT`` seconds (default 2); after that
  the caller answers "received" (HTTP 202) with the basket's id to poll, while the answer goes
  on in the background.

The same idempotency key always designates the same basket: a retry or a poll never books twice.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.conf import settings
from django.db import (
    IntegrityError,
    OperationalError,
    close_old_connections,
    connection,
)
from django.utils import timezone

from . import services
from .models import Basket

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 16
DEFAULT_WAIT = 2.0
RETRY_AFTER = 1  # seconds, sent with 503 and 202


def concurrency() -> int:
    value = getattr(settings, "GUICHET_BOOKING_CONCURRENCY", None)
    if value is None:
        value = os.environ.get("GUICHET_BOOKING_CONCURRENCY", DEFAULT_CONCURRENCY)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return DEFAULT_CONCURRENCY


def answer_wait() -> float:
    value = getattr(settings, "GUICHET_BOOKING_ANSWER_WAIT", None)
    if value is None:
        value = os.environ.get("GUICHET_BOOKING_ANSWER_WAIT", DEFAULT_WAIT)
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return DEFAULT_WAIT


class _Slots:
    """The semaphore and worker threads, rebuilt if the configured size changes (tests)."""

    _lock = threading.Lock()
    _size: int | None = None
    _sem: threading.Semaphore | None = None
    _pool: ThreadPoolExecutor | None = None

    @classmethod
    def get(cls) -> tuple[threading.Semaphore, ThreadPoolExecutor]:
        size = concurrency()
        with cls._lock:
            if cls._size != size or cls._sem is None:
                cls._size = size
                cls._sem = threading.Semaphore(size)
                cls._pool = ThreadPoolExecutor(max_workers=max(1, size), thread_name_prefix="basket")
            return cls._sem, cls._pool


@dataclass
class Outcome:
    basket: Basket
    state: str  # "done", "received" (answer pending, poll), "busy" (received, come back later)


def receive(*, household, items, mode, actor, now, idempotency_key, channel) -> Basket:
    """The receipt alone (the basket's place in line), or the basket already received under
    this key. Raises ``services.BookingError`` on bad input."""
    key = str(idempotency_key or "").strip()
    existing = Basket.objects.filter(household=household, idempotency_key=key).first()
    if existing is not None:
        return existing
    if not key or len(key) > services.MAX_KEY_LENGTH:
        raise services.BookingError("invalid_key", "Idempotency-Key: 1 to 100 characters.", "idempotency_key")
    if mode not in Basket.Mode.values:
        raise services.BookingError("invalid_mode", "mode: all_or_nothing or partial.", "mode")
    cleaned = services._clean_items(items)  # noqa: SLF001 - same checks as basket_submit
    try:
        return services._receive(  # noqa: SLF001 - the receipt step of basket_submit
            household=household, items=cleaned, mode=mode, actor=actor, now=now, key=key, channel=channel
        )
    except IntegrityError:
        existing = Basket.objects.filter(household=household, idempotency_key=key).first()
        if existing is None:
            raise
        return existing


def _answer(basket_id: int, actor) -> None:
    close_old_connections()
    try:
        basket = Basket.objects.select_related("household").get(pk=basket_id)
        if basket.status != Basket.Status.DONE:
            services.basket_submit(
                household=basket.household, items=basket.items, mode=basket.mode, actor=actor,
                now=timezone.now(), idempotency_key=basket.idempotency_key, channel=basket.channel,
            )
    finally:
        close_old_connections()


def _threads_usable() -> bool:
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


def _confirm(basket: Basket) -> Outcome:
    """An answered basket (its confirmation e-mail is queued by the services when answered)."""
    return Outcome(basket, "done")


def _after(basket: Basket) -> Outcome:
    basket.refresh_from_db()
    if basket.status == Basket.Status.DONE:
        return _confirm(basket)
    return Outcome(basket, "received")


def answer(basket: Basket, *, actor, wait: float | None) -> Outcome:
    """Answers a received basket within ``wait`` seconds if a slot is free. ``wait=None``
    answers in the calling thread (no time limit; the HTML form). Never raises for a busy
    database: the basket stays received and the caller says "busy"."""
    if basket.status == Basket.Status.DONE:
        return Outcome(basket, "done")
    sem, pool = _Slots.get()
    if not sem.acquire(blocking=False):
        return Outcome(basket, "busy")
    if wait is None or not _threads_usable():
        try:
            services.basket_submit(
                household=basket.household, items=basket.items, mode=basket.mode, actor=actor,
                now=timezone.now(), idempotency_key=basket.idempotency_key, channel=basket.channel,
            )
        except OperationalError:
            log.warning("basket #%s: database busy, left in line", basket.pk)
            return Outcome(basket, "busy")
        finally:
            sem.release()
        return _after(basket)

    def job():
        try:
            _answer(basket.pk, actor)
        finally:
            sem.release()

    future = pool.submit(job)
    try:
        future.result(timeout=wait)
    except FutureTimeout:
        pass
    except Exception:  # noqa: BLE001 - the basket stays received; a poll or a later basket answers it
        log.exception("basket #%s: answer failed, left in line", basket.pk)
    return _after(basket)


def submit(*, household, items, mode, actor, idempotency_key, channel="portal", wait: float | None = None) -> Outcome:
    """Receive then answer (see the module's docstring)."""
    basket = receive(
        household=household, items=items, mode=mode, actor=actor, now=timezone.now(),
        idempotency_key=idempotency_key, channel=channel,
    )
    return answer(basket, actor=actor, wait=wait)
