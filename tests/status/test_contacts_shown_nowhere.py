"""A contact attached to no service and named by no row is shown nowhere on the public page:
``guichet status check`` and ``import`` warn about it, and so does the editor's dashboard."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from guichet.accounts.models import EditorRole
from guichet.catalog.models import ContactPoint, Portal
from guichet.common.actor import Actor
from guichet.status import services
from guichet.status.notice import parse_notice
from guichet.status.selectors import contacts_shown_nowhere

from .test_notice import SMALL

# SMALL's one contact is named by its row; this one, on its own, is named by nothing.
LOST = SMALL.replace(
    "services:\n",
    "  - key: permanence\n"
    "    label: Permanence des élus\n"
    "    kind: phone\n"
    "    value: 01 99 99 99 99\n"
    "services:\n",
    1,
)
LOST_LINE = LOST.splitlines().index("  - key: permanence") + 1


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_notice_warns_with_the_contact_s_line():
    (warning,) = parse_notice(LOST, "lost.yaml").warnings()
    assert str(warning).startswith(
        f"lost.yaml:{LOST_LINE}: contacts[1].key: contact 'permanence' is attached"
    )
    assert "shown nowhere" in str(warning)
    assert parse_notice(SMALL, "small.yaml").warnings() == []


def test_a_contact_with_a_service_or_named_by_a_row_is_shown():
    with_service = LOST.replace(
        "    value: 01 99 99 99 99\n", "    value: 01 99 99 99 99\n    service: etat-civil\n"
    )
    assert parse_notice(with_service, "x.yaml").warnings() == []
    named = LOST.replace("contacts: [accueil-tel]", "contacts: [accueil-tel, permanence]")
    assert parse_notice(named, "x.yaml").warnings() == []


@pytest.mark.django_db
def test_status_check_warns_and_still_succeeds(tmp_path):
    path = tmp_path / "lost.yaml"
    path.write_text(LOST, encoding="utf-8")
    out, err = run("status", "check", str(path))
    assert "OK" in out
    assert f"warning: lost.yaml:{LOST_LINE}: contacts[1].key: contact 'permanence'" in err
    assert not Portal.objects.exists()


@pytest.mark.django_db
def test_status_import_warns_about_the_page_as_published(tmp_path):
    path = tmp_path / "lost.yaml"
    path.write_text(LOST, encoding="utf-8")
    out, err = run("status", "import", str(path))
    assert "published on page 'petiteville'" in out
    assert "warning: page 'petiteville': contact 'permanence' is attached to no service" in err
    assert [c.key for c in contacts_shown_nowhere(Portal.objects.get(slug="petiteville"))] == [
        "permanence"
    ]
    # Once a row names it, it is shown, and the warning goes.
    services.publish_now(
        portal_slug="petiteville", actor=Actor.cli(), title="Permanence",
        operations=[{"op": "availability.set", "incident": "panne", "service": "etat-civil", "procedure": "actes",
                     "channel": "phone", "state": "normal", "contacts": ["permanence"]}],
    )  # fmt: skip
    assert contacts_shown_nowhere(Portal.objects.get(slug="petiteville")) == []
    assert ContactPoint.objects.filter(key="permanence").exists()


@pytest.mark.django_db
def test_the_editor_dashboard_names_the_contacts_shown_nowhere(client, tmp_path):
    path = tmp_path / "lost.yaml"
    path.write_text(LOST, encoding="utf-8")
    run("status", "import", str(path))
    editor = get_user_model().objects.create_user("com", password="x" * 12)
    EditorRole.objects.create(user=editor, portal=Portal.objects.get(slug="petiteville"))
    client.force_login(editor)
    html = client.get(reverse("status:manage-portal", args=["petiteville"])).content.decode()
    note = re.search(r'id="contacts-shown-nowhere".*?</div>', html, re.S)
    assert note and "Permanence des élus — 01 99 99 99 99" in note.group(0)
    assert "Accueil" not in note.group(0)
