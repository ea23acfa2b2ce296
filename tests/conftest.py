"""Fixtures shared by every test package. Keep it small: app-specific fixtures live beside
their tests.

The ``postgres`` marker: a test that needs PostgreSQL is skipped on SQLite with a visible
reason (``-ra`` prints it), and tagged so that ``.ci/run`` can check that such tests really ran
on the PostgreSQL run.
"""

import datetime as dt
import os
from zoneinfo import ZoneInfo

import pytest

from guichet.common.actor import Actor

PARIS = ZoneInfo("Europe/Paris")


def on_postgres() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_configure(config):
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://", "pgsql://")) and not on_postgres():
        raise pytest.UsageError("DATABASE_URL names PostgreSQL but the settings use another backend")


def pytest_collection_modifyitems(config, items):
    postgres = on_postgres()
    skip = pytest.mark.skip(
        reason="needs PostgreSQL: run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/guichet "
        "(.ci/run does)"
    )
    for item in items:
        if item.get_closest_marker("postgres") is not None:
            item.user_properties.append(("marker_postgres", "1"))
            if not postgres:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_cached_gates():
    """Each test starts with no degraded-mode gates cached (recovery.gates keeps them a few seconds)."""
    from guichet.recovery import gates

    gates._clear()
    yield
    gates._clear()


@pytest.fixture(autouse=True)
def _no_drainer_left_behind():
    """A basket drainer or receipt thread started by a test (bookings.intake, bookings.receipts:
    threads with connections of their own) stops with the test: the next test starts from an empty queue state, and the test
    database can be dropped at the end."""
    yield
    from guichet.bookings import intake, receipts

    intake.stop()
    receipts.stop()


@pytest.fixture(autouse=True)
def _no_remembered_role_holders():
    """Each test starts with no role holders remembered (accounts.middleware keeps them a few
    seconds): a rolled-back test leaves no signal, and SQLite reuses its primary keys."""
    from guichet.accounts import middleware

    middleware._clear_holders()


@pytest.fixture(autouse=True)
def _force_login_passes_the_second_factor(request, monkeypatch):
    """``client.force_login(staff)`` stands for a COMPLETE staff sign-in, second factor included:
    the session is marked as verified with a TOTP device of the user (created if needed). The real
    flow (password, then TOTP or a recovery code) is tested in tests/accounts/test_two_factor.py,
    whose tests use ``@pytest.mark.real_two_factor`` to switch this off."""
    if request.node.get_closest_marker("real_two_factor") is not None:
        return
    from django.test import Client

    original = Client.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from guichet.accounts.selectors import is_staff_member

        if is_staff_member(user):
            device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
                user=user, name="authenticator", confirmed=True)
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()

    monkeypatch.setattr(Client, "force_login", force_login)


@pytest.fixture
def cli_actor():
    return Actor.cli()


@pytest.fixture
def paris():
    def make(*args):
        return dt.datetime(*args, tzinfo=PARIS)

    return make
