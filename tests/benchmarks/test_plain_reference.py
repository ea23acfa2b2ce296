"""The plain-Django reference of the opening-day benchmark (bench/plain): it books as the issue's
"plain Django stack" would, with Guichet's models, so that the rush can measure it beside Guichet
and check the same invariants."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from bench import checks, scenario
from django.test import Client
from django.urls import Resolver404, resolve
from django.utils import timezone

from guichet.bookings.models import Basket, Booking, SessionPart, WaitlistEntry

PATH = "/plain/v1/bookings/baskets"

pytestmark = [pytest.mark.django_db, pytest.mark.urls("bench.plain.urls")]


@pytest.fixture
def scen():
    """One centre, one place a day, the window open; guardians signed in beforehand."""
    s = scenario.build(scenario.Params(families=6, centres=1, places=1, seed=3),
                       opens_at=timezone.now() - dt.timedelta(minutes=1), prefix="plain")
    scenario.prepare_auth(s, auth="session")
    return s


def _post(fam, body, *, key="k1", csrf=True):
    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = fam.session_key
    client.cookies["csrftoken"] = fam.csrf
    headers = {"Idempotency-Key": key, **({"X-CSRFToken": fam.csrf} if csrf else {})}
    return client.post(PATH, body if isinstance(body, str) else json.dumps(body),
                       content_type="application/json", headers=headers)


def _week(scen, fam, mode):
    """The family's first child, the first week's five days."""
    return {"mode": mode, "items": [{"child": fam.children[0], "session": scen.sessions[(0, d)], "unit": "full_day"}
                                    for d in range(5)]}


def test_books_then_waitlists_then_refuses_without_overbooking(scen):
    first, second, third = scen.families[:3]
    r1 = _post(first, _week(scen, first, "all_or_nothing"))
    r2 = _post(second, _week(scen, second, "partial"))
    r3 = _post(third, _week(scen, third, "all_or_nothing"))

    assert [r.status_code for r in (r1, r2, r3)] == [200, 200, 200]
    assert r1.json()["status"] == "done"
    assert [i["outcome"] for i in r1.json()["items"]] == ["booked"] * 5
    assert [(i["outcome"], i["position"]) for i in r2.json()["items"]] == [("waitlisted", 1)] * 5
    assert [(i["outcome"], i["code"]) for i in r3.json()["items"]] == [("refused", "full")] * 5
    assert Booking.objects.filter(child_id=first.children[0]).count() == 5
    assert WaitlistEntry.objects.filter(child_id=second.children[0]).count() == 5
    inv = checks.check(scen.organisation_id, {first.household_id: 5, second.household_id: 0,
                                              third.household_id: 0})
    assert inv.ok and inv.overbooked == 0 and inv.ledger_mismatches == 0 and inv.booked == 5


def test_a_retry_with_the_same_key_books_once(scen):
    fam = scen.families[0]
    r1 = _post(fam, _week(scen, fam, "partial"), key="same")
    r2 = _post(fam, _week(scen, fam, "partial"), key="same")

    assert r1.status_code == r2.status_code == 200
    assert r1.json()["basket"] == r2.json()["basket"]
    assert Basket.objects.count() == 1 and Booking.objects.count() == 5
    assert sorted(SessionPart.objects.values_list("booked", flat=True)) == [0] * 5 + [1] * 5


def test_refused_without_csrf_token_and_nothing_booked(scen):
    fam = scen.families[0]
    response = _post(fam, _week(scen, fam, "partial"), csrf=False)

    assert response.status_code == 403
    assert Basket.objects.count() == 0 and Booking.objects.count() == 0


@pytest.mark.parametrize("body", ["{not json", json.dumps({"mode": "maybe", "items": []}),
                                  json.dumps({"mode": "partial", "items": [{"child": "x", "session": 1}]})])
def test_bad_input_is_a_422_not_a_500(scen, body):
    response = _post(scen.families[0], body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["code"]
    assert Basket.objects.count() == 0


def test_signed_out_gets_401(scen):
    client = Client(enforce_csrf_checks=False)
    response = client.post(PATH, "{}", content_type="application/json", headers={"Idempotency-Key": "k"})

    assert response.status_code == 401


@pytest.mark.urls("guichet.urls")
def test_not_reachable_from_guichets_urls():
    with pytest.raises(Resolver404):
        resolve(PATH)
