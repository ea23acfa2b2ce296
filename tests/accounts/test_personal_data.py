"""A household downloads its data and asks for erasure; an agent sees what can be erased and why."""

from __future__ import annotations

import json

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.urls import reverse

from guichet.accounts.models import ErasureRequest, RecordAccess
from guichet.bookings.models import AgentRole, Guardian
from guichet.catalog.models import Organisation, Portal
from guichet.journal.models import Entry
from tests.bookings.test_services import BEFORE, World, item

pytestmark = pytest.mark.django_db


@pytest.fixture
def town():
    world = World()
    session = world.session()
    household, (child,) = world.household()
    other, (other_child,) = world.household()
    User = get_user_model()
    parent = User.objects.create_user("parent@example.org", "parent@example.org", "x" * 12)
    Guardian.objects.create(organisation=world.org, household=household, user=parent)
    world.submit(household, [item(child, session)], key="a")
    world.submit(other, [item(other_child, session)], key="b")
    agent = User.objects.create_user("agent@example.org", "agent@example.org", "x" * 12)
    AgentRole.objects.create(organisation=world.org, user=agent)
    return world, household, other, parent, agent


def test_a_family_downloads_its_own_data_only(client, town):
    world, household, other, parent, _agent = town
    client.force_login(parent)
    page = client.get(reverse("accounts:family-data", args=[world.portal.slug]))
    assert page.status_code == 200 and "download=json" in page.content.decode()
    r = client.get(reverse("accounts:family-data", args=[world.portal.slug]), {"download": "json"})
    assert r.status_code == 200 and r["Content-Disposition"].startswith("attachment;")
    doc = json.loads(r.content)
    assert doc["household"]["reference"] == household.reference
    assert [g["email"] for g in doc["guardians"]] == ["parent@example.org"]
    assert len(doc["children"]) == 1 and len(doc["bookings"]) == 1
    assert other.reference not in r.content.decode() and other.display_name not in r.content.decode()
    assert Entry.objects.filter(operation="accounts.personal_data.export").count() == 1
    # Someone without a family file on this portal: nothing.
    client.force_login(get_user_model().objects.create_user("x@example.org", "x@example.org", "x" * 12))
    assert client.get(reverse("accounts:family-data", args=[world.portal.slug]), {"download": "json"}).status_code == 404


def test_erasure_request_reviewed_by_an_agent_of_the_organisation(client, town):
    world, household, _other, parent, agent = town
    client.force_login(parent)
    url = reverse("accounts:family-erasure", args=[world.portal.slug])
    assert client.post(url).status_code == 302
    assert client.post(url).status_code == 302  # twice: one open request
    req = ErasureRequest.objects.get()
    assert req.status == "open" and req.household_id == household.pk
    assert "a bien été reçue" in client.get(reverse("accounts:family-data", args=[world.portal.slug])).content.decode()
    # The family cannot review.
    assert client.get(reverse("accounts:staff-erasures", args=[world.portal.slug])).status_code == 403
    client.force_login(agent)
    listing = client.get(reverse("accounts:staff-erasures", args=[world.portal.slug]))
    assert listing.status_code == 200 and household.reference in listing.content.decode()
    with time_machine.travel(BEFORE, tick=False):
        detail = client.get(reverse("accounts:staff-erasure", args=[world.portal.slug, req.pk]))
    html = detail.content.decode()
    assert detail.status_code == 200
    # The future booking must be cancelled first; past bookings are kept (invoices, 10 years): said why.
    assert "Annulez-les d’abord" in html and "Code de commerce" in html
    assert RecordAccess.objects.filter(user=agent, household_id=household.pk, what="accounts.erasure").exists()
    assert client.post(reverse("accounts:staff-erasure", args=[world.portal.slug, req.pk])).status_code == 302
    req.refresh_from_db()
    assert req.status == "answered" and req.answered_by == agent
    assert [e.operation for e in Entry.objects.filter(operation__startswith="accounts.erasure").order_by("pk")] == [
        "accounts.erasure.request", "accounts.erasure.answer"]


def test_an_agent_of_another_town_sees_no_request(client, town):
    world, _household, _other, parent, _agent = town
    client.force_login(parent)
    client.post(reverse("accounts:family-erasure", args=[world.portal.slug]))
    req = ErasureRequest.objects.get()
    stranger = get_user_model().objects.create_user("s@example.org", "s@example.org", "x" * 12)
    other_portal = Portal.objects.create(slug="autre", name="Autre")
    AgentRole.objects.create(organisation=Organisation.objects.create(portal=other_portal, slug="v", name="V"),
                             user=stranger)
    client.force_login(stranger)
    assert client.get(reverse("accounts:staff-erasures", args=[world.portal.slug])).status_code == 403
    assert client.get(reverse("accounts:staff-erasure", args=["autre", req.pk])).status_code == 404
    assert client.post(reverse("accounts:staff-erasure", args=["autre", req.pk])).status_code == 404
    req.refresh_from_db()
    assert req.status == "open"


def test_the_download_holds_the_family_billing_account(client, settings, tmp_path):
    from tests.billing.outputs_data import billed_town, parent_of

    settings.MEDIA_ROOT = tmp_path
    b = billed_town(ref="F001")
    other = billed_town(ref="G001")  # another town's family: nothing of it
    client.force_login(parent_of(b.household, "famille@example.org"))
    r = client.get(reverse("accounts:family-data", args=[b.org.portal.slug]), {"download": "json"})
    billing = json.loads(r.content)["billing"]
    assert [i["number"] for i in billing["invoices"]] == [b.invoice.number]
    assert billing["invoices"][0]["total_cents"] == 5400 and billing["invoices"][0]["due_cents"] == 3400
    assert [p["receipt_number"] for p in billing["payments"]] == [b.deposit.receipt_number]
    assert billing["balance_cents"] == 3400
    assert other.household.reference not in r.content.decode()
