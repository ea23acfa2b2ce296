"""Pure hash-chain rules: how an entry's hash is computed and how a chain is verified.

``verify_rows`` is the one verifier. It walks plain tuples (what a database cursor returns,
JSON fields as canonical text) and writes each hashed body directly, so that a full
verification streams fast on one core (``bench/journal_verify.py``); ``verify_chain`` feeds it
``EntryData`` objects.
"""

from __future__ import annotations

import hashlib
import json
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


@dataclass(frozen=True, slots=True)
class Anchor:
    """What a checkpoint says of one chain: it had ``count`` entries, the last one hashing to
    ``hash`` (``label`` names the checkpoint in messages, e.g. its time)."""

    count: int
    hash: str
    label: str = "the checkpoint"


# One row as the verifier reads it: (seq, occurred_at ISO UTC, actor, channel, operation,
# objects as canonical JSON text, details as canonical JSON text, payload_digest, prev_hash, hash).
Row = tuple
_string = json.encoder.encode_basestring  # exactly how canonical_json writes a string


def body_text(chain: int, seq: int, occurred_at: str, actor: str, channel: str, operation: str,
              objects_json: str, details_json: str, payload_digest: str, prev_hash: str) -> str:
    """``canonical_json`` of the hashed body, written directly (the verifier's hot path).
    ``objects_json`` and ``details_json`` are already canonical."""
    return (
        f"[{int(chain)},{int(seq)},{_string(occurred_at)},{_string(actor)},{_string(channel)},"
        f"{_string(operation)},{objects_json},{details_json},{_string(payload_digest)},{_string(prev_hash)}]"
    )


def verify_rows(
    chain: int,
    rows: Iterable[Row],
    *,
    head_seq: int | None = None,
    head_hash: str | None = None,
    anchor: Anchor | None = None,
) -> Verdict:
    """Walk a chain in ``seq`` order and name the first entry that breaks it.

    Detects an edited entry (its hash no longer matches its content), a deleted entry (a gap in
    the numbering), a reordered, inserted or forked entry (its link to the previous hash is
    wrong), a truncated chain (fewer entries than the recorded head says), and, given the
    ``anchor`` of an earlier checkpoint, a chain shortened or rewritten since that checkpoint.
    """
    sha256 = hashlib.sha256
    body = body_text
    expected_seq = 1
    prev = GENESIS
    count = 0
    anchor_seq = anchor.count if anchor else -1
    for seq, occurred_at, actor, channel, operation, objects, details, payload_digest, prev_hash, stored in rows:
        if seq != expected_seq:
            if seq > expected_seq:
                return Verdict(chain, count, prev, Problem(expected_seq, "missing (deleted) entry"))
            return Verdict(chain, count, prev, Problem(seq, "entry out of order or duplicated"))
        if prev_hash != prev:
            return Verdict(chain, count, prev, Problem(seq, "link to the previous entry is broken (reordered, inserted or forked)"))
        text = body(chain, seq, occurred_at, actor, channel, operation, objects, details, payload_digest, prev_hash)
        if sha256(text.encode("utf-8")).hexdigest() != stored:
            return Verdict(chain, count, prev, Problem(seq, "content does not match its hash (edited)"))
        if seq == anchor_seq and stored != anchor.hash:
            return Verdict(chain, count, prev, Problem(seq, _rewritten(anchor)))
        prev = stored
        count += 1
        expected_seq += 1
    if anchor is not None and count < anchor.count:
        return Verdict(
            chain, count, prev,
            Problem(count + 1, f"journal shortened since {anchor.label}: it recorded {anchor.count} entries, {count} found"),
        )
    if head_seq is not None and head_seq != count:
        if head_seq > count:
            return Verdict(chain, count, prev, Problem(count + 1, f"chain truncated: {head_seq} entries recorded, {count} found"))
        return Verdict(chain, count, prev, Problem(head_seq + 1, f"entries beyond the recorded head ({head_seq})"))
    if head_hash is not None and head_seq == count and head_hash != prev:
        return Verdict(chain, count, prev, Problem(count, "last entry does not match the recorded head"))
    return Verdict(chain, count, prev, None)


def _rewritten(anchor: Anchor) -> str:
    return (
        f"differs from {anchor.label} (history forked or rewritten at or before this entry: "
        f"{anchor.label} recorded {anchor.hash[:16]}…)"
    )


def verify_chain(
    chain: int,
    entries: Iterable[EntryData],
    *,
    head_seq: int | None = None,
    head_hash: str | None = None,
    anchor: Anchor | None = None,
) -> Verdict:
    """``verify_rows`` over ``EntryData`` objects (each entry's own ``chain`` is hashed)."""
    rows = (
        (e.seq, e.occurred_at, e.actor, e.channel, e.operation, canonical_json(list(e.objects)).decode("utf-8"),
         canonical_json(e.details).decode("utf-8"), e.payload_digest, e.prev_hash, e.hash)
        for e in entries
    )
    return verify_rows(chain, rows, head_seq=head_seq, head_hash=head_hash, anchor=anchor)
