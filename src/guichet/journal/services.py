"""Appending to the journal. Called by every service function, inside its transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from guichet.common.actor import Actor
from guichet.common.canonical import digest
from guichet.common.rowinsert import Conflict, NewRow, row_insert

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


def journal_append_many(items: Iterable[dict], *, returning: bool = True) -> list[Entry]:
    """Append several entries at once, in the given order, with exactly the rules of
    ``journal_append`` (same hash chain: each entry links to the previous one of its chain).

    Each item is a dict of ``journal_append``'s keyword arguments (``actor``, ``operation``,
    ``objects``, ``payload``, ``details``, ``organisation_id``, ``now``). One head lock per chain
    (taken in chain order), one bulk insert, one head update per chain. Must run inside the
    caller's transaction. Returns the entries written, or nothing (``[]``) when ``returning``
    is false (a caller that does not use them: no model instance is built).
    """
    items = list(items)
    if not items:
        return []
    if not connection.in_atomic_block:
        raise JournalError("journal_append must run inside the service's transaction")
    chains = sorted({int(item.get("organisation_id") or 0) for item in items})
    heads = _lock_heads(chains)
    rows = []
    no_payload = digest(None)  # most entries have none: hashed once
    for item in items:
        chain = int(item.get("organisation_id") or 0)
        now = item.get("now") or timezone.now()
        actor = item["actor"]
        head = heads[chain]
        payload = item.get("payload")
        data = EntryData(
            chain=chain,
            seq=head[0] + 1,
            occurred_at=now.astimezone(dt.UTC).isoformat(),
            actor=actor.ref,
            channel=actor.channel,
            operation=item["operation"],
            objects=[_ref(o) for o in item.get("objects", ())],
            details=item.get("details") or {},
            payload_digest=no_payload if payload is None else digest(payload),
            prev_hash=head[1],
        )
        h = entry_hash(data)
        rows.append(NewRow("journal.entry", [chain, data.seq, now, data.actor, data.channel, data.operation,
                                             data.objects, data.details, data.payload_digest, data.prev_hash, h]))
        head[0], head[1] = data.seq, h
    # The rows without the ORM's per-object work (a drain round journals hundreds of entries).
    try:
        row_insert(Entry, _ENTRY_FIELDS).insert(rows)
    except Conflict:
        entries = _entries(rows)
        Entry.objects.bulk_create(entries, batch_size=500)
    else:
        entries = None
    for chain in chains:
        Head.objects.filter(chain=chain).update(seq=heads[chain][0], hash=heads[chain][1])
    if not returning:
        return []
    if entries is None:
        entries = _entries(rows)
        for entry, row in zip(entries, rows, strict=True):
            entry.pk, entry._state.adding = row.pk, False
    return entries


def _entries(rows: list[NewRow]) -> list[Entry]:
    return [Entry(**dict(zip(_ENTRY_FIELDS, row.row, strict=True))) for row in rows]


_ENTRY_FIELDS = ("chain", "seq", "occurred_at", "actor", "channel", "operation", "refs", "details",
                 "payload_digest", "prev_hash", "hash")


def _lock_heads(chains: list[int]) -> dict[int, list]:
    """Locks the heads of ``chains`` (in chain order), creating those that do not exist yet."""

    def locked():
        return {h.chain: [h.seq, h.hash]
                for h in Head.objects.select_for_update().filter(chain__in=chains).order_by("chain")}

    heads = locked()
    if len(heads) < len(chains):
        Head.objects.bulk_create([Head(chain=c) for c in chains if c not in heads], ignore_conflicts=True)
        heads = locked()
    return heads


__all__ = ["journal_append", "journal_append_many", "JournalError", "transaction"]
