"""Families' accounts: sign-up with e-mail verification, password reset, several guardians."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from guichet.bookings.models import Guardian
from guichet.journal.models import Entry
from tests.bookings.test_services import World

pytestmark = pytest.mark.django_db

PASSWORD = "une phrase de passe solide"


@pytest.fixture(autouse=True)
def _mails_sent_at_commit(django_capture_on_commit_callbacks, monkeypatch):
    """The e-mails leave at commit (``transaction.on_commit``); the test's transaction never
    commits, so each request runs its commit callbacks when it ends, as in production."""
    from django.test import Client

    for name in ("get", "post"):
        original = getattr(Client, name)

        def wrapped(self, *args, _original=original, **kwargs):
            with django_capture_on_commit_callbacks(execute=True):
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(Client, name, wrapped)


def _page(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def signup(client, email, password=PASSWORD):
    return client.post(reverse("accounts:signup"), {"email": email, "password1": password, "password2": password})


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0).replace("http://127.0.0.1:8000", "")


def sign_in(client, email, password=PASSWORD):
    return client.post(reverse("accounts:login"), {"username": email, "password": password})


def test_signup_verify_then_sign_in(client):
    r = signup(client, "Parent@Example.org")
    assert r.status_code == 302 and r["Location"] == reverse("accounts:signup-sent")
    user = get_user_model().objects.get(email="parent@example.org")
    assert not user.is_active
    # Before the link: the password does not open the account.
    assert sign_in(client, "parent@example.org").status_code == 200
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["parent@example.org"]
    link = link_in(mail.outbox[0])
    # Opening the link activates nothing (mail scanners open links); the button does.
    assert client.get(link).status_code == 200
    user.refresh_from_db()
    assert not user.is_active
    done = client.post(link)
    assert done.status_code == 200 and reverse("accounts:login") in done.content.decode()
    user.refresh_from_db()
    assert user.is_active
    r = sign_in(client, "parent@example.org")
    assert r.status_code == 302
    assert client.get(reverse("accounts:after-login"))["Location"] == reverse("accounts:family-start")
    assert client.post(link).status_code == 200  # again: "already active", nothing changes
    ops = list(Entry.objects.filter(operation__startswith="accounts.family").values_list("operation", "details"))
    assert [o for o, _d in ops] == ["accounts.family.signup", "accounts.family.verified"]
    assert "example.org" not in str(ops)


def test_signup_with_a_known_address_answers_the_same_and_tells_only_the_owner(client):
    get_user_model().objects.create_user("known@example.org", "known@example.org", "ancienne phrase solide")
    new = signup(client, "new@example.org")
    known = signup(client, "known@example.org", "une autre phrase pirate")
    assert new.status_code == known.status_code == 302 and new["Location"] == known["Location"]
    assert _page(client.get(new["Location"])) == _page(client.get(known["Location"]))
    # The owner is told; the password is not changed; no second account.
    to_known = [m for m in mail.outbox if m.to == ["known@example.org"]]
    assert len(to_known) == 1 and "already" in to_known[0].body.lower() or "déjà" in to_known[0].body
    assert get_user_model().objects.filter(email__iexact="known@example.org").count() == 1
    assert get_user_model().objects.get(email="known@example.org").check_password("ancienne phrase solide")


def test_signup_again_before_verifying_sends_a_new_link(client):
    signup(client, "late@example.org")
    signup(client, "late@example.org", "une seconde phrase solide")
    assert get_user_model().objects.filter(email="late@example.org").count() == 1
    assert len(mail.outbox) == 2
    client.post(link_in(mail.outbox[1]))
    assert sign_in(client, "late@example.org", "une seconde phrase solide").status_code == 302


def test_the_same_signup_sent_twice_sends_one_link_and_again_later(client):
    signup(client, "twice@example.org")
    signup(client, "twice@example.org")  # a double click, or a retry once the first committed
    assert len(mail.outbox) == 1
    # Minutes later the family asks again (the first e-mail got lost): a new link is sent.
    get_user_model().objects.filter(email="twice@example.org").update(
        date_joined=timezone.now() - dt.timedelta(minutes=3))
    signup(client, "twice@example.org")
    assert len(mail.outbox) == 2
    client.post(link_in(mail.outbox[1]))
    assert sign_in(client, "twice@example.org").status_code == 302


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"email": "pas-une-adresse", "password1": PASSWORD, "password2": PASSWORD}, "email", "valid email"),
    ({"email": "a@example.org", "password1": PASSWORD, "password2": PASSWORD + "x"}, "password2", "differ"),
    ({"email": "a@example.org", "password1": "court", "password2": "court"}, "password1", "too short"),
    ({"email": "a@example.org", "password1": "azertyuiop", "password2": "azertyuiop"}, "password1", "too common"),
])
def test_signup_bad_input_names_the_field_and_creates_nothing(client, data, field, message):
    from django.utils import translation

    with translation.override("en"):
        r = client.post(reverse("accounts:signup"), data)
    assert r.status_code == 400
    assert message in r.content.decode().lower() or message in str(r.context["form"].errors[field]).lower()
    assert field in r.context["form"].errors
    assert not get_user_model().objects.exists() and not mail.outbox


def test_an_expired_or_altered_link_activates_nothing(client):
    signup(client, "slow@example.org")
    link = link_in(mail.outbox[0])
    assert client.post(link[:-3] + "xyz/").status_code == 400
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)):
        r = client.post(link)
    assert r.status_code == 400
    assert not get_user_model().objects.get(email="slow@example.org").is_active


def test_password_reset_same_answer_whatever_the_address(client):
    get_user_model().objects.create_user("known@example.org", "known@example.org", "ancienne phrase solide")
    a = client.post(reverse("accounts:password-reset"), {"email": "known@example.org"})
    b = client.post(reverse("accounts:password-reset"), {"email": "nobody@example.org"})
    assert a.status_code == b.status_code == 302 and a["Location"] == b["Location"]
    assert [m.to for m in mail.outbox] == [["known@example.org"]]
    link = link_in(mail.outbox[0])
    form = client.get(link, follow=True)
    assert form.status_code == 200
    r = client.post(form.redirect_chain[-1][0], {"new_password1": "nouvelle phrase solide",
                                                 "new_password2": "nouvelle phrase solide"})
    assert r.status_code == 302 and r["Location"] == reverse("accounts:password-reset-done")
    assert sign_in(client, "known@example.org", "nouvelle phrase solide").status_code == 302
    # The link works once.
    client.logout()
    assert "validlink" not in client.get(link, follow=True).content.decode()
    assert not client.get(link, follow=True).context["validlink"]


# --- Several guardians ---------------------------------------------------------------------------


@pytest.fixture
def world():
    return World()


def _guardian(world, email):
    household, _kids = world.household()
    user = get_user_model().objects.create_user(email, email, PASSWORD)
    Guardian.objects.create(organisation=world.org, household=household, user=user)
    return household, user


def test_a_guardian_invites_another_who_joins_with_the_invited_address(client, world):
    household, first = _guardian(world, "maman@example.org")
    client.force_login(first)
    invite_url = reverse("accounts:invite", args=[world.portal.slug])
    assert client.get(invite_url).status_code == 200
    r = client.post(invite_url, {"email": "Papa@Example.org"})
    assert r.status_code == 200 and "papa@example.org" in r.content.decode()
    assert mail.outbox[-1].to == ["papa@example.org"]
    link = link_in(mail.outbox[-1])
    client.logout()
    # Not signed in: asked to sign in or sign up, and told nothing about the family.
    anon = client.get(link)
    assert anon.status_code == 200 and household.display_name not in anon.content.decode()
    second = get_user_model().objects.create_user("papa@example.org", "papa@example.org", PASSWORD)
    client.force_login(second)
    page = client.get(link)
    assert page.status_code == 200 and household.display_name in page.content.decode()
    r = client.post(link)
    assert r.status_code == 302 and r["Location"] == reverse("bookings:home", args=[world.portal.slug])
    assert Guardian.objects.filter(household=household).count() == 2
    assert client.get(r["Location"]).status_code == 200
    assert client.post(link).status_code == 302  # twice: nothing more
    assert Guardian.objects.filter(household=household).count() == 2
    entry = Entry.objects.get(operation="bookings.guardian.add")
    assert "example.org" not in str(entry.details)


def test_an_invitation_is_of_no_use_to_another_account(client, world):
    household, first = _guardian(world, "maman@example.org")
    client.force_login(first)
    client.post(reverse("accounts:invite", args=[world.portal.slug]), {"email": "papa@example.org"})
    link = link_in(mail.outbox[-1])
    intruder = get_user_model().objects.create_user("intrus@example.org", "intrus@example.org", PASSWORD)
    client.force_login(intruder)
    page = client.get(link)
    assert page.status_code == 400 and household.display_name not in page.content.decode()
    assert client.post(link).status_code == 400
    assert not Guardian.objects.filter(user=intruder).exists()
    assert client.post(link[:-4] + "abc/").status_code == 400


def test_only_a_guardian_of_the_portal_may_invite(client, world):
    _household, _first = _guardian(world, "maman@example.org")
    stranger = get_user_model().objects.create_user("x@example.org", "x@example.org", PASSWORD)
    client.force_login(stranger)
    assert client.get(reverse("accounts:invite", args=[world.portal.slug])).status_code == 404
    assert client.post(reverse("accounts:invite", args=[world.portal.slug]), {"email": "y@example.org"}).status_code == 404
    assert not mail.outbox


def test_inviting_a_current_guardian_or_a_bad_address_is_refused(client, world):
    household, first = _guardian(world, "maman@example.org")
    client.force_login(first)
    url = reverse("accounts:invite", args=[world.portal.slug])
    assert client.post(url, {"email": "maman@example.org"}).status_code == 400
    assert client.post(url, {"email": "pas une adresse"}).status_code == 400
    assert not mail.outbox
