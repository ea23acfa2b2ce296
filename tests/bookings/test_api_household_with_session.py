"""A family's basket learns whose it is from the session's own statement
(``selectors.FAMILY_HOUSEHOLD``, read by ``accounts.sessions``): no query of its own, and always
the household as it is now, never one remembered from the sign-in."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from guichet.bookings.models import Basket, Guardian
from tests.bookings.test_api_bookings import post_basket
from tests.bookings.test_services import BEFORE, World

GUARDIAN_TABLE = Guardian._meta.db_table


@pytest.fixture
def world(db):
    return World(capacity=2)


@pytest.fixture
def family(world):
    hh, kids = world.household(children=1)
    user = get_user_model().objects.create_user("parent", password="x" * 12)
    Guardian.objects.create(organisation=world.org, household=hh, user=user)
    client = Client()
    client.force_login(user)
    return hh, kids, user, client


def item(kid, session):
    return [{"child": kid.pk, "session": session.pk, "unit": "journee"}]


@pytest.mark.django_db
def test_a_basket_reads_the_household_with_the_session_and_no_query_of_its_own(world, family):
    hh, (kid,), _user, client = family
    session = world.session()
    with time_machine.travel(BEFORE, tick=False), CaptureQueriesContext(connection) as ctx:
        r = post_basket(client, {}, item(kid, session))
    assert r.status_code == 200, r.content
    assert Basket.objects.get().household_id == hh.pk
    reads = [q["sql"] for q in ctx.captured_queries if GUARDIAN_TABLE in q["sql"] and q["sql"].startswith("SELECT")]
    # The session's statement, and the booking's check that the child is the family's: nothing
    # else asks who the account's household is.
    assert sum("session_data" in sql for sql in reads) == 1
    assert not [sql for sql in reads if "session_data" not in sql and "LIMIT 1" in sql]


@pytest.mark.django_db
def test_a_family_moved_to_another_household_books_for_the_new_one_at_once(world, family):
    hh, (kid,), user, client = family
    new_hh, (new_kid,) = world.household(children=1)
    session = world.session()
    Guardian.objects.filter(user=user).update(household=new_hh)
    with time_machine.travel(BEFORE, tick=False):
        r = post_basket(client, {}, item(new_kid, session))
    assert r.status_code == 200, r.content
    assert r.json()["items"][0]["outcome"] == "booked"
    assert Basket.objects.get().household_id == new_hh.pk


@pytest.mark.django_db
def test_an_account_no_longer_guardian_of_any_household_is_refused_and_nothing_received(world, family):
    _hh, (kid,), user, client = family
    session = world.session()
    Guardian.objects.filter(user=user).delete()
    with time_machine.travel(BEFORE, tick=False):
        r = post_basket(client, {}, item(kid, session))
    assert r.status_code == 404 and r.json()["errors"][0]["path"] == "household"
    assert not Basket.objects.exists()


@pytest.mark.django_db
def test_a_bearer_token_reads_the_household_itself(world, family):
    hh, (kid,), user, _client = family
    from tests.bookings.test_api_bookings import make_token

    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        r = post_basket(Client(), make_token(user, "tok-1"), item(kid, session))
    assert r.status_code == 200, r.content
    assert Basket.objects.get().household_id == hh.pk
