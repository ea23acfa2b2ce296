"""The family chooses what happens to a full day, knowingly: no mode is preselected, a request
without one changes nothing, and each mode does what its label says ("partial": the full days go
on the waiting list; "all or nothing": nothing is booked and nobody is put on a waiting list, and
the answer says so)."""

from __future__ import annotations

import json
import re

import pytest
import time_machine
from django.utils import translation

from guichet.bookings.forms import BasketModeForm
from guichet.bookings.models import Basket, Booking, WaitlistEntry

from .test_api_bookings import make_token
from .test_services import BEFORE, WEDNESDAY, item, outcomes
from .test_views_family import Family, book

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    from .test_services import World

    return World(capacity=1)


def test_the_calendar_preselects_no_mode(world, client):
    world.session()
    family = Family(world, client)
    with time_machine.travel(BEFORE, tick=False):
        html = client.get(family.url("calendrier/?mois=2024-12")).content.decode()
    radios = re.findall(r'<input[^>]*name="mode"[^>]*>', html)
    assert len(radios) == 2
    assert not any("checked" in r for r in radios)


def test_a_request_without_a_mode_is_refused_and_receives_nothing(world, client):
    s = world.session()
    family = Family(world, client)
    with time_machine.travel(BEFORE, tick=False):
        r = book(family, s, mode="")
    assert r.status_code == 400
    assert not Basket.objects.exists() and not Booking.objects.exists()


def test_each_choice_says_what_happens_to_a_full_day(world):
    with translation.override("fr"):
        labels = [str(label) for _value, label in BasketModeForm().fields["mode"].choices]
    assert "liste d’attente" in labels[0] and "liste d’attente" in labels[1]
    assert "rien n’est réservé" in labels[1]


def test_all_or_nothing_with_a_full_day_books_nothing_waitlists_nobody_and_says_so(world):
    full, free = world.session(), world.session(day=WEDNESDAY.replace(day=11))
    other, (other_child,) = world.household()
    world.submit(other, [item(other_child, full)])
    h, (c,) = world.household()
    basket = world.submit(h, [item(c, full), item(c, free)], mode="all_or_nothing")
    assert outcomes(basket) == [("refused", "full"), ("refused", "basket_incomplete")]
    assert not WaitlistEntry.objects.exists()
    assert "rien n’a été mis en liste d’attente" in basket.result["items"][0]["message"]
    assert "tout ou rien" in basket.result["items"][1]["message"]
    # The same request in "partial" mode: the free day is booked, the full one waitlisted.
    basket = world.submit(h, [item(c, full), item(c, free)], mode="partial")
    assert outcomes(basket) == [("waitlisted", "full"), ("booked", "booked")]


def test_the_api_requires_the_mode(world, client):
    s = world.session()
    family = Family(world, client)
    auth = make_token(family.user, "mode-token")
    r = client.post("/api/v1/bookings/baskets", json.dumps({"items": [item(family.children[0], s)]}),
                    content_type="application/json", HTTP_IDEMPOTENCY_KEY="k", **auth)
    assert r.status_code == 422
    assert "mode" in json.dumps(r.json())
    assert not Basket.objects.exists()
