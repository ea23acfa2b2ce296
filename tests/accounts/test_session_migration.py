"""Migration 0006 copies Django's sessions to ``accounts_session`` a batch at a time: the
memory it needs does not grow with the number of sessions, so a town with many signed-in
families upgrades on the machine that serves it."""

from __future__ import annotations

import datetime as dt
import importlib
import tracemalloc

from django.apps import apps
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session as DjangoSession
from django.db import connection
from django.utils import timezone

from guichet.accounts.models import UserSession
from tests.accounts.test_sessions import parent  # noqa: F401 - fixture

migration = importlib.import_module("guichet.accounts.migrations.0006_usersession")


def _peak_copying(sessions: int, data: str) -> int:
    """Bytes at the peak of copying ``sessions`` unexpired sessions (Python's allocations)."""
    DjangoSession.objects.all().delete()
    UserSession.objects.all().delete()
    future = timezone.now() + dt.timedelta(days=1)
    DjangoSession.objects.bulk_create(
        [DjangoSession(session_key=f"{i:032d}", session_data=data, expire_date=future) for i in range(sessions)],
        batch_size=1000)
    tracemalloc.start()
    try:
        migration.copy_sessions(apps, type("Editor", (), {"connection": connection})())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert UserSession.objects.count() == sessions


def test_the_copy_takes_the_same_memory_for_many_sessions_as_for_few(parent):  # noqa: F811
    data = DjangoStore().encode({"_auth_user_id": str(parent.pk), "_auth_user_backend": "x", "pad": "p" * 300})
    few, many = _peak_copying(1000, data), _peak_copying(6000, data)
    assert many < 2 * few, (few, many)
