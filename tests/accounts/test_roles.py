"""Staff roles per organisation: `guichet role`, the selectors other modules use, the admin."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.http import Http404

from guichet.accounts.models import StaffRole
from guichet.accounts.selectors import (
    is_staff_member,
    organisations_for,
    require_role,
    roles_of,
    staff_organisations,
    user_has_role,
)
from guichet.bookings.models import AgentRole, Site
from guichet.catalog.models import Organisation, Portal
from guichet.common.actor import Actor
from guichet.journal.models import Entry
from guichet.status import services

SEED = [
    {"op": "organisation.set", "slug": "ville", "name": "Ville"},
    {"op": "organisation.set", "slug": "agglo", "name": "Agglomération", "kind": "agglomeration"},
    {"op": "service.set", "organisation": "agglo", "slug": "eau", "name": "Service de l'eau"},
]


@pytest.fixture
def portal(db):
    services.publish_now(portal_slug="testville", operations=SEED, actor=Actor.cli(), title="seed")
    services.publish_now(portal_slug="autreville", operations=SEED[:1], actor=Actor.cli(), title="seed")
    portal = Portal.objects.get(slug="testville")
    Site.objects.create(organisation=portal.organisations.get(slug="ville"), slug="jules-verne", name="Jules Verne")
    return portal


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def org(portal_slug, slug):
    return Organisation.objects.get(portal__slug=portal_slug, slug=slug)


def test_role_add_creates_a_staff_account_and_the_role_is_visible_to_the_selectors(portal):
    out = run("role", "add", "--email", "Compta@Testville.fr", "--kind", "finance", "--portal", "testville",
              "--organisation", "ville")
    assert "created staff account compta@testville.fr" in out
    assert "granted role finance on testville/ville" in out
    password = out.split("give it to the person): ")[1].split()[0]
    user = get_user_model().objects.get(email="compta@testville.fr")
    assert user.is_staff and user.check_password(password)
    assert is_staff_member(user)
    ville, agglo, other = org("testville", "ville"), org("testville", "agglo"), org("autreville", "ville")
    assert user_has_role(user, "finance", ville)
    # Only there, and only finance.
    assert not user_has_role(user, "finance", agglo)
    assert not user_has_role(user, "finance", other)
    assert not user_has_role(user, "it", ville)
    assert list(organisations_for(user, "finance")) == [ville]
    assert list(organisations_for(user, "finance", Portal.objects.get(slug="autreville"))) == []
    require_role(user, "finance", ville)
    with pytest.raises(PermissionDenied):
        require_role(user, "finance", agglo)
    entry = Entry.objects.get(operation="accounts.role.add")
    assert "compta" not in str(entry.details) and entry.details["kind"] == "finance"
    # Again: nothing new, no password printed, no second journal entry.
    again = run("role", "add", "--email", "compta@testville.fr", "--kind", "finance", "--portal", "testville",
                "--organisation", "ville")
    assert "already had role finance" in again and "password" not in again
    assert StaffRole.objects.filter(user=user).count() == 1
    assert Entry.objects.filter(operation="accounts.role.add").count() == 1


def test_role_remove_withdraws_one_role_only(portal):
    for kind in ("it", "admin"):
        run("role", "add", "--email", "dsi@testville.fr", "--kind", kind, "--portal", "testville",
            "--organisation", "ville")
    out = run("role", "remove", "--email", "dsi@testville.fr", "--kind", "it", "--portal", "testville",
              "--organisation", "ville")
    assert "removed role it on testville/ville" in out
    user = get_user_model().objects.get(email="dsi@testville.fr")
    assert not user_has_role(user, "it", org("testville", "ville"))
    assert user_has_role(user, "admin", org("testville", "ville"))
    again = run("role", "remove", "--email", "dsi@testville.fr", "--kind", "it", "--portal", "testville",
                "--organisation", "ville")
    assert "nothing changed" in again
    assert Entry.objects.filter(operation="accounts.role.remove").count() == 1


def test_booking_agent_roles_of_one_site_through_the_same_command(portal):
    run("role", "add", "--email", "agent@testville.fr", "--kind", "agent", "--portal", "testville",
        "--organisation", "ville", "--site", "jules-verne")
    user = get_user_model().objects.get(email="agent@testville.fr")
    role = AgentRole.objects.get(user=user)
    assert role.site.slug == "jules-verne" and role.organisation.slug == "ville"
    assert user_has_role(user, "agent", org("testville", "ville"))
    assert not user_has_role(user, "agent", org("testville", "agglo"))
    assert ("agent", "testville", "ville/site:jules-verne") in roles_of(user)
    listing = run("role", "list", "--email", "agent@testville.fr")
    assert "agent@testville.fr\tagent\ttestville\tville/site:jules-verne" in listing


def test_editor_roles_count_for_their_organisation(portal):
    run("editor", "add", "--portal", "testville", "--email", "eau@testville.fr", "--service", "eau")
    user = get_user_model().objects.get(email="eau@testville.fr")
    assert list(organisations_for(user, "editor")) == [org("testville", "agglo")]
    assert ("editor", "testville", "agglo/eau") in roles_of(user)
    run("editor", "add", "--portal", "autreville", "--email", "eau@testville.fr")
    assert set(organisations_for(user, "editor")) == {org("testville", "agglo"), org("autreville", "ville")}


def test_staff_organisations_for_staff_views(portal):
    run("role", "add", "--email", "guichet@testville.fr", "--kind", "counter", "--portal", "testville",
        "--organisation", "agglo")
    user = get_user_model().objects.get(email="guichet@testville.fr")
    p, orgs = staff_organisations(user, "counter", "testville")
    assert p == portal and orgs == [org("testville", "agglo")]
    with pytest.raises(PermissionDenied):
        staff_organisations(user, "counter", "autreville")
    with pytest.raises(PermissionDenied):
        staff_organisations(user, "finance", "testville")
    with pytest.raises(Http404):
        staff_organisations(user, "counter", "nowhere")


def test_superuser_holds_every_role_and_a_deactivated_account_none(portal):
    User = get_user_model()
    root = User.objects.create_superuser("root", "root@testville.fr", "x" * 12)
    assert user_has_role(root, "it", org("autreville", "ville"))
    run("role", "add", "--email", "parti@testville.fr", "--kind", "finance", "--portal", "testville",
        "--organisation", "ville")
    gone = User.objects.get(email="parti@testville.fr")
    gone.is_active = False
    gone.save()
    assert not user_has_role(gone, "finance", org("testville", "ville"))
    assert not is_staff_member(gone)
    with pytest.raises(CommandError, match="--email: this account is deactivated"):
        run("role", "add", "--email", "parti@testville.fr", "--kind", "it", "--portal", "testville",
            "--organisation", "ville")


@pytest.mark.parametrize(("args", "message"), [
    (["--kind", "treasurer", "--portal", "testville", "--organisation", "ville"], "--kind: unknown role 'treasurer'"),
    (["--kind", "editor", "--portal", "testville", "--organisation", "ville"], "guichet editor add"),
    (["--kind", "finance", "--portal", "nowhere", "--organisation", "ville"], "--portal: no page 'nowhere'"),
    (["--kind", "finance", "--portal", "testville", "--organisation", "mairie"],
     "--organisation: no organisation 'mairie' on page 'testville' (known: "),
    (["--kind", "finance", "--portal", "testville"], "--organisation: this role is per organisation"),
    (["--kind", "finance", "--portal", "testville", "--organisation", "ville", "--site", "jules-verne"],
     "--site: only booking agents"),
    (["--kind", "agent", "--portal", "testville", "--organisation", "ville", "--site", "nulle-part"],
     "--site: no site 'nulle-part' in organisation 'ville' (known: jules-verne)"),
])
def test_role_add_bad_arguments_name_the_option_and_change_nothing(portal, args, message):
    with pytest.raises(CommandError) as e:
        run("role", "add", "--email", "x@testville.fr", *args)
    assert message in str(e.value)
    assert not get_user_model().objects.filter(email="x@testville.fr").exists()
    assert not Entry.objects.filter(operation__startswith="accounts.role").exists()


def test_role_bad_email_and_unknown_account(portal):
    with pytest.raises(CommandError, match="--email: 'pas-une-adresse' is not an e-mail address"):
        run("role", "add", "--email", "pas-une-adresse", "--kind", "it", "--portal", "testville",
            "--organisation", "ville")
    with pytest.raises(CommandError, match="--email: no account with this e-mail address"):
        run("role", "remove", "--email", "inconnu@testville.fr", "--kind", "it", "--portal", "testville",
            "--organisation", "ville")
    with pytest.raises(CommandError, match="--kind: unknown role 'boss'"):
        run("role", "list", "--kind", "boss")


def test_admin_adds_and_deletes_through_the_journalled_services(portal, client):
    User = get_user_model()
    root = User.objects.create_superuser("root", "root@testville.fr", "x" * 12)
    member = User.objects.create_user("membre@testville.fr", "membre@testville.fr", "y" * 12)
    client.force_login(root)
    ville = org("testville", "ville")
    r = client.post("/admin/accounts/staffrole/add/", {"user": member.pk, "organisation": ville.pk, "kind": "it"})
    assert r.status_code == 302, r.content
    assert user_has_role(member, "it", ville)
    member.refresh_from_db()
    assert member.is_staff
    role = StaffRole.objects.get(user=member)
    r = client.post(f"/admin/accounts/staffrole/{role.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not StaffRole.objects.exists()
    assert list(Entry.objects.filter(operation__startswith="accounts.role").values_list("operation", flat=True)
                .order_by("pk")) == ["accounts.role.add", "accounts.role.remove"]
