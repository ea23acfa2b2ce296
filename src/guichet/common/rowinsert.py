"""``bulk_create`` without model instances, for the hot paths that insert many rows at once
(the booking drain, the journal): one ``INSERT ... RETURNING pk`` per chunk of rows.

Each row is the list of the values of the given field names, in order; every other column takes
its field's default, prepared once as the ORM would save it. On PostgreSQL the rows go as one
JSON document (``INSERT ... SELECT ... FROM jsonb_array_elements(...)``) when every given field
is one JSON carries as it is (ids, numbers, strings, booleans, dates and times, JSON without a
custom encoder), else as one array per column (``INSERT ... SELECT ... FROM UNNEST(...)``, as
the ORM does): a handful of parameters whatever the number of rows, where a ``VALUES`` list of
thousands of placeholders costs psycopg more to render than the ORM saves; on SQLite as a
multi-row ``VALUES``.
"""

from __future__ import annotations

import json

from django.db import connection, connections


class Conflict(Exception):
    """The rows could not be inserted as asked (no ``RETURNING``, or fewer rows came back)."""


class RowInsert:
    """``bulk_create`` without model instances: one ``INSERT ... RETURNING pk`` per chunk of
    rows, through the caller's connection and transaction. On PostgreSQL the rows go as one JSON
    document (``jsonb_array_elements``, in their order) when JSON carries every given field as
    it is, else as one array per column (``INSERT ... SELECT ... FROM UNNEST(...)``, as the ORM
    does): a handful of parameters whatever the number of rows, where a ``VALUES`` list of
    thousands of placeholders costs psycopg more to parse than the ORM saves; on SQLite as a
    multi-row ``VALUES``. Each
    row gives the values of ``names``, in order; every other column takes its
    field's default, prepared once exactly as the ORM would save it (an encrypted ``reason``
    left empty is stored as the ORM stores it: ``""``). Values are prepared by their field
    (``get_db_prep_save``) except ids, strings and booleans, which the ORM passes through as they
    are; dates and times are prepared once per distinct value."""

    _PLAIN = frozenset({"ForeignKey", "CharField", "BooleanField", "IntegerField", "BigIntegerField"})
    _MEMO = frozenset({"DateField", "DateTimeField"})
    # Given fields whose values a JSON document carries to PostgreSQL as they are (dates and times
    # as ISO 8601 text, which PostgreSQL reads back to the same instant or day).
    _JSON_PLAIN = _PLAIN | {"JSONField"}
    _JSON_ISO = frozenset({"DateField", "DateTimeField"})

    def __init__(self, model, names: tuple[str, ...]) -> None:
        meta = model._meta
        self.vendor = connection.vendor
        self.label = f"{meta.app_label}.{meta.model_name}"
        given = self.given = [meta.get_field(name) for name in names]
        others = [f for f in meta.concrete_fields if not f.primary_key and f.name not in names]
        if any(f.has_default() and callable(f.default) for f in others):
            raise TypeError(f"{self.label}: a default computed per row must be given per row")
        self.constants = [f.get_db_prep_save(f.get_default(), connection) for f in others]
        # per given field: None (passed as it is) or (field, prepared once per distinct value?)
        self.preps = [
            None if f.get_internal_type() in self._PLAIN else (f, f.get_internal_type() in self._MEMO)
            for f in given
        ]
        qn = connection.ops.quote_name
        columns = [*given, *others]
        # Identifiers and types from the model, quoted; every value is a parameter.
        self.head = "INSERT INTO {} ({}) ".format(qn(meta.db_table), ", ".join(qn(f.column) for f in columns))  # noqa: S608
        self.tail = " RETURNING " + qn(meta.pk.column)
        self.unnest = self.vendor == "postgresql"
        self.json = self.unnest and all(self._json_ready(f) for f in given)

        def cast(f) -> str:
            return f.db_type(connection).split("(")[0]  # varchar, not varchar(80): as the ORM does

        if self.json:
            # One JSON array per row, the rows in one document: serialised at C speed, where
            # psycopg renders an array per column element by element. A JSON field's value is
            # nested as it is (NULL stays SQL NULL, as the ORM stores None).
            self.iso = [f.get_internal_type() in self._JSON_ISO for f in given]
            values = [
                f"NULLIF(u.e->{i}, 'null'::jsonb)" if f.get_internal_type() == "JSONField"
                else f"(u.e->>{i})::{cast(f)}"
                for i, f in enumerate(given)
            ]
            self.head += "SELECT {} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS u(e, ord)".format(  # noqa: S608
                ", ".join([*values, *(f"(%s)::{cast(f)}" for f in others)]),
            )
            self.tail = " ORDER BY u.ord" + self.tail
            self.batch = 500
        elif self.unnest:
            self.head += "SELECT {} FROM UNNEST({}) AS u".format(  # noqa: S608
                ", ".join(["u.*", *(f"(%s)::{cast(f)}" for f in others)]),
                ", ".join(f"(%s)::{cast(f)}[]" for f in given),
            )
            self.batch = 500
        else:
            self.head += "VALUES "
            self.row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
            self.batch = max(1, min(500, connection.ops.bulk_batch_size(columns, [None] * 500)))

    @classmethod
    def _json_ready(cls, f) -> bool:
        kind = f.get_internal_type()
        if kind == "JSONField":
            return f.encoder is None
        return kind in cls._JSON_PLAIN or kind in cls._JSON_ISO

    def _prepared(self, row: list, memos: list[dict], conn) -> list:
        out = []
        for value, prep, memo in zip(row, self.preps, memos, strict=True):
            if prep is None or value is None:
                out.append(value)
            elif not prep[1]:
                out.append(prep[0].get_db_prep_save(value, conn))
            else:
                if value not in memo:
                    memo[value] = prep[0].get_db_prep_save(value, conn)
                out.append(memo[value])
        return out

    def _document(self, rows: list[list], memos: list[dict], conn) -> str:
        """The rows as one JSON document: dates and times prepared by their field as the ORM
        would (once per distinct value), then as ISO 8601; everything else as it is."""
        iso = [(i, memos[i], self.given[i]) for i, flag in enumerate(self.iso) if flag]
        out = []
        for row in rows:
            if iso:
                row = list(row)
                for i, memo, f in iso:
                    value = row[i]
                    if value is not None:
                        text = memo.get(value)
                        if text is None:
                            prepared = f.get_db_prep_save(value, conn)
                            text = memo[value] = prepared.isoformat() if hasattr(prepared, "isoformat") else prepared
                        row[i] = text
            out.append(row)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))

    def insert(self, records: list[NewRow]) -> None:
        """Inserts ``records`` and sets each one's ``pk`` (rows come back in the order they were
        given, which Django's own ``bulk_create`` relies on too)."""
        if not connection.features.can_return_rows_from_bulk_insert:
            raise Conflict  # the per-item path answers instead
        memos: list[dict] = [{} for _prep in self.preps]
        conn = connections[connection.alias]  # the wrapper itself: no thread-local look-up per value
        with conn.cursor() as cursor:
            for i in range(0, len(records), self.batch):
                chunk = records[i:i + self.batch]
                if self.json:
                    cursor.execute(self.head + self.tail,
                                   [*self.constants, self._document([record.row for record in chunk], memos, conn)])
                else:
                    rows = [self._prepared(record.row, memos, conn) for record in chunk]
                    if self.unnest:
                        cursor.execute(self.head + self.tail, [*self.constants, *map(list, zip(*rows, strict=True))])
                    else:
                        params = []
                        for row in rows:
                            params += row
                            params += self.constants
                        cursor.execute(self.head + ", ".join([self.row_sql] * len(chunk)) + self.tail, params)
                pks = cursor.fetchall()
                if len(pks) != len(chunk):
                    if i:  # earlier chunks are in: not something to redo another way
                        raise RuntimeError(f"{self.label}: {len(pks)} rows inserted of {len(chunk)}")
                    raise Conflict
                for record, (pk,) in zip(chunk, pks, strict=True):
                    record.pk = pk


class NewRow:
    """A row the batch will insert: its values (see ``RowInsert``), then its primary key."""

    __slots__ = ("label", "pk", "row")

    def __init__(self, label: str, row: list) -> None:
        self.label, self.row, self.pk = label, row, None

    def ref(self) -> str:
        """The journal's reference to the row (what ``journal._ref`` makes of a model instance)."""
        return f"{self.label}:{self.pk}"


_row_inserts: dict[tuple, RowInsert] = {}


def row_insert(model, names: tuple[str, ...]) -> RowInsert:
    """The inserter of ``model`` for ``names``, built once per process (and database vendor)."""
    key = (model, names, connection.vendor)
    if key not in _row_inserts:
        _row_inserts[key] = RowInsert(model, names)
    return _row_inserts[key]
