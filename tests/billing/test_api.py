"""The billing API (``/api/v1/billing/``): deposits and payments with idempotency keys, receipts,
balances; roles; clear errors, never a 500."""

from __future__ import annotations

import json

import pytest

from guichet.accounts.models import ApiToken
from guichet.billing.models import Allocation, Payment

from .outputs_data import billed_town, staff

pytestmark = pytest.mark.django_db

BASE = "/api/v1/billing"


def token_for(user) -> dict:
    raw = f"tok-{user.pk}-secret"
    ApiToken.objects.create(user=user, name="t", digest=ApiToken.hash(raw))
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def town():
    b = billed_town()
    b.auth = token_for(staff(b.org, "guichet@ville.example", "counter"))
    return b


def post(client, path, body, auth, key="k-1"):
    headers = dict(auth)
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(BASE + path, json.dumps(body), content_type="application/json", **headers)


def deposit_body(b, **over):
    return {"portal": b.org.portal.slug, "household": "F001", "amount_cents": 1500, "method": "cash", **over}


def test_a_deposit_is_recorded_once_per_key(client, town):
    r = post(client, "/deposits", deposit_body(town), town.auth, key="dep-api-1")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["kind"] == "deposit" and body["amount_cents"] == 1500 and body["receipt_number"].startswith("REC-")
    # the open invoice (34,00 left) takes it all at once
    assert body["applied"] == [{"invoice": town.invoice.number, "amount_cents": 1500}]
    assert body["available_cents"] == 0 and body["balance_cents"] == 3400 - 1500
    again = post(client, "/deposits", deposit_body(town), town.auth, key="dep-api-1")
    assert again.status_code == 200 and again.json()["receipt_number"] == body["receipt_number"]
    assert Payment.objects.filter(idempotency_key="dep-api-1").count() == 1
    assert Allocation.objects.filter(payment__idempotency_key="dep-api-1").count() == 1
    reused = post(client, "/deposits", deposit_body(town, amount_cents=999), town.auth, key="dep-api-1")
    assert reused.status_code == 409 and reused.json()["errors"][0]["code"] == "key_reused"


def test_a_payment_of_an_invoice_and_the_surplus_as_credit(client, town):
    r = post(client, "/payments", {"portal": town.org.portal.slug, "invoice": town.invoice.number,
                                   "amount_cents": 5000, "method": "transfer", "reference": "VIR 12"},
             town.auth, key="pay-api-1")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["invoice"] == town.invoice.number and body["available_cents"] == 1600
    assert body["balance_cents"] == -1600
    r = client.get(f"{BASE}/households/F001/balance", {"portal": town.org.portal.slug}, **town.auth)
    assert r.status_code == 200 and r.json()["available_credit_cents"] == 1600 and r.json()["due_cents"] == 0
    r = client.get(f"{BASE}/receipts/{body['receipt_number']}", {"portal": town.org.portal.slug}, **town.auth)
    assert r.status_code == 200 and r.json()["amount_cents"] == 5000


@pytest.mark.parametrize(("over", "key", "status", "path", "code"), [
    ({}, None, 422, "Idempotency-Key", "invalid_key"),
    ({"amount_cents": 0}, "k", 422, "amount_cents", "invalid_amount"),
    ({"amount_cents": -5}, "k", 422, "amount_cents", "invalid_amount"),
    ({"method": "bitcoin"}, "k", 422, "method", None),
    ({"household": "NOPE"}, "k", 404, "household", "not_found"),
    ({"portal": "nowhere"}, "k", 404, "portal", "not_found"),
    ({"organisation": "mairie"}, "k", 404, "organisation", "not_found"),
])
def test_bad_deposits_record_nothing(client, town, over, key, status, path, code):
    before = Payment.objects.count()
    r = post(client, "/deposits", deposit_body(town, **over), town.auth, key=key)
    assert r.status_code == status, r.content
    error = r.json()["errors"][0]
    assert error["path"] == path and (code is None or error["code"] == code)
    assert Payment.objects.count() == before


def test_bad_payments(client, town):
    body = {"portal": town.org.portal.slug, "invoice": "FAC-1999-000001", "amount_cents": 100, "method": "cash"}
    r = post(client, "/payments", body, town.auth)
    assert r.status_code == 404 and r.json()["errors"][0]["path"] == "invoice"
    r = client.post(BASE + "/payments", "{not json", content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY="x", **town.auth)
    assert r.status_code in (400, 422)


def test_roles(client, town):
    r = post(client, "/deposits", deposit_body(town), {})
    assert r.status_code == 401
    family_user = staff(town.org, "parent@example.org")  # no role
    r = post(client, "/deposits", deposit_body(town), token_for(family_user))
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "forbidden"
    other = billed_town(ref="Z1")
    r = post(client, "/deposits", deposit_body(other, household="Z1"), town.auth)
    assert r.status_code == 403
    assert not Payment.objects.filter(household=other.household, idempotency_key="k-1").exists()


def test_openapi_documents_the_endpoints(client):
    schema = client.get("/api/v1/openapi.json").json()
    paths = schema["paths"]
    assert "/api/v1/billing/deposits" in paths and "/api/v1/billing/payments" in paths
    params = {p["name"] for p in paths["/api/v1/billing/deposits"]["post"].get("parameters", [])}
    assert "Idempotency-Key" in params
