"""Django's database sessions, read with one plain SQL statement (``SESSION_ENGINE``).

The same table, the same rows and the same rules as ``django.contrib.sessions.backends.db``:
a session exists until it expires or is deleted, so signing out (or a password change, through
Django's session hash) ends it on the server at once, in every process. Only the read that
every signed-in request makes is written by hand: the ORM would spend more time building the
query than the database spends answering it (see docs/benchmarks.md). Writes, key rotation and
clean-up are Django's.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connections, router
from django.utils import timezone

_SQL: dict[str, str] = {}


class _Row:
    __slots__ = ("session_data",)

    def __init__(self, session_data: str):
        self.session_data = session_data


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self):
        model = self.model
        alias = router.db_for_read(model)
        connection = connections[alias]
        sql = _SQL.get(alias)
        if sql is None:
            meta, qn = model._meta, connection.ops.quote_name
            sql = _SQL[alias] = "SELECT {} FROM {} WHERE {} = %s AND {} > %s".format(  # noqa: S608
                qn(meta.get_field("session_data").column),
                qn(meta.db_table),
                qn(meta.get_field("session_key").column),
                qn(meta.get_field("expire_date").column),
            )  # identifiers from the model, quoted; values are parameters
        expire = model._meta.get_field("expire_date")
        with connection.cursor() as cursor:
            cursor.execute(
                sql, [self.session_key, expire.get_db_prep_value(timezone.now(), connection)]
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None  # as Django does: a new session will get a new key
            return None
        return _Row(row[0])
