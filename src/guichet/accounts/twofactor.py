"""Staff two-factor authentication: a TOTP authenticator app, and recovery codes.

Every staff member (``selectors.is_staff_member``) must pass a second factor before any staff
page (``middleware.StaffTwoFactorMiddleware``). The devices are django-otp's: one confirmed
``TOTPDevice`` named ``authenticator`` and one ``StaticDevice`` named ``recovery`` whose tokens
are the recovery codes. A recovery code is stored only as an HMAC of the code under the
``SECRET_KEY`` (a database dump alone does not reveal them), and works once.

Throttling: django-otp's own. After each wrong code, the next attempt on that device is refused
for 1, 2, 4, 8... seconds (``OTP_TOTP_THROTTLE_FACTOR``); a right code resets it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from binascii import unhexlify

import django_otp
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from guichet.common.actor import Actor
from guichet.journal.services import journal_append

TOTP_NAME = "authenticator"
RECOVERY_NAME = "recovery"
RECOVERY_COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud, typed by hand
_RECOVERY_RE = re.compile(r"^[a-z0-9]{4}-?[a-z0-9]{4}$")


def confirmed_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def has_second_factor(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def pending_totp(user) -> TOTPDevice:
    """The device being set up (not yet confirmed): the same key until it is confirmed, so that
    reloading the set-up page does not invalidate the QR code already scanned."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False, name=TOTP_NAME).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device


def secret_base32(device: TOTPDevice) -> str:
    """The key as people type it into an app, in groups of four."""
    raw = base64.b32encode(unhexlify(device.key)).decode().rstrip("=")
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def _digest(code: str) -> str:
    mac = hmac.new(settings.SECRET_KEY.encode(), b"guichet-recovery:" + code.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode()[:16].lower()


def normalise_code(raw: str) -> str:
    return re.sub(r"[\s]", "", (raw or "")).lower()


def _new_recovery_codes(user) -> list[str]:
    """Replace the user's recovery codes; returns the new ones (shown once)."""
    codes = ["".join(secrets.choice(_ALPHABET) for _ in range(8)) for _ in range(RECOVERY_COUNT)]
    codes = [f"{c[:4]}-{c[4:]}" for c in codes]
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    StaticToken.objects.bulk_create([StaticToken(device=device, token=_digest(c.replace("-", ""))) for c in codes])
    return codes


def totp_confirm(*, user, device: TOTPDevice, code: str, actor: Actor, now=None) -> list[str] | None:
    """Confirm the device being set up with a code from the app. Returns the new recovery codes
    (to show once), or None when the code is wrong. Any earlier authenticator is replaced."""
    now = now or timezone.now()
    code = normalise_code(code)
    if not code.isdigit() or device.user_id != user.pk:
        return None
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not device.verify_token(code):
            return None
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_recovery_codes(user)
        journal_append(actor=actor, operation="accounts.two_factor.enrol", objects=[user],
                       details={"user": user.pk, "recovery_codes": len(codes)}, now=now)
    return codes


def enrol_directly(*, user, key_hex: str | None, actor: Actor, now=None) -> tuple[TOTPDevice, list[str]]:
    """For an administrator enrolling someone in person (``guichet twofactor enrol``) and for the
    demo: a confirmed authenticator with this key (or a new one), and new recovery codes."""
    now = now or timezone.now()
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        kwargs = {"key": key_hex} if key_hex else {}
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=True, **kwargs)
        codes = _new_recovery_codes(user)
        journal_append(actor=actor, operation="accounts.two_factor.enrol", objects=[user],
                       details={"user": user.pk, "recovery_codes": len(codes), "by": "administrator"}, now=now)
    return device, codes


def second_factor_check(*, user, code: str, actor: Actor, now=None):
    """The device that accepts ``code`` (six digits from the app, or a recovery code, which is
    then used up), or None. Wrong codes are throttled per device by django-otp."""
    now = now or timezone.now()
    code = normalise_code(code)
    if code.isdigit():
        device = confirmed_totp(user)
        if device is None:
            return None
        return django_otp.verify_token(user, device.persistent_id, code)
    if not _RECOVERY_RE.match(code):
        return None
    device = StaticDevice.objects.filter(user=user, name=RECOVERY_NAME).first()
    if device is None:
        return None
    with transaction.atomic():
        verified = django_otp.verify_token(user, device.persistent_id, _digest(code.replace("-", "")))
        if verified is not None:
            left = StaticToken.objects.filter(device=device).count()
            journal_append(actor=actor, operation="accounts.two_factor.recovery_used", objects=[user],
                           details={"user": user.pk, "codes_left": left}, now=now)
    return verified


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__name=RECOVERY_NAME).count()


def recovery_codes_renew(*, user, actor: Actor, now=None) -> list[str]:
    now = now or timezone.now()
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        journal_append(actor=actor, operation="accounts.two_factor.recovery_renew", objects=[user],
                       details={"user": user.pk, "recovery_codes": len(codes)}, now=now)
    return codes


def two_factor_reset(*, user, actor: Actor, now=None) -> int:
    """Remove every device (lost phone and codes): the person sets up a new authenticator at
    their next sign-in. Returns how many devices were removed."""
    now = now or timezone.now()
    with transaction.atomic():
        n = TOTPDevice.objects.filter(user=user).count() + StaticDevice.objects.filter(user=user).count()
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        journal_append(actor=actor, operation="accounts.two_factor.reset", objects=[user],
                       details={"user": user.pk, "devices_removed": n}, now=now)
    return n
