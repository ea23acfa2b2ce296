"""Sessions copied by migration 0006 stay in Django's own table (a way back): the purge deletes
them there too once expired, as the retention policy says ("until the session expires")."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.sessions.models import Session as DjangoSession
from django.utils import timezone

from guichet.accounts.models import UserSession
from tests.accounts.test_retention import run

pytestmark = pytest.mark.django_db


def test_expired_sessions_left_in_djangos_table_are_purged_too():
    now = timezone.now()
    for model in (DjangoSession, UserSession):
        model.objects.create(session_key="expired" + "0" * 25, session_data="x", expire_date=now - dt.timedelta(days=1))
        model.objects.create(session_key="current" + "0" * 25, session_data="x", expire_date=now + dt.timedelta(days=1))
    assert "sessions.expired\twould delete 2" in run("--dry-run")
    assert "sessions.expired\tdeleted 2" in run()
    for model in (DjangoSession, UserSession):
        assert list(model.objects.values_list("session_key", flat=True)) == ["current" + "0" * 25]
