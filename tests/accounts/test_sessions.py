"""Sessions live in the database (``guichet.accounts.sessions``, one plain SQL read per request):
signing out, a password change or the expiry ends a session on the server at once, even for a
copy of its cookie kept elsewhere."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from guichet.accounts.models import UserSession as Session
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


def test_the_session_and_its_account_are_read_in_one_statement(parent):
    client, _key = signed_in(parent)
    user_table = get_user_model()._meta.db_table
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(ME).status_code != 401
    reads = [q["sql"] for q in ctx.captured_queries if user_table in q["sql"]]
    assert len(reads) == 1 and Session._meta.db_table in reads[0]


def test_the_account_read_with_the_session_is_the_orm_one(parent):
    from guichet.accounts.middleware import _session_user

    parent.last_login = timezone.now()
    parent.save()
    _client, key = signed_in(parent)
    request = type("Request", (), {})()
    request.session = SessionStore(key)
    with CaptureQueriesContext(connection) as ctx:
        user = _session_user(request)
    assert len(ctx.captured_queries) == 1
    orm = get_user_model().objects.get(pk=parent.pk)
    for field in get_user_model()._meta.concrete_fields:
        assert getattr(user, field.attname) == getattr(orm, field.attname), field.name


def test_an_account_deactivated_or_deleted_is_signed_out(parent):
    _client, key = signed_in(parent)
    get_user_model().objects.filter(pk=parent.pk).update(is_active=False)
    assert with_cookie(key).get(ME).status_code == 401
    get_user_model().objects.filter(pk=parent.pk).update(is_active=True)
    assert with_cookie(key).get(ME).status_code != 401
    parent.delete()
    assert with_cookie(key).get(ME).status_code == 401
    assert not Session.objects.filter(session_key=key).exists()  # its sessions went with it


def test_the_account_column_never_overrides_what_the_session_says(parent):
    """The account column only saves a query: a row whose column names another account (written
    by hand, say) signs in the account the signed session data names, read on its own."""
    other = get_user_model().objects.create_user("other@example.org", "other@example.org", PASSWORD)
    _client, key = signed_in(parent)
    Session.objects.filter(session_key=key).update(user_id=other.pk)
    request = type("Request", (), {})()
    request.session = SessionStore(key)
    from guichet.accounts.middleware import _session_user

    assert _session_user(request).pk == parent.pk


def test_the_upgrade_keeps_everyone_signed_in(parent):
    """Migration 0006 copies the unexpired sessions of Django's table, with their account."""
    import importlib

    from django.apps import apps
    from django.contrib.sessions.backends.db import SessionStore as DjangoStore
    from django.contrib.sessions.models import Session as DjangoSession

    migration = importlib.import_module("guichet.accounts.migrations.0006_usersession")
    data = DjangoStore().encode({"_auth_user_id": str(parent.pk), "_auth_user_backend": "x"})
    future = timezone.now() + dt.timedelta(days=1)
    DjangoSession.objects.create(session_key="k" * 32, session_data=data, expire_date=future)
    DjangoSession.objects.create(session_key="e" * 32, session_data=data,
                                 expire_date=timezone.now() - dt.timedelta(days=1))
    DjangoSession.objects.create(session_key="a" * 32, session_data="garbage", expire_date=future)
    migration.copy_sessions(apps, type("Editor", (), {"connection": connection})())
    copied = {s.session_key: s.user_id for s in Session.objects.all()}
    assert copied == {"k" * 32: parent.pk, "a" * 32: None}
