"""Families' accounts: sign-up by e-mail with a verification link.

No account enumeration: ``family_signup`` gives the same answer, sends one e-mail and spends
the same work (one password hash) whether the address is new, already active or still
unverified. The e-mail says what applies to the address' owner: a link to activate, or "you
already have an account: sign in or reset your password".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core import signing
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from guichet.common.actor import Actor
from guichet.common.crypto import blind_index
from guichet.journal.services import journal_append

VERIFY_SALT = "guichet.accounts.verify-email"


@dataclass(frozen=True)
class Verified:
    user: object | None
    state: str  # "activated", "already", "invalid", "expired"


def _url(path: str) -> str:
    return settings.GUICHET_PUBLIC_URL + path


def _send(template: str, to: str, **context) -> None:
    subject = render_to_string(f"accounts/email/{template}_subject.txt", context).strip()
    body = render_to_string(f"accounts/email/{template}_body.txt", context)
    EmailMessage(" ".join(subject.split()), body, None, [to]).send()


def verification_token(user) -> str:
    return signing.TimestampSigner(salt=VERIFY_SALT).sign_object({"u": user.pk, "e": user.email})


# A sign-up repeated with the same password within this time is the same request sent twice.
REPEATED_SIGNUP_WINDOW = dt.timedelta(minutes=2)


def family_signup(*, email: str, password: str, actor: Actor, now=None) -> None:
    """Create an inactive account and e-mail its activation link, or, when the address already
    has an account, e-mail its owner what to do. ``email`` and ``password`` are already valid
    (``forms.SignupForm``)."""
    now = now or timezone.now()
    email = email.strip().lower()
    User = get_user_model()
    language = translation.get_language()
    with transaction.atomic():
        existing = (User.objects.select_for_update().filter(email__iexact=email).order_by("pk").first()
                    or User.objects.select_for_update().filter(username__iexact=email).order_by("pk").first())
        if existing is None:
            user = User(username=email, email=email, is_active=False)
            user.set_password(password)
            try:
                with transaction.atomic():
                    user.save()
            except IntegrityError:
                # The same address signed up at the same instant (double click): that request
                # sends the link; this one answers the same page and sends nothing more.
                return
            journal_append(actor=actor, operation="accounts.family.signup", objects=[user],
                           payload={"email": blind_index("accounts.email", email)}, details={"user": user.pk},
                           now=now)
            link = _url(reverse("accounts:verify-email", args=[verification_token(user)]))
            transaction.on_commit(lambda: _in(language, _send, "verify", email, link=link))
            return
        make_password(password)  # the same work as a new account: timing says nothing either
        if existing.is_active:
            login = _url(reverse("accounts:login"))
            reset = _url(reverse("accounts:password-reset"))
            transaction.on_commit(lambda: _in(language, _send, "already", email, login_url=login, reset_url=reset))
        elif existing.check_password(password) and now - existing.date_joined < REPEATED_SIGNUP_WINDOW:
            # The same sign-up sent again at once (a double click, a retry after the first one
            # committed): its link is on its way, one e-mail is enough.
            return
        else:
            # Not verified yet: the password typed now replaces the first one, a new link is sent.
            existing.set_password(password)
            existing.save(update_fields=["password"])
            link = _url(reverse("accounts:verify-email", args=[verification_token(existing)]))
            transaction.on_commit(lambda: _in(language, _send, "verify", email, link=link))


def _in(language: str, fn, *args, **kwargs):
    with translation.override(language):
        return fn(*args, **kwargs)


def family_verify(*, token: str, actor: Actor | None = None, now=None) -> Verified:
    """Activate the account named by a verification link (valid ``PASSWORD_RESET_TIMEOUT``)."""
    now = now or timezone.now()
    signer = signing.TimestampSigner(salt=VERIFY_SALT)
    try:
        data = signer.unsign_object(token, max_age=settings.PASSWORD_RESET_TIMEOUT)
    except signing.SignatureExpired:
        return Verified(None, "expired")
    except (signing.BadSignature, ValueError, TypeError):
        return Verified(None, "invalid")
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=data.get("u")).first()
        if user is None or user.email.lower() != str(data.get("e", "")).lower():
            return Verified(None, "invalid")
        if user.is_active:
            return Verified(user, "already")
        user.is_active = True
        user.save(update_fields=["is_active"])
        journal_append(actor=actor or Actor.for_user(user), operation="accounts.family.verified",
                       objects=[user], details={"user": user.pk}, now=now)
    return Verified(user, "activated")
