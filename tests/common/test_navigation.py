"""Ways in: a parent finds the family portal from the public pages; staff find their spaces."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from guichet.accounts.models import StaffRole
from guichet.bookings.models import Activity, AgentRole
from guichet.catalog.models import Organisation, Portal, Service
from guichet.water.models import Creditor

FAMILY_LINK = "Espace famille : réservations, factures"


@pytest.fixture
def towns(db):
    """Two towns: one whose organisation offers activities, one without any."""
    with_kids = Portal.objects.create(slug="villeneuve", name="Villeneuve")
    org = Organisation.objects.create(portal=with_kids, slug="mairie", name="Mairie de Villeneuve", kind="commune")
    Activity.objects.create(organisation=org, slug="mercredis", name="Mercredis", kind="leisure_wednesday",
                            parts=["day"], booking_rule="sunday before at 23:59",
                            cancellation_rule="sunday before at 23:59")
    without = Portal.objects.create(slug="sans-enfants", name="Sans Enfants")
    Organisation.objects.create(portal=without, slug="mairie", name="Mairie", kind="commune")
    return with_kids, without


def test_town_pages_link_to_the_family_portal_and_sign_in_when_activities_exist(client, towns):
    Service.objects.create(organisation=towns[0].organisations.get(), slug="cantine", name="Cantine")
    for url in ("/villeneuve/", "/villeneuve/status/", "/villeneuve/status/services/cantine/"):
        page = client.get(url).content.decode()
        assert FAMILY_LINK in page and 'href="/villeneuve/famille/"' in page, url
        assert 'href="/accounts/login/?next=/villeneuve/famille/"' in page and "Se connecter" in page, url
    for url in ("/sans-enfants/", "/sans-enfants/status/"):
        page = client.get(url).content.decode()
        assert FAMILY_LINK not in page and "/sans-enfants/famille/" not in page, url


def test_signed_in_parent_sees_the_family_portal_link_without_sign_in(client, towns):
    client.force_login(get_user_model().objects.create_user("p@example.org", "p@example.org", "x"))
    page = client.get("/villeneuve/").content.decode()
    assert 'href="/villeneuve/famille/"' in page and "/accounts/login/?next=" not in page


def test_home_lists_the_family_portal_only_for_towns_with_activities(client, towns):
    page = client.get("/").content.decode()
    assert page.count(FAMILY_LINK) == 1 and 'href="/villeneuve/famille/"' in page
    assert "/sans-enfants/famille/" not in page


def test_static_export_has_no_family_portal_link(towns, tmp_path):
    from guichet.status.export import export_all

    export_all(directory=tmp_path, now=timezone.now())
    for path in tmp_path.rglob("*.html"):
        assert "/famille/" not in path.read_text(), path


def _staff(org, *kinds):
    user = get_user_model().objects.create_user(f"{'-'.join(kinds)}@example.org", "s@example.org", "x")
    for kind in kinds:
        StaffRole.objects.create(user=user, organisation=org, kind=kind, granted_at=timezone.now())
    return user


def test_staff_home_has_billing_and_water_cards_for_the_roles_held(client, towns):
    town = towns[0]
    org = town.organisations.get()
    Creditor.objects.create(organisation=org, name="Régie", creditor_id="FR72ZZZ123456",
                            iban="FR7630006000000001123456786")
    client.force_login(_staff(org, "finance"))
    page = client.get("/accounts/staff/").content.decode()
    assert 'href="/manage/billing/villeneuve/mairie/"' in page and 'href="/manage/water/villeneuve/mairie/"' in page
    assert page.count("<p>Mairie de Villeneuve</p>") == 2  # each card names its organisation
    client.force_login(_staff(org, "counter"))
    page = client.get("/accounts/staff/").content.decode()
    assert 'href="/manage/billing/villeneuve/mairie/"' in page and "/manage/water/" not in page
    client.force_login(_staff(org, "it"))
    page = client.get("/accounts/staff/").content.decode()
    assert "/manage/billing/" not in page and "/manage/water/" not in page


def test_no_water_card_for_an_organisation_without_the_water_service(client, towns):
    client.force_login(_staff(towns[0].organisations.get(), "finance"))
    page = client.get("/accounts/staff/").content.decode()
    assert "/manage/billing/villeneuve/mairie/" in page and "/manage/water/" not in page


def test_staff_screens_link_back_to_your_spaces(client, towns):
    org = towns[0].organisations.get()
    Creditor.objects.create(organisation=org, name="Régie", creditor_id="FR72ZZZ123456",
                            iban="FR7630006000000001123456786")
    client.force_login(_staff(org, "finance"))
    for url in ("/manage/billing/villeneuve/mairie/", "/manage/water/villeneuve/mairie/"):
        page = client.get(url).content.decode()
        assert '<a href="/accounts/staff/">Vos espaces</a>' in page, url


def test_bookings_agent_screen_links_back_to_your_spaces(client, towns):
    user = get_user_model().objects.create_user("agent", "a@example.org", "x")
    AgentRole.objects.create(organisation=towns[0].organisations.get(), user=user)
    client.force_login(user)
    page = client.get("/manage/bookings/villeneuve/").content.decode()
    assert '<a href="/accounts/staff/">Vos espaces</a>' in page
    home = client.get("/accounts/staff/").content.decode()
    assert '<a href="/accounts/staff/">' not in home  # the spaces page does not link to itself
