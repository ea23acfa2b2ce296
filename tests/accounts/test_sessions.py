"""Sessions live in the database (``guichet.accounts.sessions``, one plain SQL read per request):
signing out, a password change or the expiry ends a session on the server at once, even for a
copy of its cookie kept elsewhere."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from guichet.accounts.sessions import SessionStore

ME = "/api/v1/bookings/households/me"
PASSWORD = "correct horse battery"


@pytest.fixture
def parent(db):
    return get_user_model().objects.create_user(
        "parent@example.org", "parent@example.org", PASSWORD
    )


def signed_in(user) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, client.cookies[settings.SESSION_COOKIE_NAME].value


def with_cookie(key: str) -> Client:
    """Another browser holding a copy of the session cookie."""
    other = Client()
    other.cookies[settings.SESSION_COOKIE_NAME] = key
    return other


def test_the_engine_is_the_database_one(parent):
    assert settings.SESSION_ENGINE == "guichet.accounts.sessions"
    client, key = signed_in(parent)
    assert Session.objects.filter(session_key=key).exists()
    assert SessionStore(key).load()["_auth_user_id"] == str(parent.pk)


def test_a_signed_in_request_reads_its_session_in_one_statement(parent):
    client, key = signed_in(parent)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(ME).status_code != 401
    table = Session._meta.db_table
    assert sum(table in q["sql"] for q in ctx.captured_queries) == 1


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(parent):
    client, key = signed_in(parent)
    copy = with_cookie(key)
    assert copy.get(ME).status_code != 401
    client.post(reverse("accounts:logout"))
    assert copy.get(ME).status_code == 401
    assert not Session.objects.filter(session_key=key).exists()


def test_a_password_change_ends_the_other_sessions(parent):
    _client, key = signed_in(parent)
    copy = with_cookie(key)
    assert copy.get(ME).status_code != 401
    parent.set_password("another long password")
    parent.save()
    assert copy.get(ME).status_code == 401


def test_an_expired_or_unknown_session_is_signed_out(parent):
    _client, key = signed_in(parent)
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    assert with_cookie(key).get(ME).status_code == 401
    assert with_cookie("x" * 32).get(ME).status_code == 401
    assert with_cookie("'; DROP TABLE django_session; --").get(ME).status_code == 401
    assert Session.objects.filter(session_key=key).exists()  # still there for the clean-up command


def test_the_user_of_a_session_is_read_as_the_orm_reads_it(parent):
    from guichet.accounts.backends import ModelBackend

    parent.last_login = timezone.now()
    parent.save()
    fast, orm = ModelBackend().get_user(str(parent.pk)), get_user_model().objects.get(pk=parent.pk)
    for field in get_user_model()._meta.concrete_fields:
        assert getattr(fast, field.attname) == getattr(orm, field.attname), field.name
    assert fast.is_active is True and fast.is_staff is False and fast.last_login.tzinfo is not None
    assert ModelBackend().get_user("not a number") is None
    assert ModelBackend().get_user(str(2**70)) is None
    assert ModelBackend().get_user(str(parent.pk + 1000)) is None


def test_a_deactivated_or_deleted_account_is_signed_out(parent):
    _client, key = signed_in(parent)
    copy = with_cookie(key)
    assert copy.get(ME).status_code != 401
    get_user_model().objects.filter(pk=parent.pk).update(is_active=False)
    assert copy.get(ME).status_code == 401
    get_user_model().objects.filter(pk=parent.pk).update(is_active=True)
    assert copy.get(ME).status_code != 401
    parent.delete()
    assert copy.get(ME).status_code == 401
