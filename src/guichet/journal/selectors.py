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

from guichet.common.canonical import canonical_json

from .chain import Anchor, Verdict, verify_rows

_BATCH = 10_000
# Text columns only: the cheapest to fetch; the verifier turns them into canonical form.
_COLUMNS = {
    "postgresql": (
        "seq, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), actor, channel, "
        "operation, refs::text, details::text, payload_digest, prev_hash, hash"
    ),
    "sqlite": (
        "seq, CAST(occurred_at AS TEXT), actor, channel, operation, CAST(refs AS TEXT), "
        "CAST(details AS TEXT), payload_digest, prev_hash, hash"
    ),
}
_PLACEHOLDER = {"postgresql": "%s", "sqlite": "?"}


def _iso(value) -> str:
    """The ISO form hashed at append time: ``datetime.isoformat()`` of the aware UTC time."""
    if isinstance(value, str):
        if len(value) in (19, 26) and value[10] in " T" and value[4] == "-":
            # PostgreSQL's to_char above, or SQLite's stored text (naive UTC): the fast path.
            return f"{value[:10]}T{value[11:19]}{'' if value.endswith('.000000') else value[19:]}+00:00"
        value = dt.datetime.fromisoformat(value)
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value.isoformat()


def _canonical_list(text: str) -> str:
    """``canonical_json`` of a stored JSON list of strings (an entry's objects), from its text.

    Fast path: without a backslash every quote delimits a string, so a text of the form
    ``["a", "b"]`` whose quotes all pair up around ``","`` separators is a flat list of strings,
    and dropping the space after each comma gives exactly the canonical text."""
    if text == "[]":
        return text
    if "\\" not in text and text.startswith('["') and text.endswith('"]'):
        fast = text.replace('", "', '","')
        if fast.count('"') == 2 * (fast.count('","') + 1):
            return fast
    return _canonical(text)


_cache: dict[str, str] = {}


def _canonical(text: str) -> str:
    """``canonical_json`` of any stored JSON text (sorted keys, no spaces); memoised."""
    found = _cache.get(text)
    if found is None:
        if len(_cache) > 100_000:
            _cache.clear()
        found = _cache[text] = canonical_json(json.loads(text)).decode("utf-8")
    return found


def _rows(cursor, chain: int, engine: str) -> Iterator[tuple]:
    sql = f"SELECT {_COLUMNS[engine]} FROM journal_entry WHERE chain = {_PLACEHOLDER[engine]} ORDER BY seq"  # noqa: S608
    cursor.execute(sql, [chain])
    iso, objects, details = _iso, _canonical_list, _canonical
    while batch := cursor.fetchmany(_BATCH):
        for seq, at, actor, channel, operation, refs, detail, payload, prev, stored in batch:
            yield (seq, iso(at), actor, channel, operation, objects(refs), details(detail), payload, prev, stored)


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
    engine: str = "postgresql",
    anchors: dict[int, Anchor] | None = None,
    progress=None,
    only: list[int] | None = None,
) -> list[Verdict]:
    """Verify every chain through ``connection_or_cursor_factory()`` cursors (DB-API).

    ``anchors`` (from a checkpoint) adds, per chain, "it had at least N entries, the N-th
    hashing to H": a chain shortened or rewritten since then fails, named at the entry.
    A chain a checkpoint names but the database lacks is reported as shortened to nothing.
    ``only``: verify these chains only (in this order).
    """
    anchors = anchors or {}
    with connection_or_cursor_factory() as cursor:
        recorded = heads(cursor)
    verdicts = []
    for chain in sorted(set(recorded) | set(anchors)) if only is None else only:
        head_seq, head_hash = recorded.get(chain, (0, None))
        with connection_or_cursor_factory(chunked=True) as cursor:
            verdict = verify_rows(
                chain, _rows(cursor, chain, engine), head_seq=head_seq, head_hash=head_hash,
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
    engine = "postgresql" if default_connection.vendor == "postgresql" else "sqlite"
    return verify_with(_django_cursor, engine=engine, anchors=anchors, progress=progress)


def chains() -> list[int]:
    with default_connection.cursor() as cursor:
        return list(heads(cursor))
