"""Fields the accounts views read by hand: a field sent twice, a control character or an unknown
value is refused naming the field, and nothing changes.

The erasure review page (``action``, ``confirm``): ``QueryDict.get`` reads only the last of
repeated values, so ``action=answer&action=erase`` with ``confirm=yes`` used to erase a family
file from the "mark as answered" button's post. The second factor's pages (``next``): a bad
``next`` is refused before the code is checked, so a recovery code is not used up.
"""

from __future__ import annotations

import html

import pytest
from django.urls import reverse
from django.utils import translation
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from guichet.accounts import twofactor
from guichet.accounts.models import ErasureRequest
from guichet.bookings.models import Household
from guichet.common.actor import Actor
from guichet.journal.models import Entry
from tests.accounts.helpers import current_code
from tests.accounts.test_erasure import family  # noqa: F401 - a fixture
from tests.accounts.test_two_factor import editor, portal, sign_in  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def _state(b):
    """The request, the family file, the journal (but the record of the agent's access to the page)."""
    req = ErasureRequest.objects.get(pk=b.request.pk)
    return (req.status, req.erased_at, Household.objects.get(pk=b.household.pk).display_name,
            Entry.objects.exclude(operation="accounts.record.access").count())


@pytest.mark.parametrize(("data", "label", "words"), [
    ({"action": ["answer", "erase"], "confirm": "yes"}, "Action", "more than once"),
    ({"action": ["erase", "answer"], "confirm": "yes"}, "Action", "more than once"),
    ({"action": "erase", "confirm": ["no", "yes"]}, "Confirmation", "more than once"),
    ({"action": "erase\x00", "confirm": "yes"}, "Action", "control characters"),
    ({"action": "answer\x1b"}, "Action", "control characters"),
    ({"action": "erase", "confirm": "yes\x00"}, "Confirmation", "control characters"),
    ({"action": "efface-tout"}, "Action", "use one of the page's buttons"),
    ({"action": "x" * 5000}, "Action", "use one of the page's buttons"),
])
def test_the_erasure_page_refuses_bad_input_naming_the_field(client, family, data, label, words):  # noqa: F811
    b = family
    client.force_login(b.agent)
    before = _state(b)
    with translation.override("en"):
        r = client.post("/en" + b.url, data)
    assert r.status_code == 400
    text = html.unescape(r.content.decode())
    assert f"{label}: " in text and words in text
    assert _state(b) == before


def test_the_answer_button_still_answers(client, family):  # noqa: F811
    """Control: each field once, the request is marked answered."""
    b = family
    client.force_login(b.agent)
    assert client.post(b.url, {"action": "answer"}).status_code == 302
    assert ErasureRequest.objects.get(pk=b.request.pk).status == "answered"


# --- the second factor's ``next`` -------------------------------------------------------------------------------

MANAGE = "/manage/status/"


@pytest.mark.real_two_factor
@pytest.mark.parametrize("next_url", [[MANAGE, "/manage/bookings/"], MANAGE + "\x00", "\x1b" + MANAGE])
def test_the_second_factor_refuses_a_bad_next_and_keeps_the_recovery_code(client, editor, next_url):  # noqa: F811
    _device, codes = twofactor.enrol_directly(user=editor, key_hex=None, actor=Actor.cli())
    sign_in(client)
    tokens = StaticToken.objects.count()
    with translation.override("en"):
        r = client.post(reverse("accounts:two-factor"), {"code": codes[0], "next": next_url})
    assert r.status_code == 400
    assert "Page to open after signing in: " in html.unescape(r.content.decode())
    assert StaticToken.objects.count() == tokens  # the recovery code was not used up
    assert client.get(MANAGE).status_code == 302  # still not through the second step


@pytest.mark.real_two_factor
def test_the_second_factor_setup_refuses_a_next_sent_twice(client, editor):  # noqa: F811
    sign_in(client)
    client.get(reverse("accounts:two-factor-setup"))
    device = TOTPDevice.objects.get(user=editor, confirmed=False)
    with translation.override("en"):
        r = client.post(reverse("accounts:two-factor-setup"),
                        {"code": current_code(device), "next": [MANAGE, "/manage/bookings/"]})
    assert r.status_code == 400
    assert "Page to open after signing in: " in html.unescape(r.content.decode())
    assert not TOTPDevice.objects.filter(user=editor, confirmed=True).exists()
