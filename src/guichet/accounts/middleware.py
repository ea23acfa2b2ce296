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
from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser
from django.shortcuts import redirect
from django.urls import reverse

from .selectors import is_staff_member
from .twofactor import has_second_factor

_LANG = r"(?:[a-z]{2}(?:-[a-z]+)?/)?"
STAFF_PATH = re.compile(rf"^/{_LANG}(?:manage|admin|accounts/staff|accounts/after-login)(?:/|$)")
OPEN_PATH = re.compile(rf"^/{_LANG}accounts/(?:two-factor|logout)(?:/|$)|^/i18n/|^/static/")


def _anonymous() -> AnonymousUser:
    user = AnonymousUser()
    user.is_verified = lambda: False  # what django-otp's middleware gives every user
    return user


# Whether a user is staff, per process, for STAFF_TTL seconds: a family's request (the opening rush)
# costs no role query. Staff pages always ask the database; a role granted or removed in this
# process is seen at once (signals below), in the other processes within STAFF_TTL seconds.
STAFF_TTL = 5.0
_staff_seen: dict[int, tuple[float, bool]] = {}


def _forget_staff(**_kwargs) -> None:
    _staff_seen.clear()


def _is_staff(user, path: str) -> bool:
    from time import monotonic

    seen = _staff_seen.get(user.pk)
    if seen is not None and seen[0] > monotonic() and not STAFF_PATH.match(path):
        return seen[1]
    staff = is_staff_member(user)
    _staff_seen[user.pk] = (monotonic() + STAFF_TTL, staff)
    return staff


class StaffTwoFactorMiddleware:
    def __init__(self, get_response):
        from django.apps import apps
        from django.db.models.signals import post_delete, post_save

        for model in ("accounts.StaffRole", "accounts.EditorRole", "bookings.AgentRole", "auth.User"):
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
