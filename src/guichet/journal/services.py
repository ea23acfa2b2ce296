"""Appending to the journal. Called by every service function, inside its transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from guichet.common.actor import Actor
from guichet.common.canonical import digest

from .chain import EntryData, entry_hash
from .models import Entry, Head


class JournalError(RuntimeError):
    pass


def _ref(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    meta = obj._meta
    return f"{meta.app_label}.{meta.model_name}:{obj.pk}"


def journal_append(
    *,
    actor: Actor,
    operation: str,
    objects: Iterable[Any] = (),
    payload: Any = None,
    details: dict | None = None,
    organisation_id: int | None = None,
    now=None,
) -> Entry:
    """Append one entry to the organisation's chain. Must run inside the caller's transaction.

    ``payload`` is hashed, never stored: it may hold personal data. ``details`` is stored in
    clear and must not (ids, states, counts only).
    """
    if not connection.in_atomic_block:
        raise JournalError("journal_append must run inside the service's transaction")
    chain = int(organisation_id or 0)
    now = now or timezone.now()
    Head.objects.bulk_create([Head(chain=chain)], ignore_conflicts=True)
    head = Head.objects.select_for_update().get(chain=chain)
    data = EntryData(
        chain=chain,
        seq=head.seq + 1,
        occurred_at=now.astimezone(dt.UTC).isoformat(),
        actor=actor.ref,
        channel=actor.channel,
        operation=operation,
        objects=[_ref(o) for o in objects],
        details=details or {},
        payload_digest=digest(payload),
        prev_hash=head.hash,
    )
    h = entry_hash(data)
    entry = Entry.objects.create(
        chain=chain,
        seq=data.seq,
        occurred_at=now,
        actor=data.actor,
        channel=data.channel,
        operation=operation,
        refs=data.objects,
        details=data.details,
        payload_digest=data.payload_digest,
        prev_hash=data.prev_hash,
        hash=h,
    )
    Head.objects.filter(chain=chain).update(seq=data.seq, hash=h)
    return entry


__all__ = ["journal_append", "JournalError", "transaction"]
