"""Applying operations: all or nothing, idempotent, journaled; drafts, approval and roles."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from guichet.accounts.models import EditorRole
from guichet.catalog.models import ContactPoint, Organisation, Portal, Procedure, Service
from guichet.common.actor import Actor
from guichet.journal.models import Entry, Head
from guichet.journal.selectors import verify_all
from guichet.status.models import (
    AffectedService,
    Availability,
    ChangeSet,
    Incident,
    IncidentUpdate,
    RestorationTarget,
)
from guichet.status.operations import OperationsInvalid
from guichet.status.services import (
    PermissionDenied,
    StatusError,
    apply_operations,
    changeset_create,
    changeset_publish,
    changeset_reject,
    publish_now,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2024, 5, 22, 10, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=2)

CATALOGUE = [
    {"op": "portal.set", "name": "Ville de Test"},
    {"op": "organisation.set", "slug": "ville", "name": "Ville de Test"},
    {"op": "organisation.set", "slug": "agglo", "name": "Agglomération", "kind": "agglomeration"},
    {"op": "service.set", "organisation": "ville", "slug": "etat-civil", "name": "État civil"},
    {"op": "procedure.set", "service": "etat-civil", "slug": "acte-naissance", "name": "Acte de naissance"},
    {"op": "service.set", "organisation": "ville", "slug": "urbanisme", "name": "Urbanisme"},
    {"op": "procedure.set", "service": "urbanisme", "slug": "permis", "name": "Permis de construire"},
    {"op": "service.set", "organisation": "agglo", "slug": "dechets", "name": "Déchets"},
    {"op": "procedure.set", "service": "dechets", "slug": "bacs", "name": "Bacs"},
    {"op": "contact.set", "organisation": "ville", "key": "standard", "label": "Standard",
     "kind": "phone", "value": "02 40 00 40 00", "hours": [{"days": "mon-fri", "slots": ["08:30-17:00"]}]},
]
INCIDENT = [
    {"op": "incident.set", "organisation": "ville", "slug": "cyber", "title": "Cyberattaque",
     "nature": "cyberattack", "started_at": "2024-05-21T08:00:00+02:00"},
    {"op": "update.post", "incident": "cyber", "key": "u1", "published_at": "2024-05-21T12:00:00+02:00",
     "body": "Nos services sont perturbés."},
    {"op": "availability.set", "incident": "cyber", "service": "etat-civil", "procedure": "acte-naissance",
     "channel": "online", "state": "suspended", "instead": "Au guichet", "contacts": ["standard"]},
    {"op": "availability.set", "incident": "cyber", "service": "etat-civil", "procedure": "acte-naissance",
     "channel": "counter", "state": "degraded", "instead": "Au guichet.", "explanation": "Sur papier"},
    {"op": "target.set", "incident": "cyber", "service": "etat-civil", "precision": "period",
     "earliest": "2024-06-01", "latest": "2024-06-30", "text": "courant juin"},
]


@pytest.fixture
def portal():
    publish_now(portal_slug="test", operations=CATALOGUE, actor=Actor.cli(), title="catalogue", now=NOW)
    return Portal.objects.get(slug="test")


def snapshot():
    models = (Portal, Organisation, Service, Procedure, ContactPoint, Incident, IncidentUpdate,
              AffectedService, Availability, RestorationTarget, ChangeSet, Entry)
    counts = {m.__name__: m.objects.count() for m in models}
    counts["heads"] = sorted(Head.objects.values_list("chain", "seq", "hash"))
    counts["states"] = sorted(Availability.objects.values_list("channel", "state"))
    return counts


def apply(portal, ops, when=NOW):
    return apply_operations(portal=portal, operations=ops, actor=Actor.cli(), now=when)


# --- all or nothing -------------------------------------------------------------------------


def test_operations_apply_and_the_journal_stays_verifiable(portal):
    apply(portal, INCIDENT)
    incident = Incident.objects.get(slug="cyber")
    rows = {a.channel: a for a in Availability.objects.filter(incident=incident)}
    assert rows["online"].state == "suspended" and rows["online"].instead == "Au guichet"
    assert list(rows["online"].contacts.values_list("key", flat=True)) == ["standard"]
    assert rows["counter"].state == "degraded"
    assert AffectedService.objects.filter(incident=incident, service__slug="etat-civil").exists()
    assert all(v.ok for v in verify_all())


def test_a_bad_reference_in_the_last_operation_changes_nothing(portal):
    apply(portal, INCIDENT)
    before = snapshot()
    bad = [
        {**INCIDENT[0], "title": "Cyberattaque (mise à jour)"},
        {**INCIDENT[2], "state": "normal"},
        {"op": "service.set", "organisation": "ville", "slug": "sports", "name": "Sports"},
        {"op": "availability.set", "incident": "cyber", "service": "piscine", "procedure": "x", "state": "suspended", "instead": "Au guichet."},
    ]
    with pytest.raises(OperationsInvalid) as e:
        apply(portal, bad, LATER)
    assert [(err.path, err.message) for err in e.value.errors] == [
        ("operations[3].service", "no service 'piscine' on this page")
    ]
    assert snapshot() == before
    assert Incident.objects.get(slug="cyber").title == "Cyberattaque"
    assert all(v.ok for v in verify_all())


def test_an_invalid_operation_changes_nothing_and_names_the_field(portal):
    before = snapshot()
    with pytest.raises(OperationsInvalid) as e:
        apply(portal, [*INCIDENT[:2], {**INCIDENT[2], "state": "broken"}])
    assert [err.path for err in e.value.errors] == ["operations[2].state"]
    assert snapshot() == before


def test_a_bad_contact_key_is_named_with_its_index(portal):
    with pytest.raises(OperationsInvalid) as e:
        apply(portal, [INCIDENT[0], {**INCIDENT[2], "contacts": ["standard", "inconnu"]}])
    assert [err.path for err in e.value.errors] == ["operations[1].contacts[1]"]
    assert not Incident.objects.exists()


def test_publish_now_of_a_bad_file_creates_not_even_the_portal():
    before = snapshot()
    with pytest.raises(OperationsInvalid):
        publish_now(portal_slug="nouvelle", operations=[*CATALOGUE, {**INCIDENT[2]}], actor=Actor.cli(),
                    title="import", now=NOW)
    assert snapshot() == before


# --- idempotence and history -----------------------------------------------------------------


def test_reapplying_the_same_operations_journals_nothing(portal):
    apply(portal, INCIDENT)
    entries = Entry.objects.count()
    updated = Incident.objects.get(slug="cyber").updated_at
    apply(portal, INCIDENT, LATER)
    apply(portal, CATALOGUE[1:], LATER)
    assert Entry.objects.count() == entries
    assert Incident.objects.get(slug="cyber").updated_at == updated  # "updated on" did not move
    assert RestorationTarget.objects.count() == 1


def test_a_changed_row_is_journaled_once_with_its_fields(portal):
    apply(portal, INCIDENT)
    entries = Entry.objects.count()
    apply(portal, [{**INCIDENT[2], "state": "degraded", "explanation": "Lent"}], LATER)
    new = list(Entry.objects.order_by("pk")[entries:])
    assert [e.operation for e in new] == ["status.availability.set"]
    assert new[0].details == {"created": False, "fields": ["explanation", "state"]}
    assert Incident.objects.get(slug="cyber").updated_at == LATER


def test_restoration_target_history_appends_only_on_change(portal):
    apply(portal, INCIDENT)
    apply(portal, [INCIDENT[4]], LATER)  # same target: no new row
    assert RestorationTarget.objects.count() == 1
    revised = {**INCIDENT[4], "earliest": "2024-07-01", "latest": "2024-08-31", "text": "pendant l'été"}
    apply(portal, [revised], LATER)
    apply(portal, [revised], LATER + dt.timedelta(hours=1))
    history = list(RestorationTarget.objects.order_by("-recorded_at", "-pk").values_list("text", flat=True))
    assert history == ["pendant l'été", "courant juin"]
    assert Entry.objects.filter(operation="status.target.set").count() == 2
    assert Entry.objects.filter(operation="status.target.set").last().details == {"revision": True}


def test_removing_an_availability_is_journaled(portal):
    apply(portal, INCIDENT)
    apply(portal, [{"op": "availability.remove", "incident": "cyber", "service": "etat-civil",
                    "procedure": "acte-naissance", "channel": "counter"}], LATER)
    assert list(Availability.objects.values_list("channel", flat=True)) == ["online"]
    assert Entry.objects.filter(operation="status.availability.remove").count() == 1
    # Removing it again changes and journals nothing.
    n = Entry.objects.count()
    apply(portal, [{"op": "availability.remove", "incident": "cyber", "service": "etat-civil",
                    "procedure": "acte-naissance", "channel": "counter"}], LATER)
    assert Entry.objects.count() == n


# --- changesets and approval --------------------------------------------------------------------


@pytest.fixture
def editors(portal):
    User = get_user_model()
    alice = User.objects.create_user("alice", password="x" * 12)
    bob = User.objects.create_user("bob", password="x" * 12)
    for user in (alice, bob):
        EditorRole.objects.create(user=user, portal=portal)
    return alice, bob


def draft(portal, user, ops=None, title="Mise à jour"):
    return changeset_create(portal=portal, user=user, actor=Actor.for_user(user), title=title,
                            operations=ops or INCIDENT, now=NOW)


def publish(cs, user, when=LATER):
    return changeset_publish(changeset=cs, user=user, actor=Actor.for_user(user), now=when)


def test_a_draft_changes_nothing_public_until_published(portal, editors):
    alice, _bob = editors
    cs = draft(portal, alice)
    assert cs.status == ChangeSet.Status.DRAFT
    assert not Incident.objects.exists()
    cs = publish(cs, alice)
    assert cs.status == ChangeSet.Status.PUBLISHED and cs.published_at == LATER
    assert Incident.objects.get(slug="cyber").updated_at == LATER
    assert publish(cs, alice).status == ChangeSet.Status.PUBLISHED  # a double click acts once
    assert Entry.objects.filter(operation="status.changeset.publish", actor=f"user:{alice.pk}").count() == 1


def test_approval_by_a_second_editor(portal, editors):
    alice, bob = editors
    Portal.objects.filter(pk=portal.pk).update(requires_approval=True)
    cs = publish(draft(portal, alice), alice)
    assert cs.status == ChangeSet.Status.PENDING and cs.submitted_at == LATER
    assert not Incident.objects.exists()
    with pytest.raises(StatusError, match="a second editor must approve"):
        publish(cs, alice)
    assert not Incident.objects.exists()
    cs = publish(cs, bob, LATER + dt.timedelta(minutes=5))
    assert cs.status == ChangeSet.Status.PUBLISHED
    assert cs.decided_by == bob
    assert Incident.objects.filter(slug="cyber").exists()
    ops = list(Entry.objects.filter(operation__startswith="status.changeset", actor__startswith="user:")
               .order_by("pk").values_list("operation", "actor"))
    assert ops == [
        ("status.changeset.create", f"user:{alice.pk}"),
        ("status.changeset.submit", f"user:{alice.pk}"),
        ("status.changeset.publish", f"user:{bob.pk}"),
    ]
    assert all(v.ok for v in verify_all())


def test_an_organisation_can_require_approval_for_its_own_services(portal, editors):
    alice, _bob = editors
    Organisation.objects.filter(slug="agglo").update(requires_approval=True)
    ops = [{**INCIDENT[0], "organisation": "agglo"},
           {"op": "availability.set", "incident": "cyber", "service": "dechets", "procedure": "bacs",
            "state": "degraded", "instead": "Au guichet."}]
    assert publish(draft(portal, alice, ops), alice).status == ChangeSet.Status.PENDING
    # The city's own services are not held back.
    assert publish(draft(portal, alice, INCIDENT), alice).status == ChangeSet.Status.PUBLISHED


def test_rejecting_a_pending_change_and_discarding_a_draft(portal, editors):
    alice, bob = editors
    Portal.objects.filter(pk=portal.pk).update(requires_approval=True)
    pending = publish(draft(portal, alice), alice)
    rejected = changeset_reject(changeset=pending, user=bob, actor=Actor.for_user(bob), now=LATER)
    assert rejected.status == ChangeSet.Status.REJECTED and rejected.decided_by == bob
    with pytest.raises(StatusError):
        publish(rejected, bob)
    discarded = changeset_reject(changeset=draft(portal, alice), user=alice, actor=Actor.for_user(alice), now=LATER)
    assert discarded.status == ChangeSet.Status.DISCARDED
    assert not Incident.objects.exists()


def test_an_invalid_draft_is_refused_with_the_field(portal, editors):
    alice, _bob = editors
    with pytest.raises(OperationsInvalid) as e:
        draft(portal, alice, [{**INCIDENT[0], "started_at": "2024-05-21T08:00:00"}])
    assert [err.path for err in e.value.errors] == ["operations[0].started_at"]
    assert ChangeSet.objects.count() == 1  # the catalogue's import only


def test_a_published_draft_with_a_stale_reference_changes_nothing(portal, editors):
    alice, _bob = editors
    cs = draft(portal, alice, [*INCIDENT[:2], {**INCIDENT[2], "procedure": "disparue"}])
    with pytest.raises(OperationsInvalid):
        publish(cs, alice)
    cs.refresh_from_db()
    assert cs.status == ChangeSet.Status.DRAFT
    assert not Incident.objects.exists()


def test_the_same_idempotency_key_gives_the_same_draft(portal, editors):
    alice, _bob = editors
    a = changeset_create(portal=portal, user=alice, actor=Actor.for_user(alice), title="x",
                         operations=INCIDENT, now=NOW, idempotency_key="k1")
    b = changeset_create(portal=portal, user=alice, actor=Actor.for_user(alice), title="x",
                         operations=INCIDENT, now=NOW, idempotency_key="k1")
    assert a.pk == b.pk and ChangeSet.objects.count() == 2  # with the catalogue's import


# --- roles -------------------------------------------------------------------------------------


def editor(portal, name, **scope):
    user = get_user_model().objects.create_user(name, password="x" * 12)
    EditorRole.objects.create(user=user, portal=portal, **scope)
    return user


def test_a_service_editor_edits_only_that_service(portal):
    apply(portal, INCIDENT[:1])
    clerk = editor(portal, "clerk", service=Service.objects.get(slug="etat-civil"))
    mine = [{"op": "availability.set", "incident": "cyber", "service": "etat-civil",
             "procedure": "acte-naissance", "state": "degraded", "instead": "Au guichet."}]
    publish(draft(portal, clerk, mine), clerk)
    assert Availability.objects.get().state == "degraded"

    for ops, index in [
        ([*mine, {**mine[0], "service": "urbanisme", "procedure": "permis"}], 1),
        ([{"op": "organisation.set", "slug": "ville", "name": "Autre nom"}], 0),
        ([{"op": "portal.set", "name": "Autre nom"}], 0),
        ([{"op": "update.post", "incident": "cyber", "key": "u9", "published_at": "2024-05-22T09:00:00+02:00",
           "body": "x"}], 0),
    ]:
        with pytest.raises(PermissionDenied) as e:
            draft(portal, clerk, ops)
        assert e.value.path == f"operations[{index}]"
    assert Portal.objects.get(pk=portal.pk).name == "Ville de Test"


def test_an_organisation_editor_edits_its_services_not_the_others(portal):
    apply(portal, INCIDENT[:1])
    city = editor(portal, "city", organisation=Organisation.objects.get(slug="ville"))
    draft(portal, city, [{"op": "availability.set", "incident": "cyber", "service": "urbanisme",
                          "procedure": "permis", "state": "suspended", "instead": "Au guichet."}])
    with pytest.raises(PermissionDenied):
        draft(portal, city, [{"op": "availability.set", "incident": "cyber", "service": "dechets",
                              "procedure": "bacs", "state": "suspended", "instead": "Au guichet."}])


def test_no_role_no_change_and_roles_do_not_cross_portals(portal):
    other = Portal.objects.create(slug="autre", name="Autre ville")
    stranger = editor(other, "stranger")
    with pytest.raises(PermissionDenied):
        draft(portal, stranger, INCIDENT[:1])
    nobody = get_user_model().objects.create_user("nobody", password="x" * 12)
    with pytest.raises(PermissionDenied):
        draft(portal, nobody, INCIDENT[:1])
    assert ChangeSet.objects.filter(portal=portal).count() == 1  # the catalogue's import only


def test_an_editor_who_lost_the_role_cannot_publish_the_draft(portal):
    apply(portal, INCIDENT[:1])
    clerk = editor(portal, "clerk2", service=Service.objects.get(slug="etat-civil"))
    cs = draft(portal, clerk, [{"op": "availability.set", "incident": "cyber", "service": "etat-civil",
                                "procedure": "acte-naissance", "state": "degraded", "instead": "Au guichet."}])
    EditorRole.objects.filter(user=clerk).delete()
    with pytest.raises(PermissionDenied):
        publish(cs, clerk)
    assert not Availability.objects.exists()
