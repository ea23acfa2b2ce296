"""Set-based writes for the long runs (regularisation, debit files, periodic invoices).

Rows are plain dicts of field names to values, never model instances: building 200,000 model
objects costs more than writing them. On PostgreSQL the rows go through ``COPY ... FROM STDIN``
(psycopg's binary-accelerated copy); elsewhere through ``bulk_create``. Primary keys are
reserved beforehand (:func:`reserve_ids`) so that the caller can link rows together before
writing them. Both must run inside the caller's transaction. Constraints are checked by the
database exactly as for any other insert.
"""

from __future__ import annotations

import json

from django.db import connection, models

from guichet.common import crypto

BATCH = 2000


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """``count`` primary keys for new rows of ``model``. PostgreSQL: from the table's sequence.
    SQLite: after the current maximum (the write lock is held from the transaction's start:
    ``transaction_mode = IMMEDIATE``)."""
    if count <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
            return [row[0] for row in cur.fetchall()]
    start = (model.objects.aggregate(top=models.Max("id"))["top"] or 0) + 1
    return list(range(start, start + count))


def insert_rows(model: type[models.Model], rows: list[dict]) -> int:
    """Insert ``rows`` (dicts with the same keys: field names or ``<fk>_id``) into ``model``."""
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**row) for row in rows], batch_size=BATCH)
        return len(rows)
    names = list(rows[0])
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    fields = [by_attname[n] for n in names]
    json_at = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    # Encrypted at rest (an IBAN, a BIC): COPY bypasses the field, so the value is sealed here.
    sealed_at = [(i, f) for i, f in enumerate(fields) if isinstance(f, crypto.Encrypted)]
    qn = connection.ops.quote_name
    sql = f"COPY {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) FROM STDIN"
    with connection.cursor() as cur, cur.cursor.copy(sql) as copy:
        for row in rows:
            values = [row[n] for n in names]
            for i in json_at:
                values[i] = json.dumps(values[i], ensure_ascii=False)
            for i, f in sealed_at:
                values[i] = f.get_db_prep_save(values[i], connection)
            copy.write_row(values)
    return len(rows)
