"""`guichet editor ...` and `guichet token ...`: what an administrator types, and what it leaves."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from guichet.accounts.models import ApiToken, EditorRole
from guichet.accounts.selectors import can_edit, user_for_token
from guichet.catalog.models import Portal, Service
from guichet.common.actor import Actor
from guichet.journal.models import Entry
from guichet.status import services

SEED = [
    {"op": "organisation.set", "slug": "ville", "name": "Ville"},
    {"op": "organisation.set", "slug": "agglo", "name": "Agglomération", "kind": "agglomeration"},
    {"op": "service.set", "organisation": "agglo", "slug": "eau", "name": "Service de l'eau"},
    {"op": "service.set", "organisation": "ville", "slug": "etat-civil", "name": "État civil"},
]


@pytest.fixture
def portal(db):
    services.publish_now(portal_slug="testville", operations=SEED, actor=Actor.cli(), title="seed")
    return Portal.objects.get(slug="testville")


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_editor_add_creates_a_staff_account_with_a_random_password_shown_once(portal):
    out = run("editor", "add", "--portal", "testville", "--email", "Com@Testville.fr")
    password = out.split("shown once, give it to the editor): ")[1].strip()
    user = get_user_model().objects.get(email="com@testville.fr")
    assert user.is_staff and user.username == "com@testville.fr"
    assert user.check_password(password)
    assert can_edit(user, portal)
    assert Entry.objects.filter(operation="accounts.editor.add").count() == 1
    assert password not in str(list(Entry.objects.values_list("details", flat=True)))
    # Running it again finds the account, keeps its password, grants nothing new.
    again = run("editor", "add", "--portal", "testville", "--email", "com@testville.fr")
    assert "found account" in again and "already had" in again and "password" not in again
    assert user.check_password(password)
    assert EditorRole.objects.filter(user=user).count() == 1


def test_editor_add_with_password_file_and_service_scope(portal, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("une phrase de passe solide\n")
    out = run("editor", "add", "--portal", "testville", "--email", "eau@agglo.fr", "--service", "eau",
              "--password-file", str(secret))
    assert "password set from file" in out and "service 'eau'" in out
    user = get_user_model().objects.get(email="eau@agglo.fr")
    assert user.check_password("une phrase de passe solide")
    eau, etat_civil = Service.objects.get(slug="eau"), Service.objects.get(slug="etat-civil")
    assert can_edit(user, portal, eau.organisation, eau)
    assert not can_edit(user, portal, etat_civil.organisation, etat_civil)
    assert not can_edit(user, portal)


def test_editor_add_organisation_scope_and_list_and_remove(portal):
    run("editor", "add", "--portal", "testville", "--email", "com@ville.fr", "--organisation", "ville")
    assert "testville\tcom@ville.fr\tville" in run("editor", "list")
    assert "role removed" in run("editor", "remove", "--portal", "testville", "--email", "com@ville.fr",
                                 "--organisation", "ville")
    assert not EditorRole.objects.exists()


@pytest.mark.parametrize("args,message", [
    (["--portal", "nope", "--email", "a@b.fr"], "--portal: no page 'nope' (known: testville)"),
    (["--portal", "testville", "--email", "not-an-email"], "--email: 'not-an-email' is not an e-mail address"),
    (["--portal", "testville", "--email", "a@b.fr", "--organisation", "x"], "--organisation: no organisation 'x'"),
    (["--portal", "testville", "--email", "a@b.fr", "--service", "x"], "--service: no service 'x'"),
    (["--portal", "testville", "--email", "a@b.fr", "--organisation", "ville", "--service", "eau"],
     "--service: no service 'eau' on page 'testville' in organisation 'ville'"),
    (["--portal", "testville", "--email", "a@b.fr", "--password-file", "/nonexistent"],
     "--password-file: no file at /nonexistent"),
])
def test_editor_add_bad_arguments_change_nothing(portal, args, message):
    before = (get_user_model().objects.count(), EditorRole.objects.count(), Entry.objects.count())
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run("editor", "add", *args)
    assert (get_user_model().objects.count(), EditorRole.objects.count(), Entry.objects.count()) == before


def test_weak_password_is_refused(portal, tmp_path):
    weak = tmp_path / "pw"
    weak.write_text("123")
    with pytest.raises(CommandError, match="--password: "):
        run("editor", "add", "--portal", "testville", "--email", "a@b.fr", "--password-file", str(weak))
    assert not get_user_model().objects.exists()


def test_token_create_prints_it_once_and_stores_only_its_digest(portal):
    run("editor", "add", "--portal", "testville", "--email", "api@ville.fr")
    out = run("token", "create", "--email", "api@ville.fr", "--name", "import-script")
    raw = out.strip().splitlines()[-1]
    assert raw.startswith("gch_") and len(raw) > 40
    token = ApiToken.objects.get()
    assert token.digest == ApiToken.hash(raw) and raw not in token.digest
    assert user_for_token(raw).email == "api@ville.fr"
    listed = run("token", "list")
    assert "import-script" in listed and raw not in listed
    run("token", "revoke", "--id", str(token.pk))
    assert user_for_token(raw) is None
    ops = list(Entry.objects.filter(operation__startswith="accounts.token").values_list("operation", flat=True))
    assert ops == ["accounts.token.create", "accounts.token.revoke"]


@pytest.mark.parametrize("args,message", [
    (["--email", "nobody@ville.fr", "--name", "x"], "--email: no account with this e-mail address"),
    (["--email", "api@ville.fr", "--name", "  "], "--name: give the token a name"),
    (["--email", "bad", "--name", "x"], "--email: 'bad' is not an e-mail address"),
])
def test_token_create_bad_arguments(portal, args, message):
    run("editor", "add", "--portal", "testville", "--email", "api@ville.fr")
    with pytest.raises(CommandError, match=message):
        run("token", "create", *args)
    assert not ApiToken.objects.exists()


def test_command_line_error_exits_non_zero_without_traceback(tmp_path):
    env = {**os.environ, "DEBUG": "1", "GUICHET_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    guichet = [sys.executable, "-m", "guichet.cli"]
    bad_email = subprocess.run([*guichet, "editor", "add", "--portal", "x", "--email", "oops"],
                               capture_output=True, text=True, env=env, timeout=60)
    assert bad_email.returncode != 0
    assert "--email: 'oops' is not an e-mail address" in bad_email.stderr
    assert "Traceback" not in bad_email.stderr
    missing = subprocess.run([*guichet, "token", "create", "--email", "a@b.fr"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode != 0 and "--name" in missing.stderr and "Traceback" not in missing.stderr
