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

Other apps may have values of the account read in the same statement (``also_read``): the
family portal reads the account's household this way, so that a basket costs no query of its own
to learn whose it is.

Writes, key rotation and clean-up are Django's.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.utils import timezone

from guichet.common.fastread import instance, select_list

_SQL: dict[str, tuple[str, list, int, dict[str, tuple[slice, Callable]]]] = {}
_NOT_READ = object()
NOT_READ = _NOT_READ  # ``preloaded_value`` when the value was not read with the session

# name -> (build(quote_name, account alias) -> scalar SQL expressions, make(connection, values))
_ALSO: dict[str, tuple[Callable, Callable]] = {}


def also_read(name: str, build: Callable, make: Callable) -> None:
    """Reads more values of the signed-in account with every session (``preloaded_value``).

    ``build(quote_name, account)`` returns a list of scalar SQL expressions on the account's row
    (``account`` is the quoted alias of the account's table; identifiers quoted, no values: the
    statement has no parameters of its own), ``make(connection, values)`` the value
    ``preloaded_value`` gives from their values. Registered once, when the app is ready."""
    _ALSO[name] = (build, make)
    _SQL.clear()

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
    preloaded_values: dict = {}  # name -> (make, connection, values), with the account (``also_read``)

    @classmethod
    def get_model_class(cls):
        from .models import UserSession

        return UserSession

    def create_model_instance(self, data):
        return _with_account(super().create_model_instance(data), data)

    async def acreate_model_instance(self, data):
        return _with_account(await super().acreate_model_instance(data), data)

    def _sql(self, alias: str, connection) -> tuple[str, list, int, dict[str, tuple[slice, Callable]]]:
        """The statement, the account's conversions, where the account's id is in its row, and
        where each value of ``also_read`` is, with what makes it."""
        cached = _SQL.get(alias)
        if cached is None:
            session, user = self.model._meta, get_user_model()._meta
            qn = connection.ops.quote_name
            columns, conversions = select_list(get_user_model(), connection, table="u")
            also, slices, at = [], {}, 1 + len(conversions)
            for name, (build, make) in _ALSO.items():
                expressions = list(build(qn, "u"))
                slices[name] = (slice(at, at + len(expressions)), make)
                also.extend(expressions)
                at += len(expressions)
            columns = ", ".join([columns, *also])
            # Identifiers from the models, quoted; values are parameters.
            sql = " ".join([
                f"SELECT s.{qn(session.get_field('session_data').column)}, {columns}",
                f"FROM {qn(session.db_table)} s LEFT JOIN {qn(user.db_table)} u",
                f"ON u.{qn(user.pk.column)} = s.{qn(session.get_field('user').column)}",
                f"WHERE s.{qn(session.get_field('session_key').column)} = %s",
                f"AND s.{qn(session.get_field('expire_date').column)} > %s",
            ])
            pk_index = [c[0] for c in conversions].index(user.pk.attname)
            cached = _SQL[alias] = (sql, conversions, pk_index, slices)
        return cached

    def _get_session_from_db(self):
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        sql, conversions, pk_index, slices = self._sql(alias, connection)
        expire = self.model._meta.get_field("expire_date")
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.session_key, expire.get_db_prep_value(timezone.now(), connection)])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None  # as Django does: a new session will get a new key
            return None
        user_row = row[1:1 + len(conversions)]
        if user_row[pk_index] is None:
            self.preloaded_user = None
        else:
            self.preloaded_user = instance(get_user_model(), connection, conversions, user_row)
            self.preloaded_values = {name: (make, connection, row[where]) for name, (where, make) in slices.items()}
        return _Row(row[0])

    def preloaded(self, pk):
        """The account read with this session, if it is the account ``pk`` (``account_pk``);
        else None (read it)."""
        user = self.preloaded_user
        if user is _NOT_READ or user is None:
            return None
        return user if user.pk == pk else None


def preloaded_value(session, user, name: str):
    """The value ``name`` (``also_read``) of ``user``, read with ``session`` if that session was
    read with that very account; else ``NOT_READ`` (the caller reads it)."""
    if not isinstance(session, SessionStore) or user is None:
        return NOT_READ
    account = session.preloaded_user
    if account is _NOT_READ or account is None or account.pk != getattr(user, "pk", None):
        return NOT_READ
    found = session.preloaded_values.get(name)
    if found is None:
        return NOT_READ
    make, connection, values = found
    return make(connection, values)
