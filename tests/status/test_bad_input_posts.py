"""The draft's review page reads its button's ``action`` by hand: sent twice, holding a control
character, or unknown, it is refused naming the field, and the draft and the public page stay as
they were.

``QueryDict.get`` reads only the last of repeated values: ``action=discard&action=publish`` used
to publish.
"""

from __future__ import annotations

import html

import pytest
from django.urls import reverse
from django.utils import translation

from guichet.status.models import ChangeSet
from tests.status.test_manage_views import (  # noqa: F401 - fixtures
    AVAILABILITY,
    counts,
    editor,
    portal,
    post_form,
    row_state,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("action", "words"), [
    (["discard", "publish"], "more than once"),
    (["publish", "discard"], "more than once"),
    ("publish\x00", "control characters"),
    ("\x1bpublish", "control characters"),
    ("publier", "use one of the page's buttons"),
    ("p" * 5000, "use one of the page's buttons"),
    ("", "use one of the page's buttons"),
])
def test_a_draft_is_neither_published_nor_discarded_on_a_bad_action(client, editor, portal, action, words):  # noqa: F811
    client.force_login(editor)
    post_form(client, "availability", AVAILABILITY)
    cs = ChangeSet.objects.get(status=ChangeSet.Status.DRAFT)
    before = counts()
    with translation.override("en"):
        r = client.post(reverse("status:manage-changeset", args=["testville", cs.pk]), {"action": action})
    assert r.status_code == 400
    text = html.unescape(r.content.decode())
    assert "Action: " in text and words in text
    cs.refresh_from_db()
    assert cs.status == ChangeSet.Status.DRAFT
    assert counts() == before and row_state(portal) == ["suspended"]
