"""Two-factor authentication for every staff page, in one place.

A staff member (``selectors.is_staff_member``: superuser, ``is_staff``, or holding any role)
whose session has not passed the second factor (django-otp's ``request.user.is_verified()``):

- on a staff page (``/manage/...``, ``/admin/...``, in any language) is sent to the second-factor
  page, or to the set-up page when they have no authenticator yet;
- anywhere else (family pages, the API through the browser session...) is treated as signed out,
  so that a password alone carries no staff power anywhere;
- may use only the second-factor pages and sign out.

New staff modules get this by putting their pages under ``/manage/``. API bearer tokens are a
separate credential, created on the command line (see docs/security.md).
"""

from __future__ import annotations

import re
import threading
from time import monotonic
from urllib.parse import urlencode

from django.contrib import auth
from django.contrib.auth.middleware import (
    AuthenticationMiddleware as DjangoAuthenticationMiddleware,
)
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from .selectors import is_staff_member
from .sessions import SessionStore, current_session
from .twofactor import has_second_factor

_LANG = r"(?:[a-z]{2}(?:-[a-z]+)?/)?"
STAFF_PATH = re.compile(rf"^/{_LANG}(?:manage|admin|accounts/staff|accounts/after-login)(?:/|$)")
OPEN_PATH = re.compile(rf"^/{_LANG}accounts/(?:two-factor|logout)(?:/|$)|^/i18n/|^/static/")


def _anonymous() -> AnonymousUser:
    user = AnonymousUser()
    user.is_verified = lambda: False  # what django-otp's middleware gives every user
    return user


# Who holds a role, per process, for STAFF_TTL seconds: one query for everyone, so a family's
# request (the opening rush: thousands of accounts, each seen once) costs no role query. Staff
# pages always ask the database; a role granted or removed in this process is seen at once
# (signals below), in the other processes within STAFF_TTL seconds.
STAFF_TTL = 5.0
_role_holders: tuple[float, frozenset[int]] = (0.0, frozenset())
_role_lock = threading.Lock()


def _clear_holders() -> None:
    global _role_holders
    _role_holders = (0.0, frozenset())


def _forget_staff(**_kwargs) -> None:
    # Now, and again once the change is committed: a thread that read the roles in between
    # (before the commit) does not keep the old answer.
    _clear_holders()
    transaction.on_commit(_clear_holders)


def _holders() -> frozenset[int]:
    global _role_holders
    expires, holders = _role_holders
    if expires > monotonic():
        return holders
    with _role_lock:  # one query per process, not one per waiting thread
        expires, holders = _role_holders
        if expires <= monotonic():
            from guichet.bookings.models import AgentRole

            from .models import EditorRole, StaffRole

            # The clock is read before the query: a grant committed during it is not missed.
            until = monotonic() + STAFF_TTL
            roles = [m.objects.order_by().values_list("user_id", flat=True)
                     for m in (StaffRole, EditorRole, AgentRole)]
            holders = frozenset(roles[0].union(*roles[1:]))
            _role_holders = (until, holders)
        return holders


def _is_staff(user, path: str) -> bool:
    if STAFF_PATH.match(path):
        return is_staff_member(user)
    return user.is_active and (user.is_superuser or user.is_staff or user.pk in _holders())


class StaffTwoFactorMiddleware:
    def __init__(self, get_response):
        from django.apps import apps
        from django.db.models.signals import post_delete, post_save

        # ``is_staff``/``is_superuser`` are read from the user row of each request: only roles.
        for model in ("accounts.StaffRole", "accounts.EditorRole", "bookings.AgentRole"):
            for signal in (post_save, post_delete):
                signal.connect(_forget_staff, sender=apps.get_model(model), dispatch_uid=f"staff-seen-{model}")
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (user.is_authenticated and not user.is_verified() and not OPEN_PATH.match(request.path_info)
                and _is_staff(user, request.path_info)):
            if STAFF_PATH.match(request.path_info):
                name = "accounts:two-factor" if has_second_factor(user) else "accounts:two-factor-setup"
                return redirect(f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}")
            request.user = _anonymous()
        return self.get_response(request)


def _session_user(request):
    """``django.contrib.auth.middleware.get_user``, with the request's session store made known
    to the backend, which takes the account read with the session (``sessions``)."""
    if not hasattr(request, "_cached_user"):
        token = current_session.set(request.session if isinstance(request.session, SessionStore) else None)
        try:
            request._cached_user = auth.get_user(request)
        finally:
            current_session.reset(token)
    return request._cached_user


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, reading the user with the session (one query: ``sessions``)."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _session_user(request))
