""" "Mis à jour le" is the date the information was given, not the time it was imported.

A notice imported long after it was written (the demo loads 2024 notices today) must still say
it was updated on its own date; the import time is shown only as "last checked".
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from guichet.common.actor import Actor
from guichet.demo import DEMO_DIR
from guichet.status import services
from guichet.status.notice import import_notice, notice_date
from guichet.status.poster import poster_context
from guichet.status.selectors import page_state

PARIS = ZoneInfo("Europe/Paris")
IMPORTED = dt.datetime(2026, 11, 24, 3, 55, tzinfo=PARIS)

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def saint_nazaire():
    path = DEMO_DIR / "saint-nazaire.yaml"
    with time_machine.travel(IMPORTED, tick=False):
        cs = import_notice(path.read_text(encoding="utf-8"), path.name, now=IMPORTED)
    return cs.portal


def test_the_page_says_the_notice_date_and_the_import_only_as_last_checked(client, saint_nazaire):
    with time_machine.travel(IMPORTED + dt.timedelta(minutes=5), tick=False):
        page = _text(client.get(reverse("status:page", kwargs={"portal": "saint-nazaire"})))
    # The notice's update is dated 21 May 2024 at 9:00: that is when the page was updated...
    assert re.search(r"Mis à jour le 21 mai 2024 à 9 h\b", page)
    # ...every service too (no service says it was updated on the day of the import)...
    assert "Mis à jour le 24 novembre 2026" not in page
    # ...and the import is the last check, shown once at the bottom.
    assert "Dernière vérification le 24 novembre 2026 à 3 h 55" in page


def test_service_page_and_json_carry_the_notice_date(client, saint_nazaire):
    with time_machine.travel(IMPORTED + dt.timedelta(minutes=5), tick=False):
        page = _text(
            client.get(
                reverse("status:service", kwargs={"portal": "saint-nazaire", "service": "eau"})
            )
        )
        doc = client.get(reverse("status:json", kwargs={"portal": "saint-nazaire"})).json()
    assert "Mis à jour le 21 mai 2024 à 9 h" in page
    water = next(s for s in doc["services"] if s["slug"] == "eau")
    assert dt.datetime.fromisoformat(water["updated_at"]) == dt.datetime(
        2024, 5, 21, 9, 0, tzinfo=PARIS
    )


def test_the_poster_says_the_notice_date(saint_nazaire):
    with time_machine.travel(IMPORTED, tick=False):
        context = poster_context(page_state(saint_nazaire, IMPORTED))
    assert context["updated_at"] == dt.datetime(2024, 5, 21, 9, 0, tzinfo=PARIS)


def test_a_change_made_later_is_dated_when_it_is_made(client, saint_nazaire):
    later = IMPORTED + dt.timedelta(days=1)
    services.publish_now(
        portal_slug="saint-nazaire",
        operations=[{"op": "availability.set", "incident": "cyberattaque-2024", "service": "eau",
                     "procedure": "factures", "state": "normal"}],
        actor=Actor.cli(), title="Retour", now=later,
    )  # fmt: skip
    with time_machine.travel(later, tick=False):
        page = _text(
            client.get(
                reverse("status:service", kwargs={"portal": "saint-nazaire", "service": "eau"})
            )
        )
    assert "Mis à jour le 25 novembre 2026 à 3 h 55" in page


def test_notice_date_is_the_latest_update_not_in_the_future():
    ops = [
        {"op": "update.post", "published_at": "2022-12-05T00:00:00+01:00"},
        {"op": "update.post", "published_at": "2022-12-07T10:00:00+01:00"},
        {
            "op": "update.post",
            "published_at": "2030-01-01T10:00:00+01:00",
        },  # scheduled: not yet given
        {"op": "advisory.set", "published_at": "2023-01-01T10:00:00+01:00"},
    ]
    now = dt.datetime(2026, 1, 1, tzinfo=PARIS)
    assert notice_date(ops, now) == dt.datetime(
        2022, 12, 7, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )
    assert notice_date([{"op": "service.set"}], now) is None
