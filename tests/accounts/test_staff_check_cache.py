"""The staff two-step check costs a family's request no role query (each process remembers who
holds a role for ``STAFF_TTL`` seconds: one query for everyone), without giving a password alone
any staff power: staff pages always ask the database, and a role granted is seen at once in the
process that granted it, within ``STAFF_TTL`` seconds elsewhere."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from guichet.accounts import middleware
from guichet.bookings.models import AgentRole

from .test_two_factor import MANAGE, PASSWORD, portal, sign_in  # noqa: F401 (fixture)

pytestmark = pytest.mark.real_two_factor
ME = "/api/v1/bookings/households/me"
ROLE_TABLES = ("staffrole", "editorrole", "agentrole")


@pytest.fixture
def parent(portal):  # noqa: F811
    user = get_user_model().objects.create_user("parent@example.org", "parent@example.org", PASSWORD)
    return user


def role_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    return response, [q["sql"] for q in ctx.captured_queries if any(t in q["sql"].lower() for t in ROLE_TABLES)]


def test_a_family_request_asks_no_role_once_seen(client, parent):
    sign_in(client, "parent@example.org")
    middleware._forget_staff()  # this process has not read the roles yet
    first, asked = role_queries(client, ME)
    assert first.status_code != 401 and len(asked) == 1  # who holds a role, for everyone
    again, asked = role_queries(client, ME)
    assert again.status_code == first.status_code and asked == []


def test_other_families_ask_no_role_either(client, parent):
    other = get_user_model().objects.create_user("other@example.org", "other@example.org", PASSWORD)
    sign_in(client, "parent@example.org")
    assert client.get(ME).status_code != 401
    client.logout()
    sign_in(client, other.username)
    response, asked = role_queries(client, ME)
    assert response.status_code != 401 and asked == []  # a family seen for the first time


def test_a_role_granted_here_counts_at_once(client, parent, portal):  # noqa: F811
    sign_in(client, "parent@example.org")
    assert client.get(ME).status_code != 401
    AgentRole.objects.create(organisation=portal.organisations.get(), user=parent)
    assert client.get(ME).status_code == 401  # a password alone: no staff power, not even for a moment


def test_a_role_granted_by_another_process(client, parent, portal):  # noqa: F811
    sign_in(client, "parent@example.org")
    assert client.get(ME).status_code != 401
    # Another process grants the role (no signal reaches this one).
    AgentRole.objects.bulk_create([AgentRole(organisation=portal.organisations.get(), user=parent)])
    # Staff pages always ask: straight to the second factor.
    r = client.get(MANAGE)
    assert r.status_code == 302 and "two-factor" in r["Location"]
    # Elsewhere, at most STAFF_TTL seconds later (here: the remembered answer has expired).
    middleware._role_holders = (0.0, middleware._role_holders[1])
    assert client.get(ME).status_code == 401
