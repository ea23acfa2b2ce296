"""bin/demo makes its demo editor finance and counter staff of both towns' childhood billing, so
that the billing screens it prints can be tried: the ``role add`` lines of the script are run
as written (with its shell variables) and the editor then opens the billing home of each town."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from guichet.accounts.models import StaffRole

pytestmark = pytest.mark.django_db

SCRIPT = Path(__file__).resolve().parents[2] / "bin" / "demo"
EMAIL = "editeur@demo.guichet.fr"


def _role_lines(script: str) -> list[str]:
    return [line.split(">/dev/null")[0].strip() for line in script.splitlines()
            if re.match(r'\s*"\$G" role add ', line)]


def test_bin_demo_gives_the_editor_the_billing_screens_of_both_towns(client):
    script = SCRIPT.read_text()
    portals = re.search(r'^DEMO_PORTALS="([^"]+)"', script, re.M).group(1).split()
    call_command("demo", stdout=io.StringIO())
    user = get_user_model().objects.create_user(username=EMAIL, email=EMAIL, password="x-Secret-123456")
    for portal in portals:
        for line in _role_lines(script):
            args = shlex.split(line.replace('"$portal"', portal).replace('"$EDITOR_EMAIL"', EMAIL))[1:]
            call_command(*args, stdout=io.StringIO())
    client.force_login(user)
    for portal in ("maisons-alfort", "saint-nazaire"):
        kinds = set(StaffRole.objects.filter(user=user, organisation__portal__slug=portal,
                                             organisation__slug="ville").values_list("kind", flat=True))
        assert {"finance", "counter"} <= kinds, portal
        assert f"http://$HOST:$PORT/manage/billing/{portal}/ville/" in script  # printed for the user
        assert client.get(reverse("billing:staff-home", args=[portal, "ville"])).status_code == 200
        assert client.get(reverse("billing:staff-runs", args=[portal, "ville"])).status_code == 200
