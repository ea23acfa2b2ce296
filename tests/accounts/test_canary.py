"""Canary: unique fake e-mail addresses and names pushed through every accounts flow must not
appear in the logs, in the journal's clear ``details``, or in error pages."""

from __future__ import annotations

import io
import logging

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guichet.bookings.models import Guardian
from guichet.journal.models import Entry
from tests.bookings.test_services import World

pytestmark = pytest.mark.django_db

CANARY = "zq7canary"
EMAIL = f"{CANARY}.parent@example.org"


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_canary_never_reaches_logs_or_journal_details(client, everything_logged, django_capture_on_commit_callbacks):
    world = World()
    household, _kids = world.household()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:signup"), {"email": EMAIL, "password1": "une phrase solide " + CANARY,
                                                 "password2": "une phrase solide " + CANARY})
    link = mail.outbox[-1].body.split("http://127.0.0.1:8000")[1].split()[0]
    client.post(link)
    for _ in range(6):  # up to the lockout
        client.post(reverse("accounts:login"), {"username": EMAIL, "password": "wrong " + CANARY})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:password-reset"), {"email": EMAIL})
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(email=EMAIL)
    Guardian.objects.create(organisation=world.org, household=household, user=user)
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:invite", args=[world.portal.slug]), {"email": f"{CANARY}.other@example.org"})
    call_command("role", "add", "--email", f"{CANARY}.staff@example.org", "--kind", "it", "--portal",
                 world.portal.slug, "--organisation", "ville", stdout=io.StringIO())
    call_command("twofactor", "reset", "--email", f"{CANARY}.staff@example.org", stdout=io.StringIO())
    client.post(reverse("accounts:family-erasure", args=[world.portal.slug]))
    # A failed sign-in page does not echo the password; the lockout page does not echo the name.
    locked = client.post(reverse("accounts:login"), {"username": EMAIL, "password": "wrong " + CANARY})
    assert locked.status_code == 429 and CANARY not in locked.content.decode()

    assert Entry.objects.filter(operation__startswith="accounts.").count() >= 5
    for details in Entry.objects.values_list("details", flat=True):
        assert CANARY not in str(details)
    assert CANARY not in everything_logged.text


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(email=st.text(max_size=300), p1=st.text(max_size=200), p2=st.text(max_size=200))
def test_signup_form_never_fails_badly(client, email, p1, p2):
    from django.contrib.auth import get_user_model

    before = get_user_model().objects.count()
    r = client.post(reverse("accounts:signup"), {"email": email, "password1": p1, "password2": p2})
    assert r.status_code in (302, 400)
    if r.status_code == 400:
        errors = r.context["form"].errors
        assert errors and set(errors) <= {"email", "password1", "password2", "__all__"}
        assert get_user_model().objects.count() == before


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(code=st.text(max_size=60), token=st.text(min_size=1, max_size=120).filter(lambda t: "/" not in t))
def test_second_factor_and_link_pages_refuse_garbage_cleanly(client, code, token):
    from urllib.parse import quote

    assert client.post(reverse("accounts:two-factor"), {"code": code}).status_code == 302  # not signed in
    assert client.post(f"/accounts/verify/{quote(token, safe='')}/").status_code in (400, 404)
    assert client.get(f"/accounts/family/join/{quote(token, safe='')}/").status_code in (400, 404)
