"""The real staff sign-in: password, then a TOTP code (or a recovery code, once).

These tests switch off the conftest shortcut that makes ``force_login`` pass the second factor.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from guichet.accounts import twofactor
from guichet.bookings.models import AgentRole
from guichet.catalog.models import Portal
from guichet.common.actor import Actor
from guichet.journal.models import Entry
from guichet.status import services

from .helpers import current_code, enrolled_device

pytestmark = pytest.mark.real_two_factor

PASSWORD = "une phrase de passe solide"


@pytest.fixture
def portal(db):
    services.publish_now(portal_slug="testville", operations=[
        {"op": "organisation.set", "slug": "ville", "name": "Ville"}], actor=Actor.cli(), title="seed")
    return Portal.objects.get(slug="testville")


@pytest.fixture
def editor(portal):
    out = io.StringIO()
    call_command("editor", "add", "--portal", "testville", "--email", "com@testville.fr", stdout=out)
    user = get_user_model().objects.get(email="com@testville.fr")
    user.set_password(PASSWORD)
    user.save()
    return user


def sign_in(client, email="com@testville.fr", password=PASSWORD):
    r = client.post(reverse("accounts:login"), {"username": email, "password": password})
    assert r.status_code == 302, "password step refused"
    return r


MANAGE = "/manage/status/"


def test_first_sign_in_sets_up_the_app_then_shows_recovery_codes_once(client, editor):
    sign_in(client)
    r = client.get(MANAGE)
    assert r.status_code == 302 and r["Location"].startswith(reverse("accounts:two-factor-setup"))
    page = client.get(r["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html and "QR" in html
    device = TOTPDevice.objects.get(user=editor, confirmed=False)
    assert twofactor.secret_base32(device) in html
    # The page reloaded shows the same key (a QR code already scanned stays valid).
    client.get(r["Location"])
    assert TOTPDevice.objects.filter(user=editor).count() == 1
    # A wrong code: refused, nothing confirmed, staff pages still closed.
    bad = client.post(r["Location"], {"code": "000000" if current_code(device) != "000000" else "111111"})
    assert bad.status_code == 400 and "n’est pas valide" in bad.content.decode()
    assert client.get(MANAGE).status_code == 302
    # The right code: confirmed, recovery codes shown once, the staff page opens.
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)):  # after django-otp's 1 s throttle
        ok = client.post(r["Location"], {"code": current_code(device), "next": MANAGE})
    assert ok.status_code == 200
    codes = re.findall(r"<code>([a-z0-9]{4}-[a-z0-9]{4})</code>", ok.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get(MANAGE).status_code == 200
    # Stored as digests only: a database dump does not give the codes.
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert len(stored) == 10 and not stored & {c.replace("-", "") for c in codes} and not stored & set(codes)
    assert Entry.objects.filter(operation="accounts.two_factor.enrol").count() == 1


def test_enrolled_staff_needs_the_code_from_the_app(client, editor):
    device = enrolled_device(editor)
    sign_in(client)
    r = client.get(MANAGE)
    assert r.status_code == 302 and r["Location"].startswith(reverse("accounts:two-factor"))
    assert "setup" not in r["Location"]
    bad = client.post(r["Location"], {"code": "12345x"})
    assert bad.status_code == 400
    assert client.get(MANAGE).status_code == 302
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)):
        ok = client.post(r["Location"], {"code": current_code(device)})
    assert ok.status_code == 302 and ok["Location"] == MANAGE
    assert client.get(MANAGE).status_code == 200


def test_a_code_after_a_wrong_one_waits_for_the_throttle(client, editor):
    device = enrolled_device(editor)
    sign_in(client)
    url = reverse("accounts:two-factor")
    wrong = "000000" if current_code(device) != "000000" else "111111"
    assert client.post(url, {"code": wrong}).status_code == 400
    # At once: refused even though right (django-otp's throttle: 1 s, then 2, 4...).
    assert client.post(url, {"code": current_code(device)}).status_code == 400
    assert client.get(MANAGE).status_code == 302


def test_a_recovery_code_works_once(client, editor):
    _device, codes = twofactor.enrol_directly(user=editor, key_hex=None, actor=Actor.cli())
    sign_in(client)
    r = client.post(reverse("accounts:two-factor"), {"code": codes[0].upper(), "next": MANAGE})
    assert r.status_code == 200 and "Il vous reste 9 codes." in r.content.decode()
    assert client.get(MANAGE).status_code == 200
    client.post(reverse("accounts:logout"))
    sign_in(client)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)):
        again = client.post(reverse("accounts:two-factor"), {"code": codes[0]})
        assert again.status_code == 400
        assert client.get(MANAGE).status_code == 302
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)):
        other = client.post(reverse("accounts:two-factor"), {"code": codes[1], "next": MANAGE})
    assert other.status_code == 200 and client.get(MANAGE).status_code == 200
    used = Entry.objects.filter(operation="accounts.two_factor.recovery_used")
    assert used.count() == 2 and used.last().details["codes_left"] == 8


def test_password_alone_gives_no_staff_power_anywhere(client, editor, portal):
    enrolled_device(editor)
    AgentRole.objects.create(organisation=portal.organisations.get(), user=editor)
    sign_in(client)
    # Staff pages: to the second factor; the administration too.
    for url in (MANAGE, "/manage/bookings/testville/", "/admin/", "/en/manage/status/", reverse("accounts:staff-home")):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith(reverse("accounts:two-factor")), url
    # Elsewhere the session counts as signed out: the API through the session says 401.
    assert client.get("/api/v1/bookings/households/me").status_code == 401
    # Replacing the authenticator needs the current one.
    r = client.get(reverse("accounts:two-factor-setup"))
    assert r.status_code == 302 and r["Location"].startswith(reverse("accounts:two-factor"))


def test_the_administration_signs_in_through_the_one_sign_in_page(client, db):
    r = client.get("/admin/")
    assert r.status_code == 302
    target = client.get(r["Location"])
    assert target.status_code == 302 and target["Location"].startswith(reverse("accounts:login"))


def test_force_login_without_the_conftest_shortcut_is_half_signed_in(client, editor):
    client.force_login(editor)
    assert client.get(MANAGE).status_code == 302


def test_families_have_no_second_factor(client, portal):
    user = get_user_model().objects.create_user("parent@example.org", "parent@example.org", PASSWORD)
    sign_in(client, "parent@example.org")
    r = client.get(reverse("accounts:after-login"))
    assert r.status_code == 302 and r["Location"] == reverse("accounts:family-start")
    assert client.get(r["Location"]).status_code == 200
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_recovery_codes_renewed_from_the_spaces_page(client, editor):
    _device, old = twofactor.enrol_directly(user=editor, key_hex=None, actor=Actor.cli())
    sign_in(client)
    client.post(reverse("accounts:two-factor"), {"code": old[0]})
    home = client.get(reverse("accounts:staff-home"))
    assert home.status_code == 200 and "Il reste 9 codes de secours." in home.content.decode()
    r = client.post(reverse("accounts:recovery-codes"))
    new = re.findall(r"<code>([a-z0-9]{4}-[a-z0-9]{4})</code>", r.content.decode())
    assert len(new) == 10
    client.post(reverse("accounts:logout"))
    sign_in(client)
    assert client.post(reverse("accounts:two-factor"), {"code": old[1]}).status_code == 400


def test_twofactor_command(editor, tmp_path):
    out = io.StringIO()
    call_command("twofactor", "status", "--email", "com@testville.fr", stdout=out)
    assert "not set up" in out.getvalue()
    key_file = tmp_path / "key"
    call_command("twofactor", "enrol", "--email", "com@testville.fr", "--key-file", str(key_file), stdout=out)
    assert key_file.stat().st_mode & 0o077 == 0
    device = TOTPDevice.objects.get(user=editor, confirmed=True)
    assert key_file.read_text().strip() == device.key
    # Enrolling again with the same file keeps the key (an app already set up keeps working).
    call_command("twofactor", "enrol", "--email", "com@testville.fr", "--key-file", str(key_file), stdout=out)
    assert TOTPDevice.objects.get(user=editor).key == device.key
    code = io.StringIO()
    call_command("twofactor", "code", "--key-file", str(key_file), stdout=code)
    assert code.getvalue().strip() == current_code(TOTPDevice.objects.get(user=editor))
    call_command("twofactor", "reset", "--email", "com@testville.fr", stdout=out)
    assert not TOTPDevice.objects.filter(user=editor).exists()
    assert "2 device(s) removed" in out.getvalue()
    with pytest.raises(CommandError, match="--email: no account with this e-mail address"):
        call_command("twofactor", "reset", "--email", "nobody@testville.fr")
    bad = tmp_path / "bad"
    bad.write_text("not a key")
    with pytest.raises(CommandError, match="--key-file: .* does not hold a key"):
        call_command("twofactor", "code", "--key-file", str(bad))
