"""Production settings, the Content Security Policy, password hashing and login throttling."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from tests.test_settings import run, settings_json

PRODUCTION = {"SECRET_KEY": "k8#Qz!v2" * 8, "DEBUG": "0", "ALLOWED_HOSTS": "guichet.example.fr",
              # a field key (docs/security.md, "Encryption at rest"): without one, check fails (guichet.E101)
              "GUICHET_FIELD_KEY": "guichet-field-key-1:" + "dGVzdC1vbmx5LWZpZWxkLWtleS0zMi1ieXRlcy0hISE="}
SRC = Path(__file__).resolve().parents[2] / "src"

# Inline code a strict CSP blocks: a <script> without src (JSON data blocks are not run), a
# <style> element, a style="" attribute, an on...="" handler, a javascript: URL.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>"
    r"|<style[\s>]|\sstyle=\"|\son[a-z]+=\"|href=\"javascript:", re.I)


# --- check --deploy ---------------------------------------------------------------------------


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
        env={**_env(tmp_path), **PRODUCTION}, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "System check identified no issues (0 silenced)." in r.stdout


def test_check_deploy_complains_when_https_is_off(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
        env={**_env(tmp_path), **PRODUCTION, "SECURE_COOKIES": "0"}, cwd=tmp_path, capture_output=True, text=True,
        timeout=180)
    assert r.returncode != 0
    assert "security.W004" in r.stderr + r.stdout  # no HSTS


def _env(tmp_path):
    import os

    from tests.test_settings import STRIPPED

    # DJANGO_ALLOW_ASYNC_UNSAFE: set by the browser tests' live server in this process; a
    # deployment never has it (check --deploy says so).
    base = {k: v for k, v in os.environ.items() if k not in STRIPPED and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base.update(PYTHONPATH=str(SRC), DJANGO_SETTINGS_MODULE="guichet.settings", GUICHET_DATA_DIR=str(tmp_path))
    return base


def test_production_security_settings(tmp_path):
    got = settings_json(tmp_path, "[s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
                                  "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.PASSWORD_HASHERS[0]]",
                        **PRODUCTION)
    assert got == [True, True, True, 31536000, True, "django.contrib.auth.hashers.Argon2PasswordHasher"]
    # Plain http on 127.0.0.1 (bin/demo): one switch turns HTTPS things off.
    got = settings_json(tmp_path, "[s.SESSION_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS]",
                        **PRODUCTION, SECURE_COOKIES="0")
    assert got == [False, False, 0]


def test_settings_module_imports_without_pytest(tmp_path):
    r = run("import guichet.settings as s; print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)", tmp_path,
            **PRODUCTION, AXES_FAILURE_LIMIT="3", AXES_COOLOFF_MINUTES="30")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "3 0:30:00"


# --- Passwords ----------------------------------------------------------------------------------


PRODUCTION_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]


@override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
def test_passwords_are_hashed_with_argon2id_and_old_hashes_upgrade_at_sign_in(client, db):
    User = get_user_model()
    user = User.objects.create_user("a@example.org", "a@example.org", "une phrase de passe solide")
    assert user.password.startswith("argon2$argon2id$")
    from django.contrib.auth.hashers import make_password

    User.objects.filter(pk=user.pk).update(
        password=make_password("une phrase de passe solide", hasher="pbkdf2_sha256"))
    r = client.post(reverse("accounts:login"), {"username": "a@example.org", "password": "une phrase de passe solide"})
    assert r.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")


# --- Login throttling (django-axes) ------------------------------------------------------------


def _page(response) -> str:
    """The page without its per-response CSRF token."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def _attempt(client, username, password="wrong password"):
    return client.post(reverse("accounts:login"), {"username": username, "password": password})


