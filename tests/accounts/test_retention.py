"""`guichet purge`: what has expired goes, what has not stays; a dry run deletes nothing."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from guichet.accounts.models import RecordAccess
from guichet.accounts.retention import Purger, register
from guichet.bookings.models import Guardian
from guichet.journal.models import Entry
from tests.bookings.test_services import World

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("purge", *args, stdout=out)
    return out.getvalue()


def test_purge_deletes_expired_data_only():
    User = get_user_model()
    now = timezone.now()
    old_unverified = User.objects.create_user("old@example.org", "old@example.org", "x" * 12, is_active=False)
    User.objects.filter(pk=old_unverified.pk).update(date_joined=now - dt.timedelta(days=8))
    fresh_unverified = User.objects.create_user("new@example.org", "new@example.org", "x" * 12, is_active=False)
    deactivated_staff = User.objects.create_user("ex@example.org", "ex@example.org", "x" * 12, is_active=False,
                                                 is_staff=True)
    User.objects.filter(pk=deactivated_staff.pk).update(date_joined=now - dt.timedelta(days=800))
    world = World()
    household, _kids = world.household()
    linked = User.objects.create_user("linked@example.org", "linked@example.org", "x" * 12, is_active=False)
    User.objects.filter(pk=linked.pk).update(date_joined=now - dt.timedelta(days=30))
    Guardian.objects.create(organisation=world.org, household=household, user=linked)
    attempt = AccessAttempt.objects.create(username="x", ip_address="127.0.0.1", user_agent="t",
                                           failures_since_start=3)
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=now - dt.timedelta(days=31))
    AccessAttempt.objects.create(username="y", ip_address="127.0.0.1", user_agent="t", failures_since_start=1)
    RecordAccess.objects.create(user=deactivated_staff, organisation=world.org, household_id=household.pk,
                                what="x", at=now - dt.timedelta(days=800))

    dry = run("--dry-run")
    assert "accounts.unverified\twould delete 1" in dry and "accounts.failed_sign_ins\twould delete 1" in dry
    assert User.objects.filter(pk=old_unverified.pk).exists() and not Entry.objects.filter(operation="accounts.purge")

    out = run()
    assert "accounts.unverified\tdeleted 1" in out
    assert "accounts.failed_sign_ins\tdeleted 1" in out and "accounts.record_accesses\tdeleted 1" in out
    assert not User.objects.filter(pk=old_unverified.pk).exists()
    assert User.objects.filter(pk__in=[fresh_unverified.pk, deactivated_staff.pk, linked.pk]).count() == 3
    assert AccessAttempt.objects.count() == 1
    entry = Entry.objects.get(operation="accounts.purge")
    assert entry.details["deleted"]["accounts.unverified"] == 1
    # Again: nothing left to delete.
    assert "accounts.unverified\tdeleted 0" in run()


def test_policy_is_printed_and_modules_can_register_theirs():
    assert "accounts.unverified\tkept 7 days after sign-up" in run("--policy")
    with pytest.raises(ValueError, match="already registered"):
        register(Purger("accounts.unverified", "x", lambda **kw: 0))
