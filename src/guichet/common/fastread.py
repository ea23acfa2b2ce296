"""One row read with plain SQL, for the few reads that every request of a rush makes (its
session's user, a family's household, a basket being polled).

Building a query with the ORM costs more CPU than the database spends answering a lookup by
primary key (docs/benchmarks.md, "the opening-day rush"). Here the SQL is built once per model,
read and database, from the model's own metadata (quoted identifiers; every value is a
parameter), and each value goes through the converters the ORM would apply (so SQLite's dates
and booleans, or an encrypted field, come back as the ORM gives them). The result is a model
instance made by ``Model.from_db``, as a queryset makes it: fields not read are loaded on first
use.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable

from django.db import connections, router

_CACHE: dict[tuple[str, str, str], tuple[str, list]] = {}


def _converters(field, connection, table: str):
    """``field``'s column in ``table`` and the converters the ORM applies to the values read
    from it."""
    col = field.get_col(table)
    return col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)


def select_list(model, connection, *, table: str | None = None, fields: Iterable[str] | None = None):
    """The select list for ``model``'s ``fields`` (default: every concrete field), qualified by
    ``table`` (default: the model's table; an alias, already quoted, for a join), and the
    conversions that ``instance`` applies to the values read."""
    meta, qn = model._meta, connection.ops.quote_name
    wanted = None if fields is None else {meta.get_field(f) for f in fields}
    # Model.from_db wants the values in the order of the model's fields.
    cols = [f for f in meta.concrete_fields if wanted is None or f in wanted]
    conversions = [(field.attname, *_converters(field, connection, meta.db_table)) for field in cols]
    prefix = table or qn(meta.db_table)
    return ", ".join(f"{prefix}.{qn(f.column)}" for f in cols), conversions


def instance(model, connection, conversions: list, row):
    """The model instance for ``row`` (values in the order of ``select_list``), as a queryset
    makes it."""
    values = []
    for value, (_attname, col, converters) in zip(row, conversions, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        values.append(value)
    return model.from_db(connection.alias, [c[0] for c in conversions], values)


def read_one(model, name: str, build: Callable[[Callable[[str], str], str], str], params: list,
             fields: Iterable[str] | None = None):
    """The first row of the SQL that ``build(quote_name, columns)`` returns, as an instance of
    ``model`` with ``fields`` (default: every concrete field) loaded, or None. ``name`` names the
    statement (one SQL text per name, model and database); ``columns`` is the select list."""
    alias = router.db_for_read(model)
    connection = connections[alias]
    key = (alias, model._meta.label, name)
    cached = _CACHE.get(key)
    if cached is None:
        columns, conversions = select_list(model, connection, fields=fields)
        cached = _CACHE[key] = (build(connection.ops.quote_name, columns), conversions)
    sql, conversions = cached
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else instance(model, connection, conversions, row)


# --- several rows as plain values (the booking drain's reads) ----------------------------------


def member(connection) -> str:
    """SQL that tests whether the expression written before it is one of the values of ONE
    parameter (``members`` makes it): ``= ANY(%s)`` on PostgreSQL, ``IN (SELECT value FROM
    json_each(%s))`` elsewhere (SQLite). One parameter whatever the number of values, where
    the ORM's ``__in`` prepares and binds each value on its own."""
    if connection.vendor == "postgresql":
        return "= ANY(%s)"
    return "IN (SELECT value FROM json_each(%s))"


def members(connection, values: Iterable):
    """The parameter of a ``member`` test: the values (ids, strings or dates) as a list on
    PostgreSQL, as a JSON array elsewhere (dates as ISO 8601, as SQLite stores them)."""
    values = list(values)
    if connection.vendor == "postgresql":
        return values
    for value in values:
        if isinstance(value, dt.datetime):
            raise TypeError("members: a date and time is not stored as its ISO text on SQLite")
    return json.dumps([v.isoformat() if isinstance(v, dt.date) else v for v in values])


def read_values(model, name: str, build: Callable[[Callable[[str], str], list[str], str], str], params: list,
                fields: Iterable[str]) -> list[tuple]:
    """Every row of the SQL that ``build(quote_name, columns, member)`` returns, as a tuple:
    first the values of ``fields`` (in that order; ``columns`` lists them, qualified by the
    model's table), converted as ``values_list`` converts them, then any further column the SQL
    selects, as the database gives it. ``member`` is ``member(connection)``. ``name`` names the
    statement (one SQL text per name, model and database)."""
    alias = router.db_for_read(model)
    connection = connections[alias]
    key = (alias, model._meta.label, name)
    cached = _CACHE.get(key)
    if cached is None:
        meta, qn = model._meta, connection.ops.quote_name
        read = [meta.get_field(f) for f in fields]
        conversions = [_converters(field, connection, meta.db_table) for field in read]
        columns = [f"{qn(meta.db_table)}.{qn(field.column)}" for field in read]
        cached = _CACHE[key] = (build(qn, columns, member(connection)), conversions)
    sql, conversions = cached
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not any(converters for _col, converters in conversions):
        return [tuple(row) for row in rows]
    out = []
    for row in rows:
        values = list(row)
        for i, (col, converters) in enumerate(conversions):
            value = values[i]
            for converter in converters:
                value = converter(value, col, connection)
            values[i] = value
        out.append(tuple(values))
    return out
