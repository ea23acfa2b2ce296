import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from guichet.accounts.models import EditorRole
from guichet.common.actor import Actor
from guichet.journal.models import Entry
from guichet.status.models import ChangeSet
from guichet.status.operations import OperationsInvalid
from guichet.status.services import (
    PermissionDenied,
    StatusError,
    changeset_append,
    changeset_create,
    publish_now,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2024, 5, 22, 10, 0, tzinfo=dt.UTC)
BASE = [
    {"op": "portal.set", "name": "Ville"},
    {"op": "organisation.set", "slug": "ville", "name": "Ville"},
    {"op": "service.set", "organisation": "ville", "slug": "eau", "name": "Eau"},
    {"op": "procedure.set", "service": "eau", "slug": "factures", "name": "Factures"},
    {"op": "incident.set", "organisation": "ville", "slug": "cyber", "title": "Cyberattaque",
     "started_at": "2024-04-01T08:00:00+02:00"},
]
ROW = {"op": "availability.set", "incident": "cyber", "service": "eau", "procedure": "factures", "state": "suspended", "instead": "Au guichet."}
UPDATE = {"op": "update.post", "incident": "cyber", "key": "u1", "published_at": "2024-05-22T09:00:00+02:00",
          "body": "Point de situation"}


@pytest.fixture
def setup():
    cs = publish_now(portal_slug="ville", operations=BASE, actor=Actor.cli(), title="base")
    users = get_user_model().objects
    alice, bob = users.create_user("alice"), users.create_user("bob")
    for u in (alice, bob):
        EditorRole.objects.create(user=u, portal=cs.portal)
    return cs.portal, alice, bob


def test_adding_to_a_draft_keeps_one_draft_and_a_retry_adds_once(setup):
    portal, alice, _bob = setup
    actor = Actor.for_user(alice)
    draft = changeset_create(portal=portal, user=alice, actor=actor, title="t", operations=[ROW], now=NOW)
    changeset_append(changeset=draft, user=alice, actor=actor, operations=[UPDATE], now=NOW, idempotency_key="k1")
    entries = Entry.objects.count()
    changeset_append(changeset=draft, user=alice, actor=actor, operations=[UPDATE], now=NOW, idempotency_key="k1")
    draft.refresh_from_db()
    assert [op["op"] for op in draft.operations] == ["availability.set", "update.post"]
    assert ChangeSet.objects.filter(status=ChangeSet.Status.DRAFT).count() == 1
    assert Entry.objects.count() == entries  # the retry wrote nothing


def test_only_the_author_adds_to_a_draft_and_only_while_it_is_a_draft(setup):
    portal, alice, bob = setup
    draft = changeset_create(portal=portal, user=alice, actor=Actor.for_user(alice), title="t", operations=[ROW], now=NOW)
    with pytest.raises(PermissionDenied):
        changeset_append(changeset=draft, user=bob, actor=Actor.for_user(bob), operations=[UPDATE], now=NOW)
    ChangeSet.objects.filter(pk=draft.pk).update(status=ChangeSet.Status.PUBLISHED)
    with pytest.raises(StatusError):
        changeset_append(changeset=draft, user=alice, actor=Actor.for_user(alice), operations=[UPDATE], now=NOW)


def test_bad_operations_are_refused_and_leave_the_draft_unchanged(setup):
    portal, alice, _bob = setup
    draft = changeset_create(portal=portal, user=alice, actor=Actor.for_user(alice), title="t", operations=[ROW], now=NOW)
    with pytest.raises(OperationsInvalid) as e:
        changeset_append(changeset=draft, user=alice, actor=Actor.for_user(alice),
                         operations=[{**ROW, "state": "broken"}], now=NOW)
    assert e.value.errors[0].path == "operations[0].state"
    draft.refresh_from_db()
    assert len(draft.operations) == 1
