"""Reading the journal back for verification and checkpoints.

Verification streams raw rows (a server-side cursor on PostgreSQL) straight into the pure
verifier of ``chain.py``: no model instances, one JSON decode per field that needs it. The same
functions work on any DB-API cursor, so a backup can verify the journal of a database that is
not Django's (a SQLite copy inside an archive).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

from django.db import connection as default_connection

from .chain import Anchor, Verdict, verify_rows

_COLUMNS = "seq, occurred_at, actor, channel, operation, refs, details, payload_digest, prev_hash, hash"
_BATCH = 10_000


def _iso(value) -> str:
    """The ISO form hashed at append time: ``datetime.isoformat()`` of the aware UTC time."""
    if isinstance(value, str):  # SQLite read without Django's converters: "YYYY-MM-DD HH:MM:SS[.ffffff]"
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    elif value.utcoffset():
        value = value.astimezone(dt.UTC)
    else:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def _rows(cursor, chain: int, placeholder: str) -> Iterator[tuple]:
    loads = json.loads
    sql = f"SELECT {_COLUMNS} FROM journal_entry WHERE chain = {placeholder} ORDER BY seq"  # noqa: S608 (constants)
    cursor.execute(sql, [chain])
    while batch := cursor.fetchmany(_BATCH):
        for seq, at, actor, channel, operation, refs, details, payload, prev, stored in batch:
            if isinstance(refs, str):
                refs = loads(refs)
            if isinstance(details, str):
                details = loads(details)
            yield (seq, _iso(at), actor, channel, operation, refs, details, payload, prev, stored)


def heads(cursor) -> dict[int, tuple[int, str]]:
    """Each chain's recorded head ``{chain: (seq, hash)}``, including chains with entries but no head."""
    cursor.execute("SELECT chain, seq, hash FROM journal_head")
    found = {int(c): (int(s), h) for c, s, h in cursor.fetchall()}
    cursor.execute("SELECT DISTINCT chain FROM journal_entry")
    for (c,) in cursor.fetchall():
        found.setdefault(int(c), (0, None))
    return dict(sorted(found.items()))


def verify_with(
    connection_or_cursor_factory,
    *,
    placeholder: str = "%s",
    anchors: dict[int, Anchor] | None = None,
    progress=None,
) -> list[Verdict]:
    """Verify every chain through ``connection_or_cursor_factory()`` cursors (DB-API).

    ``anchors`` (from a checkpoint) adds, per chain, "it had at least N entries, the N-th
    hashing to H": a chain shortened or rewritten since then fails, named at the entry.
    A chain a checkpoint names but the database lacks is reported as shortened to nothing.
    """
    anchors = anchors or {}
    with connection_or_cursor_factory() as cursor:
        recorded = heads(cursor)
    verdicts = []
    for chain in sorted(set(recorded) | set(anchors)):
        head_seq, head_hash = recorded.get(chain, (0, None))
        with connection_or_cursor_factory(chunked=True) as cursor:
            verdict = verify_rows(
                chain, _rows(cursor, chain, placeholder), head_seq=head_seq, head_hash=head_hash,
                anchor=anchors.get(chain),
            )
        verdicts.append(verdict)
        if progress:
            progress(verdict)
    return verdicts


def _django_cursor(chunked: bool = False):
    # A server-side cursor on PostgreSQL: rows stream in batches, memory stays flat.
    return default_connection.chunked_cursor() if chunked else default_connection.cursor()


def verify_all(*, anchors: dict[int, Anchor] | None = None, progress=None) -> list[Verdict]:
    """Verify every chain of the configured database."""
    return verify_with(_django_cursor, anchors=anchors, progress=progress)


def chains() -> list[int]:
    with default_connection.cursor() as cursor:
        return list(heads(cursor))
