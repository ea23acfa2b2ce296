"""Reading the journal back for verification and checkpoints.

Verification streams raw rows straight into the pure verifier of ``chain.py``: no model
instances, one JSON decode per field that needs it. On PostgreSQL each chain is read with
``COPY (SELECT ... ORDER BY seq) TO STDOUT``: the server streams rows without waiting for the
client to ask for the next batch, so it produces them on one core while the verifier hashes on
another (a server-side cursor makes each side wait for the other at every batch). The same
functions work on any DB-API cursor, so a backup can verify the journal of a database that is
not Django's (a SQLite copy inside an archive, a restored PostgreSQL database).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Iterator

from django.db import connection as default_connection
from django.db import transaction

from .chain import Anchor, Verdict, verify_rows

_BATCH = 10_000
# Text columns only: the cheapest to fetch; the verifier turns them into canonical form.
# PostgreSQL: the time as the text of a UTC ``timestamp`` (cheaper for the server than to_char).
_COLUMNS = {
    "postgresql": (
        "seq, (occurred_at AT TIME ZONE 'UTC')::text, actor, channel, "
        "operation, refs::text, details::text, payload_digest, prev_hash, hash"
    ),
    "sqlite": (
        "seq, CAST(occurred_at AS TEXT), actor, channel, operation, CAST(refs AS TEXT), "
        "CAST(details AS TEXT), payload_digest, prev_hash, hash"
    ),
}
_PLACEHOLDER = {"postgresql": "%s", "sqlite": "?"}
# Read a chain along the (chain, seq) unique index, whatever the statistics say: right after a
# restore (no ANALYZE yet) the planner may otherwise sort the whole chain on disk first.
# Set for the transaction, and put back afterwards: a caller's later queries keep their plans.
_PG_PLAN_BEFORE = "SELECT current_setting('enable_sort'), current_setting('enable_bitmapscan')"
_PG_PLAN = "SELECT set_config('enable_sort', %s, true), set_config('enable_bitmapscan', %s, true)"


def _iso(value) -> str:
    """The ISO form hashed at append time: ``datetime.isoformat()`` of the aware UTC time."""
    if isinstance(value, str):
        n = len(value)
        if (n == 19 or 21 <= n <= 26 and value[19] == ".") and value[10] in " T" and value[4] == "-":
            # PostgreSQL's text of a UTC timestamp (fraction without trailing zeros), or SQLite's
            # stored text (naive UTC, six digits): the fast path. isoformat() writes six digits,
            # or none for a whole second.
            if n == 19 or value.endswith(".000000"):
                return f"{value[:10]}T{value[11:19]}+00:00"
            return f"{value[:10]}T{value[11:]}{'0' * (26 - n)}+00:00"
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
# ``canonical_json`` without its per-call set-up: the same options, and a value decoded from
# JSON never needs its ``default`` (property-tested against it in tests/journal).
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_decode = json.JSONDecoder().decode


def _canonical(text: str) -> str:
    """``canonical_json`` of any stored JSON text (sorted keys, no spaces); memoised."""
    found = _cache.get(text)
    if found is None:
        if len(_cache) > 100_000:
            _cache.clear()
        found = _cache[text] = _encode(_decode(text))
    return found


def _rows(cursor, chain: int, engine: str) -> Iterator[tuple]:
    if engine == "postgresql":
        yield from _copied_rows(cursor, chain)
        return
    sql = f"SELECT {_COLUMNS[engine]} FROM journal_entry WHERE chain = {_PLACEHOLDER[engine]} ORDER BY seq"  # noqa: S608
    cursor.execute(sql, [chain])
    iso, objects, details = _iso, _canonical_list, _canonical
    while batch := cursor.fetchmany(_BATCH):
        for seq, at, actor, channel, operation, refs, detail, payload, prev, stored in batch:
            yield (seq, iso(at), actor, channel, operation, objects(refs), details(detail), payload, prev, stored)


# COPY's text format escapes a backslash, and the control characters it uses as delimiters.
_COPY_ESCAPE = re.compile(r"\\(.)")
_COPY_UNESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _copy_field(text: str) -> str:
    """One column of a COPY text line, unescaped (only called when the line holds a backslash)."""
    if "\\" not in text:
        return text
    return _COPY_ESCAPE.sub(lambda m: _COPY_UNESCAPED.get(m.group(1), m.group(1)), text)


def _copied_rows(cursor, chain: int) -> Iterator[tuple]:
    """A chain's rows, streamed by PostgreSQL with COPY (text format, one row per message).

    Must run inside a transaction (for the plan settings). If the verifier stops early (a
    broken entry), the rest of the stream is read and dropped, so that the connection and its
    transaction stay usable: cancelling the COPY would abort the transaction."""
    cursor.execute(_PG_PLAN_BEFORE)
    before = cursor.fetchone()
    cursor.execute(_PG_PLAN, ["off", "off"])
    sql = f"COPY (SELECT {_COLUMNS['postgresql']} FROM journal_entry WHERE chain = {int(chain)} ORDER BY seq) TO STDOUT"  # noqa: S608
    iso, objects, details, field = _iso, _canonical_list, _canonical, _copy_field
    encoding = cursor.connection.info.encoding  # the client encoding COPY writes in (UTF-8 for Django)
    try:
        with cursor.copy(sql) as copy:
            try:
                for data in copy:
                    line = str(data, encoding)
                    if "\\" in line:
                        seq, at, actor, channel, operation, refs, detail, payload, prev, stored = map(
                            field, line[:-1].split("\t"))
                    else:
                        seq, at, actor, channel, operation, refs, detail, payload, prev, stored = line[:-1].split("\t")
                    yield (int(seq), iso(at), actor, channel, operation, objects(refs), details(detail), payload,
                           prev, stored)
            finally:
                for _rest in copy:
                    pass
    except GeneratorExit:  # the verifier stopped at a broken entry; the stream was read out
        cursor.execute(_PG_PLAN, before)
        raise
    cursor.execute(_PG_PLAN, before)


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


@contextlib.contextmanager
def _django_cursor(chunked: bool = False):
    # PostgreSQL streams a chain with COPY inside a transaction (for its plan settings).
    if chunked and default_connection.vendor == "postgresql":
        with transaction.atomic(), default_connection.cursor() as cursor:
            yield cursor
        return
    with default_connection.cursor() as cursor:
        yield cursor


def verify_all(*, anchors: dict[int, Anchor] | None = None, progress=None) -> list[Verdict]:
    """Verify every chain of the configured database."""
    engine = "postgresql" if default_connection.vendor == "postgresql" else "sqlite"
    return verify_with(_django_cursor, engine=engine, anchors=anchors, progress=progress)


def chains() -> list[int]:
    with default_connection.cursor() as cursor:
        return list(heads(cursor))
