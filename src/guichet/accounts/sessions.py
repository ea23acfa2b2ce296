"""Django's database sessions, read with their account in one plain SQL statement
(``SESSION_ENGINE``).

The same rules as ``django.contrib.sessions.backends.db``: a session exists until it expires or
is deleted, so signing out (or a password change, through Django's session hash) ends it on the
server at once, in every process. Two things differ:

- the session row keeps the signed-in account's id in a column of its own (``UserSession.user``,
  written from the session's data each time it is saved, as Django's documentation shows for
  extending the database backend);
- the read that every signed-in request makes fetches the session and that account together
  (one round trip instead of two; the ORM would also spend more time building each query than
  the database spends answering it, see docs/benchmarks.md). The account read is handed to the
  authentication backend (``backends.ModelBackend.get_user``) through ``current_session``, and
  used only if it is the account the session's data names; every check Django makes after
  ``get_user`` (the session's password hash, an inactive account) still applies.

Writes, key rotation and clean-up are Django's.
"""

from __future__ import annotations

import contextvars

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.utils import timezone

from guichet.common.fastread import instance, select_list

_SQL: dict[str, tuple[str, list, int]] = {}
_NOT_READ = object()

# The session store of the request whose user is being read (``middleware``), for the backend.
current_session: contextvars.ContextVar[SessionStore | None] = contextvars.ContextVar(
    "guichet_current_session", default=None)


class _Row:
    __slots__ = ("session_data",)

    def __init__(self, session_data: str):
        self.session_data = session_data


def account_pk(value):
    """The account's primary key that ``value`` (a session's ``_auth_user_id``) names, or None
    when it names none: not a valid id, or out of the database's range."""
    try:
        pk = get_user_model()._meta.pk.to_python(value)
    except ValidationError:
        return None
    return None if isinstance(pk, int) and not -(2**63) <= pk < 2**63 else pk


def _with_account(obj, data):
    """The session row ``obj`` to save, with the account its ``data`` names beside it."""
    pk = account_pk(data.get(SESSION_KEY))
    obj.user_id = pk if isinstance(pk, int) else None
    return obj


class SessionStore(DatabaseSessionStore):
    preloaded_user = _NOT_READ

    @classmethod
    def get_model_class(cls):
        from .models import UserSession

        return UserSession

    def create_model_instance(self, data):
        return _with_account(super().create_model_instance(data), data)

    async def acreate_model_instance(self, data):
        return _with_account(await super().acreate_model_instance(data), data)

    def _sql(self, alias: str, connection) -> tuple[str, list, int]:
        """The statement, the account's conversions and where the account's id is in its row."""
        cached = _SQL.get(alias)
        if cached is None:
            session, user = self.model._meta, get_user_model()._meta
            qn = connection.ops.quote_name
            columns, conversions = select_list(get_user_model(), connection, table="u")
            # Identifiers from the models, quoted; values are parameters.
            sql = " ".join([
                f"SELECT s.{qn(session.get_field('session_data').column)}, {columns}",
                f"FROM {qn(session.db_table)} s LEFT JOIN {qn(user.db_table)} u",
                f"ON u.{qn(user.pk.column)} = s.{qn(session.get_field('user').column)}",
                f"WHERE s.{qn(session.get_field('session_key').column)} = %s",
                f"AND s.{qn(session.get_field('expire_date').column)} > %s",
            ])
            pk_index = [c[0] for c in conversions].index(user.pk.attname)
            cached = _SQL[alias] = (sql, conversions, pk_index)
        return cached

    def _get_session_from_db(self):
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        sql, conversions, pk_index = self._sql(alias, connection)
        expire = self.model._meta.get_field("expire_date")
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.session_key, expire.get_db_prep_value(timezone.now(), connection)])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None  # as Django does: a new session will get a new key
            return None
        user_row = row[1:]
        self.preloaded_user = (
            None if user_row[pk_index] is None else instance(get_user_model(), connection, conversions, user_row)
        )
        return _Row(row[0])

    def preloaded(self, pk):
        """The account read with this session, if it is the account ``pk`` (``account_pk``);
        else None (read it)."""
        user = self.preloaded_user
        if user is _NOT_READ or user is None:
            return None
        return user if user.pk == pk else None
