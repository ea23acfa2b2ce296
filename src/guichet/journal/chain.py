"""Pure hash-chain rules: how an entry's hash is computed and how a chain is verified."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from guichet.common.canonical import canonical_json

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class EntryData:
    chain: int
    seq: int
    occurred_at: str  # ISO 8601, UTC
    actor: str
    channel: str
    operation: str
    objects: list
    details: dict
    payload_digest: str
    prev_hash: str
    hash: str = ""


def entry_hash(e: EntryData) -> str:
    body = [
        e.chain,
        e.seq,
        e.occurred_at,
        e.actor,
        e.channel,
        e.operation,
        list(e.objects),
        e.details,
        e.payload_digest,
        e.prev_hash,
    ]
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Verdict:
    chain: int
    count: int
    last_hash: str
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(
    chain: int,
    entries: Iterable[EntryData],
    *,
    head_seq: int | None = None,
    head_hash: str | None = None,
) -> Verdict:
    """Walk a chain in ``seq`` order and name the first entry that breaks it.

    Detects an edited entry (its hash no longer matches its content), a deleted entry (a gap in
    the numbering), a reordered or inserted entry (its link to the previous hash is wrong), and
    a truncated chain (fewer entries than the recorded head or a checkpoint says).
    """
    expected_seq = 1
    prev = GENESIS
    count = 0
    for e in entries:
        if e.seq != expected_seq:
            if e.seq > expected_seq:
                return Verdict(chain, count, prev, Problem(expected_seq, "missing (deleted) entry"))
            return Verdict(chain, count, prev, Problem(e.seq, "entry out of order or duplicated"))
        if e.prev_hash != prev:
            return Verdict(chain, count, prev, Problem(e.seq, "link to the previous entry is broken (reordered, inserted or forked)"))
        if entry_hash(e) != e.hash:
            return Verdict(chain, count, prev, Problem(e.seq, "content does not match its hash (edited)"))
        prev = e.hash
        count += 1
        expected_seq += 1
    if head_seq is not None and head_seq != count:
        if head_seq > count:
            return Verdict(chain, count, prev, Problem(count + 1, f"chain truncated: {head_seq} entries recorded, {count} found"))
        return Verdict(chain, count, prev, Problem(head_seq + 1, f"entries beyond the recorded head ({head_seq})"))
    if head_hash is not None and head_seq == count and head_hash != prev:
        return Verdict(chain, count, prev, Problem(count, "last entry does not match the recorded head"))
    return Verdict(chain, count, prev, None)
