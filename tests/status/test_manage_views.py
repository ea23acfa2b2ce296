"""The editors' back-office, end to end through the test client: responses AND resulting state."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone, translation

from guichet.accounts.models import EditorRole
from guichet.catalog.models import Portal, Service
from guichet.common.actor import Actor
from guichet.journal.models import Entry
from guichet.status import services
from guichet.status.models import (
    Advisory,
    Availability,
    ChangeSet,
    Incident,
    IncidentUpdate,
    RestorationTarget,
    State,
)
from guichet.status.selectors import page_state

pytestmark = pytest.mark.django_db

SEED = [
    {"op": "organisation.set", "slug": "ville", "name": "Ville de Testville"},
    {"op": "service.set", "organisation": "ville", "slug": "eau", "name": "Service de l'eau"},
    {"op": "procedure.set", "service": "eau", "slug": "facturation", "name": "Facturation"},
    {"op": "service.set", "organisation": "ville", "slug": "etat-civil", "name": "État civil"},
    {"op": "procedure.set", "service": "etat-civil", "slug": "naissance", "name": "Déclaration de naissance"},
    {"op": "contact.set", "organisation": "ville", "key": "accueil-eau", "label": "Accueil de l'eau",
     "kind": "phone", "value": "02 40 00 00 00"},
    {"op": "incident.set", "organisation": "ville", "slug": "cyber", "title": "Cyberattaque",
     "nature": "cyberattack", "started_at": "2024-04-01T08:00:00+02:00"},
    {"op": "availability.set", "incident": "cyber", "service": "eau", "procedure": "facturation",
     "state": "suspended", "explanation": "Aucune facture ne peut être éditée."},
]


def fr(text) -> str:
    """A UI label as the (French-first) page shows it, whether or not the catalogue is compiled."""
    with translation.override("fr"):
        return translation.gettext(str(text))


@pytest.fixture
def portal():
    services.publish_now(portal_slug="testville", operations=SEED, actor=Actor.cli(), title="seed")
    return Portal.objects.get(slug="testville")


def make_editor(portal, email, **scope):
    user = get_user_model().objects.create_user(username=email, email=email, password="x" * 12, is_staff=True)
    EditorRole.objects.create(user=user, portal=portal, **scope)
    return user


@pytest.fixture
def editor(portal):
    return make_editor(portal, "com@testville.fr")


@pytest.fixture
def second_editor(portal):
    return make_editor(portal, "dircom@testville.fr")


@pytest.fixture
def client_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def edit_url(kind, portal="testville"):
    return reverse("status:manage-edit", args=[portal, kind])


def row_state(portal, service="eau", procedure="facturation"):
    ss = page_state(portal, timezone.now()).service(service)
    rows = [r for pv in ss.procedures if pv.procedure.slug == procedure for r in pv.rows]
    return [r.state for r in rows]


def counts():
    return {
        "changesets": ChangeSet.objects.count(), "journal": Entry.objects.count(),
        "incidents": Incident.objects.count(), "rows": Availability.objects.count(),
        "targets": RestorationTarget.objects.count(), "advisories": Advisory.objects.count(),
        "updates": IncidentUpdate.objects.count(),
    }


AVAILABILITY = {
    "incident": "cyber", "procedure": "eau/facturation", "channel": "any", "state": "degraded",
    "explanation": "Factures éditées à la main.", "instead": "Appelez l'accueil de l'eau.",
    "since": "2024-05-01", "contacts": ["accueil-eau"],
}


def post_form(client, kind, data, idem="0" * 32):
    return client.post(edit_url(kind), {"idem": idem, **data})


def publish(client, cs, action="publish"):
    return client.post(reverse("status:manage-changeset", args=["testville", cs.pk]), {"action": action})


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,args", [
    ("status:manage-home", []),
    ("status:manage-portal", ["testville"]),
    ("status:manage-edit", ["testville", "availability"]),
])
def test_anonymous_is_sent_to_login(client, portal, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.real_two_factor
def test_login_page_signs_in_and_leads_to_the_back_office(client, editor):
    from tests.accounts.helpers import pass_second_factor

    page = client.get(reverse("accounts:login"))
    assert page.status_code == 200
    assert 'autocomplete="current-password"' in page.content.decode()
    response = client.post(reverse("accounts:login"), {"username": "com@testville.fr", "password": "x" * 12})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:after-login")
    # Staff pages need the second factor first (the real flow: tests/accounts/test_two_factor.py).
    assert reverse("accounts:two-factor-setup") in client.get(reverse("status:manage-home"))["Location"]
    pass_second_factor(client, editor)
    home = client.get(reverse("status:manage-home"))
    assert reverse("status:manage-portal", args=["testville"]) in home.content.decode()


def test_user_without_role_gets_403(client_for, portal):
    stranger = get_user_model().objects.create_user(username="x@y.fr", email="x@y.fr", password="x" * 12)
    c = client_for(stranger)
    assert c.get(reverse("status:manage-portal", args=["testville"])).status_code == 403
    assert c.get(edit_url("availability")).status_code == 403
    before = counts()
    assert post_form(c, "availability", AVAILABILITY).status_code == 403
    assert counts() == before


def test_editor_of_another_portal_gets_403(client_for, portal):
    services.publish_now(portal_slug="autre", operations=[{"op": "organisation.set", "slug": "o", "name": "O"}],
                         actor=Actor.cli(), title="seed")
    other = make_editor(Portal.objects.get(slug="autre"), "ed@autre.fr")
    assert client_for(other).get(reverse("status:manage-portal", args=["testville"])).status_code == 403


def test_dashboard_shows_the_page_with_an_edit_action_per_row(client_for, editor, portal):
    response = client_for(editor).get(reverse("status:manage-portal", args=["testville"]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Cyberattaque" in html and "Service de l&#x27;eau" in html and "Facturation" in html
    assert fr(State.SUSPENDED.label) in html
    assert f"{edit_url('availability')}?incident=cyber&amp;service=eau&amp;procedure=facturation&amp;channel=any" in html
    assert edit_url("remove-row") in html and edit_url("target") in html and edit_url("close") in html
    # the service working normally is offered for listing
    assert f"{edit_url('availability')}?service=etat-civil" in html


# --- Draft, review, publication --------------------------------------------------------------


def test_editor_publishes_an_availability_change_and_the_public_state_changes(client_for, editor, portal):
    c = client_for(editor)
    response = post_form(c, "availability", AVAILABILITY)
    cs = ChangeSet.objects.get(author=editor)
    assert response.status_code == 302
    assert response["Location"] == reverse("status:manage-changeset", args=["testville", cs.pk])
    assert cs.status == ChangeSet.Status.DRAFT

    # A draft is not public.
    assert row_state(portal) == ["suspended"]
    assert not Entry.objects.filter(operation="status.availability.set", actor=f"user:{editor.pk}").exists()

    review = c.get(response["Location"]).content.decode()
    assert "Service de l&#x27;eau / Facturation / " + fr("All channels") in review
    assert fr(State.SUSPENDED.label) in review and fr(State.DEGRADED.label) in review
    assert "Factures éditées à la main." in review

    assert publish(c, cs).status_code == 302
    cs.refresh_from_db()
    assert cs.status == ChangeSet.Status.PUBLISHED
    assert row_state(portal) == ["degraded"]
    row = Availability.objects.get(procedure__slug="facturation")
    assert row.instead == "Appelez l'accueil de l'eau." and [c.key for c in row.contacts.all()] == ["accueil-eau"]
    ops = set(Entry.objects.filter(actor=f"user:{editor.pk}").values_list("operation", flat=True))
    assert {"status.changeset.create", "status.availability.set", "status.changeset.publish"} <= ops

    public = c.get(reverse("status:json", args=["testville"]))
    assert public.status_code == 200
    assert "Factures éditées à la main." in json.dumps(public.json(), ensure_ascii=False)


def test_posted_update_reaches_the_timeline_and_public_json(client_for, editor, portal):
    c = client_for(editor)
    response = post_form(c, "update", {"incident": "cyber", "published_at": "2024-05-15T10:30",
                                       "body": "La facturation reprendra cet été."})
    assert response.status_code == 302
    cs = ChangeSet.objects.get(author=editor)
    assert not IncidentUpdate.objects.exists()
    publish(c, cs)
    incident = page_state(portal, timezone.now()).incidents[0]
    assert [u.body for u in incident.updates] == ["La facturation reprendra cet été."]
    assert incident.updates[0].published_at.isoformat() == "2024-05-15T08:30:00+00:00"  # Paris time entered
    public = c.get(reverse("status:json", args=["testville"]))
    assert "La facturation reprendra cet été." in json.dumps(public.json(), ensure_ascii=False)


def test_forms_collect_into_one_draft_published_at_once(client_for, editor, portal):
    c = client_for(editor)
    post_form(c, "availability", AVAILABILITY, idem="1" * 32)
    post_form(c, "target", {"incident": "cyber", "scope": "eau", "precision": "period",
                            "text": "dans le courant de l'été"}, idem="2" * 32)
    drafts = ChangeSet.objects.filter(author=editor, status=ChangeSet.Status.DRAFT)
    assert drafts.count() == 1
    draft = drafts.get()
    assert [op["op"] for op in draft.operations] == ["availability.set", "target.set"]
    assert not ChangeSet.objects.filter(author=editor, status=ChangeSet.Status.DISCARDED).exists()
    review = c.get(reverse("status:manage-changeset", args=["testville", draft.pk])).content.decode()
    assert "dans le courant de l&#x27;été" in review
    publish(c, draft)
    ss = page_state(portal, timezone.now()).service("eau")
    assert ss.state == "degraded" and ss.targets[0].current.text == "dans le courant de l'été"


def test_restoration_target_revision_keeps_history(client_for, editor, portal):
    c = client_for(editor)
    post_form(c, "target", {"incident": "cyber", "scope": "eau/facturation", "precision": "period",
                            "text": "dans le courant de l'été"}, idem="1" * 32)
    publish(c, ChangeSet.objects.get(status=ChangeSet.Status.DRAFT))
    form = c.get(edit_url("target") + "?incident=cyber&service=eau&procedure=facturation").content.decode()
    assert "dans le courant de l&#x27;été" in form  # prefilled with the current target
    post_form(c, "target", {"incident": "cyber", "scope": "eau/facturation", "precision": "exact",
                            "earliest": "2024-09-02"}, idem="2" * 32)
    publish(c, ChangeSet.objects.get(status=ChangeSet.Status.DRAFT))
    tv = page_state(portal, timezone.now()).service("eau").targets[0]
    assert tv.current.precision == "exact" and str(tv.current.earliest) == "2024-09-02"
    assert [t.text for t in tv.history] == ["dans le courant de l'été"]


def test_new_incident_advisory_and_close(client_for, editor, portal):
    c = client_for(editor)
    r = post_form(c, "incident", {"organisation": "ville", "title": "Panne téléphonique", "nature": "network",
                                  "started_at": "2024-06-01T09:00", "summary": "Le standard ne répond plus."},
                  idem="1" * 32)
    assert r.status_code == 302
    r = post_form(c, "advisory", {"organisation": "ville", "advisory_kind": "phishing", "audience": "everyone",
                                  "title": "Attention aux faux courriels", "body": "Ne cliquez pas.",
                                  "published_at": "2024-06-01T10:00", "incident": ""}, idem="2" * 32)
    assert r.status_code == 302
    publish(c, ChangeSet.objects.get(status=ChangeSet.Status.DRAFT))
    state = page_state(portal, timezone.now())
    assert {iv.incident.title for iv in state.incidents} == {"Cyberattaque", "Panne téléphonique"}
    assert Incident.objects.get(title="Panne téléphonique").slug == "panne-telephonique"
    assert [a.title for a in state.advisories] == ["Attention aux faux courriels"]

    r = post_form(c, "close", {"incident": "panne-telephonique", "ended_at": "2024-06-02T18:00"}, idem="3" * 32)
    assert r.status_code == 302
    publish(c, ChangeSet.objects.get(status=ChangeSet.Status.DRAFT))
    assert [iv.incident.title for iv in page_state(portal, timezone.now()).incidents] == ["Cyberattaque"]


def test_remove_row_and_unlist(client_for, editor, portal):
    c = client_for(editor)
    post_form(c, "remove-row", {"incident": "cyber", "procedure": "eau/facturation", "channel": "any"})
    publish(c, ChangeSet.objects.get(status=ChangeSet.Status.DRAFT))
    assert row_state(portal) == []
    assert page_state(portal, timezone.now()).service("eau").listed  # still listed, headline may stay
    post_form(c, "unlist", {"incident": "cyber", "service": "eau"}, idem="9" * 32)
    publish(c, ChangeSet.objects.get(status=ChangeSet.Status.DRAFT))
    assert not page_state(portal, timezone.now()).service("eau").listed


def test_confirm_page_still_accurate(client_for, editor, portal):
    Portal.objects.filter(pk=portal.pk).update(last_checked_at=None)
    r = client_for(editor).post(reverse("status:manage-checked", args=["testville"]))
    assert r.status_code == 302
    portal.refresh_from_db()
    assert portal.last_checked_at is not None
    assert Entry.objects.filter(operation="catalog.portal.checked").exists()


def test_discard_draft_changes_nothing_public(client_for, editor, portal):
    c = client_for(editor)
    post_form(c, "availability", AVAILABILITY)
    cs = ChangeSet.objects.get(status=ChangeSet.Status.DRAFT)
    publish(c, cs, action="discard")
    cs.refresh_from_db()
    assert cs.status == ChangeSet.Status.DISCARDED and row_state(portal) == ["suspended"]


# --- Idempotency ------------------------------------------------------------------------------


def test_double_submit_with_the_same_key_creates_one_changeset(client_for, editor, portal):
    c = client_for(editor)
    first = post_form(c, "availability", AVAILABILITY, idem="a" * 32)
    second = post_form(c, "availability", AVAILABILITY, idem="a" * 32)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert ChangeSet.objects.filter(author=editor).count() == 1
    cs = ChangeSet.objects.get(author=editor)
    assert len(cs.operations) == 1
    publish(c, cs)
    publish(c, cs)  # a double click on "Publish" acts once too
    assert Entry.objects.filter(operation="status.changeset.publish", actor=f"user:{editor.pk}").count() == 1


def test_forms_carry_a_fresh_idempotency_key(client_for, editor, portal):
    c = client_for(editor)
    a = c.get(edit_url("update")).content.decode()
    b = c.get(edit_url("update")).content.decode()
    key = 'name="idem" value="'
    assert key in a
    assert a.split(key)[1][:32] != b.split(key)[1][:32]


# --- Approval by a second editor -------------------------------------------------------------


@pytest.fixture
def approval_portal(portal):
    from guichet.catalog import services as catalog

    catalog.portal_upsert(actor=Actor.cli(), slug="testville", name=portal.name, requires_approval=True)
    portal.refresh_from_db()
    assert portal.requires_approval
    return portal


def test_approval_flow_with_two_editors(client, editor, second_editor, approval_portal):
    client.force_login(editor)
    post_form(client, "availability", AVAILABILITY)
    cs = ChangeSet.objects.get(author=editor)
    review = client.get(reverse("status:manage-changeset", args=["testville", cs.pk])).content.decode()
    assert 'value="publish"' in review
    publish(client, cs)
    cs.refresh_from_db()
    assert cs.status == ChangeSet.Status.PENDING
    assert row_state(approval_portal) == ["suspended"]  # submitted is not published

    # The author cannot approve their own change: a clear message, nothing published.
    response = publish(client, cs, action="approve")
    assert response.status_code == 400
    assert fr("You wrote this change: another editor must approve it.") in response.content.decode()
    cs.refresh_from_db()
    assert cs.status == ChangeSet.Status.PENDING and row_state(approval_portal) == ["suspended"]

    client.force_login(second_editor)
    home = client.get(reverse("status:manage-home")).content.decode()
    assert reverse("status:manage-changeset", args=["testville", cs.pk]) in home
    review = client.get(reverse("status:manage-changeset", args=["testville", cs.pk])).content.decode()
    assert 'value="approve"' in review and 'value="reject"' in review
    assert publish(client, cs, action="approve").status_code == 302
    cs.refresh_from_db()
    assert cs.status == ChangeSet.Status.PUBLISHED and cs.decided_by == second_editor
    assert row_state(approval_portal) == ["degraded"]


def test_second_editor_rejects(client, editor, second_editor, approval_portal):
    client.force_login(editor)
    post_form(client, "availability", AVAILABILITY)
    cs = ChangeSet.objects.get(author=editor)
    publish(client, cs)
    client.force_login(second_editor)
    publish(client, cs, action="reject")
    cs.refresh_from_db()
    assert cs.status == ChangeSet.Status.REJECTED and row_state(approval_portal) == ["suspended"]


def test_another_editor_cannot_publish_someones_draft(client, editor, second_editor, portal):
    client.force_login(editor)
    post_form(client, "availability", AVAILABILITY)
    cs = ChangeSet.objects.get(author=editor)
    client.force_login(second_editor)
    assert publish(client, cs).status_code == 403
    cs.refresh_from_db()
    assert cs.status == ChangeSet.Status.DRAFT


# --- Scoped editors --------------------------------------------------------------------------


def test_service_scoped_editor_is_refused_on_another_service(client_for, portal):
    manager = make_editor(portal, "etat-civil@testville.fr", service=Service.objects.get(slug="etat-civil"))
    c = client_for(manager)
    dashboard = c.get(reverse("status:manage-portal", args=["testville"])).content.decode()
    assert "État civil" in dashboard
    assert "service=eau&amp;procedure=facturation" not in dashboard  # no edit action on others' rows
    assert c.get(edit_url("availability") + "?incident=cyber&service=eau&procedure=facturation").status_code == 403

    before = counts()
    response = post_form(c, "availability", AVAILABILITY)
    assert response.status_code == 400
    assert counts() == before
    with pytest.raises(services.PermissionDenied):  # and the service itself refuses it too
        services.changeset_create(portal=portal, user=manager, actor=Actor.for_user(manager), title="x",
                                  operations=[{"op": "availability.set", "incident": "cyber", "service": "eau",
                                               "procedure": "facturation", "state": "normal"}],
                                  now=timezone.now())

    ok = post_form(c, "availability", {**AVAILABILITY, "procedure": "etat-civil/naissance", "contacts": []},
                   idem="b" * 32)
    assert ok.status_code == 302
    publish(c, ChangeSet.objects.get(author=manager))
    assert row_state(portal, "etat-civil", "naissance") == ["degraded"]


def test_service_scoped_editor_cannot_create_incidents(client_for, portal):
    manager = make_editor(portal, "eau@testville.fr", service=Service.objects.get(slug="eau"))
    c = client_for(manager)
    before = counts()
    response = post_form(c, "incident", {"organisation": "ville", "title": "X", "nature": "other",
                                         "started_at": "2024-06-01T09:00"})
    assert response.status_code in (400, 403)
    assert counts() == before


# --- Bad input ------------------------------------------------------------------------------


def _field_errors(response) -> dict:
    return {name: list(errs) for name, errs in response.context["form"].errors.items()}


def test_bad_incident_form_shows_field_errors_and_changes_nothing(client_for, editor, portal):
    c = client_for(editor)
    before = counts()
    response = post_form(c, "incident", {"organisation": "ville", "title": "", "nature": "volcano",
                                         "started_at": "hier"})
    assert response.status_code == 400
    errors = _field_errors(response)
    assert {"title", "nature", "started_at"} <= set(errors)
    assert 'aria-invalid="true"' in response.content.decode()
    assert counts() == before


def test_service_errors_land_on_the_right_field(client_for, editor, portal):
    c = client_for(editor)
    before = counts()
    # Only the services know the incident started on 1 April: closing it before is refused.
    response = post_form(c, "close", {"incident": "cyber", "ended_at": "2024-03-01T10:00"})
    assert response.status_code == 400
    assert "ended_at" in _field_errors(response)
    # An exact target needs its date (checked by the operations' validation).
    response = post_form(c, "target", {"incident": "cyber", "scope": "eau", "precision": "exact"})
    assert response.status_code == 400
    assert "earliest" in _field_errors(response)
    # An advisory that expires before it is shown.
    response = post_form(c, "advisory", {"organisation": "ville", "advisory_kind": "information",
                                         "audience": "everyone", "title": "T", "body": "B",
                                         "published_at": "2024-06-02T10:00", "expires_at": "2024-06-01T10:00"})
    assert response.status_code == 400
    assert "expires_at" in _field_errors(response)
    # A procedure that does not exist.
    response = post_form(c, "availability", {**AVAILABILITY, "procedure": "eau/nope"})
    assert response.status_code == 400
    assert "procedure" in _field_errors(response)
    assert counts() == before


@pytest.mark.parametrize("state", ["suspended", "degraded"])
def test_a_disrupted_row_without_what_to_do_instead_is_refused_on_that_field(client_for, editor, portal, state):
    c = client_for(editor)
    before = counts()
    for instead in ("", "  \n "):
        response = post_form(c, "availability", {**AVAILABILITY, "state": state, "instead": instead})
        assert response.status_code == 400
        errors = _field_errors(response)
        assert list(errors) == ["instead"]
        with translation.override("fr"):
            assert "Dites quoi faire à la place" in errors["instead"][0]
    assert counts() == before
    # Works normally: nothing to do instead, accepted.
    response = post_form(c, "availability", {**AVAILABILITY, "state": "normal", "instead": ""}, idem="1" * 32)
    assert response.status_code == 302


def test_forms_need_an_incident_first(client_for, editor, portal):
    Incident.objects.update(ended_at=timezone.now())
    response = client_for(editor).get(edit_url("availability"))
    assert response.status_code == 302 and response["Location"] == edit_url("incident")


def test_unknown_form_kind_is_404(client_for, editor, portal):
    assert client_for(editor).get(edit_url("nope")).status_code == 404


def test_editing_an_incident_keeps_its_identifier(client_for, editor, portal):
    c = client_for(editor)
    form = c.get(edit_url("incident") + "?incident=cyber").content.decode()
    assert 'value="Cyberattaque"' in form and 'name="incident_slug" value="cyber"' in form
    r = post_form(c, "incident", {"incident_slug": "cyber", "organisation": "ville", "title": "Cyberattaque du 1er avril",
                                  "nature": "cyberattack", "started_at": "2024-04-01T08:00"})
    assert r.status_code == 302
    publish(c, ChangeSet.objects.get(status=ChangeSet.Status.DRAFT))
    assert list(Incident.objects.values_list("slug", "title")) == [("cyber", "Cyberattaque du 1er avril")]


def test_scoped_editor_is_told_what_their_role_covers(client_for, portal):
    manager = make_editor(portal, "eau@testville.fr", service=Service.objects.get(slug="eau"))
    html = client_for(manager).get(reverse("status:manage-portal", args=["testville"])).content.decode()
    assert "Service de l&#x27;eau." in html.split('class="m-note"')[1].split("</p>")[0]
    assert reverse("status:manage-checked", args=["testville"]) not in html  # whole-page action hidden
    assert client_for(manager).post(reverse("status:manage-checked", args=["testville"])).status_code == 403


def test_signed_in_user_without_any_role_is_told_so(client_for, portal):
    nobody = get_user_model().objects.create_user(username="n@y.fr", email="n@y.fr", password="x" * 12)
    response = client_for(nobody).get(reverse("status:manage-home"))
    assert response.status_code == 403
    assert "guichet editor add" in response.content.decode()
