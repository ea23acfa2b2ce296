"""Django's ``ModelBackend``, whose ``get_user`` (the user of every signed-in request, from its
session) takes the account read with the session (``sessions``), or else reads it with one plain
SQL statement (``common.fastread``).

Everything else is Django's: sign-in and password checks, permissions, and the checks that
follow ``get_user`` in ``django.contrib.auth.get_user`` (the session's password hash, so a
password change signs out the other sessions). An inactive account gets no user, as with
Django's backend.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

from guichet.common.fastread import read_one

from .sessions import account_pk, current_session


def _by_pk(qn, columns: str) -> str:
    meta = get_user_model()._meta
    table = qn(meta.db_table)
    return f"SELECT {columns} FROM {table} WHERE {table}.{qn(meta.pk.column)} = %s"  # noqa: S608


class ModelBackend(DjangoModelBackend):
    def get_user(self, user_id):
        model = get_user_model()
        pk = account_pk(user_id)
        if pk is None:  # a session naming no valid id signs nobody in
            return None
        session = current_session.get()
        user = session.preloaded(pk) if session is not None else None
        if user is None:
            user = read_one(model, "session-user", _by_pk, [pk])
        return user if user is not None and self.user_can_authenticate(user) else None
