"""Staff access to a household's record is recorded and can be reviewed."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from guichet.accounts.access import ACCESS_LOG_DAYS, access_purge, household_accesses
from guichet.accounts.models import RecordAccess
from guichet.bookings.models import AgentRole, Guardian
from tests.bookings.test_services import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def town():
    world = World()
    household, _kids = world.household()
    User = get_user_model()
    agent = User.objects.create_user("agent@example.org", "agent@example.org", "x" * 12)
    AgentRole.objects.create(organisation=world.org, user=agent)
    parent = User.objects.create_user("parent@example.org", "parent@example.org", "x" * 12)
    Guardian.objects.create(organisation=world.org, household=household, user=parent)
    return world, household, agent, parent


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_an_agent_opening_a_household_is_recorded_and_listed(client, town):
    world, household, agent, parent = town
    client.force_login(agent)
    url = reverse("bookings:agent-household", args=[world.portal.slug, household.reference])
    assert client.get(url).status_code == 200
    row = RecordAccess.objects.get()
    assert (row.user, row.household_id, row.what, row.organisation_id) == (
        agent, household.pk, "bookings.household", world.org.pk)
    # The family's own visits are not staff accesses.
    client.force_login(parent)
    assert client.get(reverse("bookings:home", args=[world.portal.slug])).status_code == 200
    assert RecordAccess.objects.count() == 1
    listing = run("access", "list", "--portal", world.portal.slug, "--household", household.reference)
    assert "agent@example.org" in listing and "bookings.household" in listing
    assert "agent@example.org" in run("access", "list", "--email", "agent@example.org")
    assert "no access recorded" in run("access", "list", "--email", "parent@example.org")


def test_a_refused_opening_records_nothing(client, town):
    world, household, _agent, parent = town
    client.force_login(parent)
    assert client.get(reverse("bookings:agent-household", args=[world.portal.slug, household.reference])).status_code == 403
    assert not RecordAccess.objects.exists()


def test_retention_purges_old_rows_only(town):
    world, household, agent, _parent = town
    now = timezone.now()
    old = RecordAccess.objects.create(user=agent, organisation=world.org, household_id=household.pk, what="x",
                                      at=now - dt.timedelta(days=ACCESS_LOG_DAYS + 1))
    recent = RecordAccess.objects.create(user=agent, organisation=world.org, household_id=household.pk, what="x",
                                         at=now - dt.timedelta(days=10))
    assert access_purge(now=now) == 1
    assert list(household_accesses(household.pk)) == [recent] and not RecordAccess.objects.filter(pk=old.pk).exists()


def test_the_access_log_is_read_only_in_the_administration(client, town):
    world, household, agent, _parent = town
    root = get_user_model().objects.create_superuser("root", "root@example.org", "x" * 12)
    row = RecordAccess.objects.create(user=agent, organisation=world.org, household_id=household.pk, what="x",
                                      at=timezone.now())
    client.force_login(root)
    assert client.get("/admin/accounts/recordaccess/").status_code == 200
    assert client.get("/admin/accounts/recordaccess/add/").status_code == 403
    assert client.post(f"/admin/accounts/recordaccess/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RecordAccess.objects.count() == 1


def test_access_command_bad_arguments(town):
    world, _household, _agent, _parent = town
    with pytest.raises(CommandError, match="--household: no family file 'NOPE'"):
        run("access", "list", "--portal", world.portal.slug, "--household", "NOPE")
    with pytest.raises(CommandError, match="give --portal and --household, or --email"):
        run("access", "list")
    with pytest.raises(CommandError, match="--days"):
        run("access", "list", "--email", "agent@example.org", "--days", "0")