def test_lockout_after_five_failures_names_no_account(client, db, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    User = get_user_model()
    User.objects.create_user("real@example.org", "real@example.org", "une phrase de passe solide")
    for _ in range(4):
        assert _attempt(client, "real@example.org").status_code == 200
        assert _attempt(client, "ghost@example.org").status_code == 200
    fifth_real = _attempt(client, "real@example.org")
    fifth_ghost = _attempt(client, "ghost@example.org")
    assert fifth_real.status_code == fifth_ghost.status_code == 429
    # Same page for an account that exists and one that does not.
    assert _page(fifth_real) == _page(fifth_ghost)
    assert "Too many failed sign-in attempts" in fifth_real.content.decode() or "Trop" in fifth_real.content.decode()
    # Locked, even with the right password.
    assert _attempt(client, "real@example.org", "une phrase de passe solide").status_code == 429
    # Another account name from the same address is not locked.
    User.objects.create_user("other@example.org", "other@example.org", "une autre phrase solide")
    assert _attempt(client, "other@example.org", "une autre phrase solide").status_code == 302


def test_lockout_ends_after_the_cool_off(client, db):
    import datetime as dt

    import time_machine

    get_user_model().objects.create_user("real@example.org", "real@example.org", "une phrase de passe solide")
    for _ in range(5):
        _attempt(client, "real@example.org")
    assert _attempt(client, "real@example.org", "une phrase de passe solide").status_code == 429
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)):
        assert _attempt(client, "real@example.org", "une phrase de passe solide").status_code == 302


def test_failed_sign_ins_leave_no_account_name_in_the_logs(client, db, caplog):
    with caplog.at_level("DEBUG"):
        for _ in range(6):
            _attempt(client, "canary-7f3a@example.org")
    assert "canary-7f3a" not in caplog.text


# --- Content Security Policy -------------------------------------------------------------------


def _csp(response) -> str:
    return response.headers.get("Content-Security-Policy", "")


@pytest.fixture
def demo(db):
    call_command("demo", stdout=io.StringIO())


def test_main_pages_carry_a_strict_csp_and_no_inline_script_or_style(client, demo):
    User = get_user_model()
    family = User.objects.get(username="parent.maisons-alfort")
    editor = User.objects.create_user("ed@example.org", "ed@example.org", "x" * 12, is_staff=True,
                                      is_superuser=True)
    public = ["/", "/maisons-alfort/", "/maisons-alfort/status/", "/saint-nazaire/status/",
              "/maisons-alfort/status/subscribe/", "/en/saint-nazaire/status/",
              reverse("accounts:login"), reverse("accounts:signup"), reverse("accounts:password-reset"),
              "/api/v1/docs", "/nowhere-404/"]
    family_pages = ["/maisons-alfort/famille/", "/maisons-alfort/famille/calendrier/", reverse("accounts:invite",
                    args=["maisons-alfort"])]
    staff_pages = ["/manage/status/", "/manage/status/maisons-alfort/", "/manage/bookings/maisons-alfort/",
                   "/manage/bookings/maisons-alfort/fill-rates/", "/manage/bookings/maisons-alfort/waiting-lists/",
                   reverse("accounts:staff-home"), "/admin/"]
    seen = 0
    for who, pages in ((None, public), (family, family_pages), (editor, staff_pages)):
        client.logout()
        if who is not None:
            client.force_login(who)
        for url in pages:
            r = client.get(url)
            assert r.status_code in (200, 404), (url, r.status_code)
            csp = _csp(r)
            assert "script-src 'self'" in csp and "style-src 'self'" in csp, (url, csp)
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
            html = r.content.decode()
            found = INLINE.findall(html)
            assert not found, (url, found)
            seen += 1
    assert seen == len(public) + len(family_pages) + len(staff_pages)


def test_the_inline_code_detector_catches_what_csp_blocks():
    for bad in ('<script>alert(1)</script>', '<p style="color:red">', '<style>p{}</style>',
                '<a onclick="x()">', '<a href="javascript:x()">'):
        assert INLINE.search(bad), bad
    for good in ('<script src="/static/x.js"></script>', '<script type="application/json" id="s">{}</script>',
                 '<link rel="stylesheet" href="/static/x.css">'):
        assert not INLINE.search(good), good


def test_the_two_factor_setup_page_has_no_inline_style(client, db):
    user = get_user_model().objects.create_user("s@example.org", "s@example.org", "une phrase de passe solide",
                                                is_staff=True)
    client.post(reverse("accounts:login"), {"username": "s@example.org", "password": "une phrase de passe solide"})
    r = client.get(reverse("accounts:two-factor-setup"))
    assert r.status_code == 200 and user.pk
    assert not INLINE.findall(r.content.decode())
