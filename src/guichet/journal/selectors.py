"""Reading the journal back for verification."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from .chain import EntryData, Verdict, verify_chain
from .models import Entry, Head


def _entries(chain: int) -> Iterator[EntryData]:
    rows = (
        Entry.objects.filter(chain=chain)
        .order_by("seq")
        .values_list(
            "chain", "seq", "occurred_at", "actor", "channel", "operation", "refs",
            "details", "payload_digest", "prev_hash", "hash",
        )
    )
    for r in rows.iterator(chunk_size=5000):
        yield EntryData(
            chain=r[0], seq=r[1], occurred_at=r[2].astimezone(dt.UTC).isoformat(),
            actor=r[3], channel=r[4], operation=r[5], objects=r[6], details=r[7],
            payload_digest=r[8], prev_hash=r[9], hash=r[10],
        )


def chains() -> list[int]:
    found = set(Head.objects.values_list("chain", flat=True))
    found |= set(Entry.objects.values_list("chain", flat=True).distinct())
    return sorted(found)


def verify_all() -> list[Verdict]:
    verdicts = []
    heads = {h.chain: h for h in Head.objects.all()}
    for chain in chains():
        head = heads.get(chain)
        verdicts.append(
            verify_chain(
                chain,
                _entries(chain),
                head_seq=head.seq if head else 0,
                head_hash=head.hash if head else None,
            )
        )
    return verdicts
