"""The household's postal address through the JSON API: ``GET /households/me`` returns it, ``PUT
/households/me/address`` changes it with the portal form's rules (422 naming the field, nothing
changed), journaled without the address, only ever the caller's own household."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from guichet.bookings.models import AgentRole, Guardian, Household
from guichet.journal.models import Entry
from tests.bookings.test_api_bookings import API, make_token
from tests.bookings.test_services import World

pytestmark = pytest.mark.django_db

ADDRESS = "12 rue de la Paix\n44600 Saint-Nazaire"
URL = f"{API}/households/me/address"


@pytest.fixture
def world():
    return World()


def _parent(world, name):
    hh, _kids = world.household()
    user = get_user_model().objects.create_user(name, password="x" * 12)
    Guardian.objects.create(organisation=world.org, household=hh, user=user)
    return hh, user, make_token(user, f"{name}-token")


def put(client, auth, body, **extra):
    return client.put(URL, json.dumps(body), content_type="application/json", **auth, **extra)


def _journaled():
    return Entry.objects.filter(operation="bookings.household.address")


def test_the_family_reads_and_changes_its_address(world, client, caplog):
    hh, user, auth = _parent(world, "parent")
    assert client.get(f"{API}/households/me", **auth).json()["postal_address"] == ""
    with caplog.at_level(logging.DEBUG):
        r = put(client, auth, {"postal_address": "  12  rue de la Paix \r\n\r\n 44600   Saint-Nazaire "})
    assert r.status_code == 200 and r.json() == {"postal_address": ADDRESS, "changed": True}
    assert Household.objects.get(pk=hh.pk).postal_address == ADDRESS
    assert client.get(f"{API}/households/me", **auth).json()["postal_address"] == ADDRESS
    (entry,) = _journaled()
    assert entry.details == {"household": hh.pk, "empty": False}
    assert (entry.actor, entry.channel) == (f"user:{user.pk}", "api")
    assert "Paix" not in json.dumps(entry.details) + json.dumps(entry.refs)
    assert "Paix" not in caplog.text and "Saint-Nazaire" not in caplog.text
    # The same address again: nothing to record.
    r = put(client, auth, {"postal_address": ADDRESS + "\n"})
    assert r.status_code == 200 and r.json()["changed"] is False and _journaled().count() == 1
    # Empty removes it.
    r = put(client, auth, {"postal_address": ""})
    assert r.status_code == 200 and Household.objects.get(pk=hh.pk).postal_address == ""
    assert _journaled().last().details["empty"] is True


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"postal_address": "x" * 39}, "38\u00a0caractères"),
        ({"postal_address": "\n".join(["ligne"] * 6)}, "5\u00a0lignes au plus"),
        ({"postal_address": "12 rue de la Paix\t\n44600 Saint-Nazaire"}, "caractères de contrôle"),
        ({"postal_address": "12 rue\x00"}, "caractères de contrôle"),
        ({"postal_address": "12 rue\u200bde la Paix"}, "caractères de contrôle"),
    ],
)
def test_a_bad_address_is_a_422_naming_the_field_and_changes_nothing(world, client, body, words):
    # The API is not under a language prefix: its service messages are in the site's language,
    # French, as the booking errors are.
    hh, _user, auth = _parent(world, "parent")
    Household.objects.filter(pk=hh.pk).update(postal_address=ADDRESS)
    r = put(client, auth, body)
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert error["path"] == "postal_address" and error["code"] == "invalid_address"
    assert error["message"].startswith("Adresse postale") and words in error["message"]
    assert Household.objects.get(pk=hh.pk).postal_address == ADDRESS and not _journaled().exists()


@pytest.mark.parametrize(
    "body", [{}, {"postal_address": ["12 rue"]}, {"postal_address": None}, {"postal_address": "x" * 1001}]
)
def test_a_malformed_body_names_the_field(world, client, body):
    hh, _user, auth = _parent(world, "parent")
    r = put(client, auth, body)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "postal_address"
    assert Household.objects.get(pk=hh.pk).postal_address == "" and not _journaled().exists()


def test_a_family_cannot_read_or_change_another_familys_address(world, client):
    hh_a, _user_a, auth_a = _parent(world, "parent-a")
    hh_b, _user_b, auth_b = _parent(world, "parent-b")
    Household.objects.filter(pk=hh_b.pk).update(postal_address="1 place B\n44600 Saint-Nazaire")
    # A sees only its own household, without B's address.
    me = client.get(f"{API}/households/me", **auth_a)
    assert me.json()["id"] == hh_a.pk and "place B" not in me.content.decode()
    # A's change lands on A only.
    assert put(client, auth_a, {"postal_address": ADDRESS}).status_code == 200
    assert Household.objects.get(pk=hh_a.pk).postal_address == ADDRESS
    assert Household.objects.get(pk=hh_b.pk).postal_address == "1 place B\n44600 Saint-Nazaire"
    # No route names another household: its id in the path or the body changes nothing of it.
    r = client.put(f"{API}/households/{hh_b.pk}/address", json.dumps({"postal_address": "x"}),
                   content_type="application/json", **auth_a)
    assert r.status_code in (404, 405)
    r = put(client, auth_a, {"postal_address": "2 rue A", "household": hh_b.pk, "id": hh_b.pk})
    assert r.status_code == 200
    assert Household.objects.get(pk=hh_b.pk).postal_address == "1 place B\n44600 Saint-Nazaire"
    assert client.get(f"{API}/households/me", **auth_b).json()["postal_address"].startswith("1 place B")
    # An account with no family file (an agent) has no address to change.
    agent = get_user_model().objects.create_user("agent", password="x" * 12)
    AgentRole.objects.create(organisation=world.org, user=agent)
    r = put(client, make_token(agent, "agent-token"), {"postal_address": ADDRESS})
    assert r.status_code == 404 and r.json()["errors"][0]["path"] == "household"
    assert Household.objects.exclude(pk=hh_a.pk).filter(postal_address=ADDRESS).count() == 0


def test_signed_out_is_401_and_a_browser_session_needs_the_csrf_token(world):
    hh, user, _auth = _parent(world, "parent")
    assert put(Client(), {}, {"postal_address": ADDRESS}).status_code == 401
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    assert put(c, {}, {"postal_address": ADDRESS}).status_code in (401, 403)
    assert Household.objects.get(pk=hh.pk).postal_address == "" and not _journaled().exists()
    c.get(reverse("accounts:login"))  # a page with a form sets the CSRF cookie
    token = c.cookies["csrftoken"].value
    assert put(c, {}, {"postal_address": ADDRESS}, HTTP_X_CSRFTOKEN=token).status_code == 200
    assert Household.objects.get(pk=hh.pk).postal_address == ADDRESS


def test_the_schema_documents_the_address(client):
    schema = client.get("/api/v1/openapi.json").json()
    op = schema["paths"][f"{API}/households/me/address"]["put"]
    assert {"200", "404", "422"} <= set(op["responses"])
    comps = schema["components"]["schemas"]
    assert "postal_address" in comps["HouseholdOut"]["properties"]
    assert comps["HouseholdOut"]["properties"]["postal_address"]["description"]
    assert comps["HouseholdAddressIn"]["required"] == ["postal_address"]
