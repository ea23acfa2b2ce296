"""Helpers for tests that go through the real staff sign-in (password, then TOTP)."""

from __future__ import annotations

from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


def current_code(device: TOTPDevice, offset_steps: int = 0) -> str:
    """The six digits the user's app would show now (or ``offset_steps`` periods later)."""
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits,
                 drift=device.drift + offset_steps)
    return f"{value:0{device.digits}d}"


def enrolled_device(user) -> TOTPDevice:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="authenticator", confirmed=True)


def pass_second_factor(client, user, next_url: str = "") -> object:
    """After the password step: type the app's current code on the second-factor page."""
    device = enrolled_device(user)
    url = reverse("accounts:two-factor") + (f"?next={next_url}" if next_url else "")
    response = client.post(url, {"code": current_code(device), "next": next_url})
    assert response.status_code == 302, response.content.decode()[:500]
    return response
