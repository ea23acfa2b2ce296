"""Cross-tenant and object-level refusals of the billing screens and API.

Two towns (each its own page and organisation, each with a billed family), plus a second
organisation on the first town's page. Every staff view, family view and API operation is
called by the wrong person: a family cannot reach another family's invoices; finance or counter
staff of one organisation cannot see or act on another's households, invoices, receipts or
runs, even by putting another organisation's identifiers in their own URLs. Each refusal changes
nothing; each test also has its control (the right person gets the page), so a 404 cannot come
from a mistyped URL.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from guichet.accounts.models import ApiToken, RecordAccess
from guichet.billing.models import Allocation, Invoice, InvoiceRun, Payment
from guichet.catalog.models import Organisation

from .outputs_data import billed_town, parent_of, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def towns(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    a = billed_town(ref="F001")
    b = billed_town(ref="G001")
    a.finance = staff(a.org, "compta-a@ville.example", "finance", "counter")
    a.counter = staff(a.org, "guichet-a@ville.example", "counter")
    b.finance = staff(b.org, "compta-b@ville.example", "finance", "counter")
    # Another organisation on town A's page (the agglomeration), with its own finance staff.
    a.agglo = Organisation.objects.create(portal=a.org.portal, slug="agglo", name="Agglomération")
    a.neighbour = staff(a.agglo, "compta-agglo@ville.example", "finance", "counter")
    a.parent = parent_of(a.household, "parent-a@example.org")
    b.parent = parent_of(b.household, "parent-b@example.org")
    return a, b


def _state():
    return (
        sorted(Payment.objects.values_list("pk", "amount_cents")),
        sorted(Invoice.objects.values_list("pk", "status")),
        sorted(InvoiceRun.objects.values_list("pk", "status")),
        Allocation.objects.count(),
    )


# What a successful call would need, so that a refusal is not just a form error.
POSTS = {
    "staff-deposit": {"amount": "10,00", "method": "cash", "key": "t-dep"},
    "staff-refund": {"amount": "1,00", "method": "cash", "reason": "test", "key": "t-ref"},
    "staff-invoice-payment": {"amount": "5,00", "method": "cash", "key": "t-pay"},
    "staff-credit-note": {"reason": "test", "key": "t-cn"},
    "staff-draft-discard": {"reason": "test"},
    "staff-run-finalise": {"issue_date": "01/12/2024", "due_days": "30"},
    "staff-run-cancel": {"confirm": "yes"},
    "staff-run-resume": {},
}


def staff_calls(t, *, portal=None, org=None, objects=None):
    """Every staff view of billing for town ``t`` (its page and organisation by default), about
    the objects of ``objects`` (``t`` by default): (method, name, args)."""
    o = objects or t
    args = [portal or t.org.portal.slug, org or t.org.slug]
    ref, inv, run = o.household.reference, o.invoice.pk, o.run.pk
    return [
        ("get", "staff-home", args),
        ("get", "staff-household", args + [ref]),
        ("post", "staff-deposit", args + [ref]),
        ("post", "staff-refund", args + [ref]),
        ("get", "staff-receipt", args + [o.deposit.receipt_number]),
        ("get", "staff-invoice", args + [inv]),
        ("get", "staff-invoice-pdf", args + [inv]),
        ("post", "staff-invoice-payment", args + [inv]),
        ("post", "staff-credit-note", args + [inv]),
        ("post", "staff-draft-discard", args + [inv]),
        ("get", "staff-runs", args),
        ("get", "staff-run", args + [run]),
        ("get", "staff-run-progress", args + [run]),
        ("post", "staff-run-finalise", args + [run]),
        ("post", "staff-run-cancel", args + [run]),
        ("post", "staff-run-resume", args + [run]),
        ("get", "staff-treasury", args),
    ]


def call(client, method, name, args):
    url = reverse(f"billing:{name}", args=args)
    return client.post(url, POSTS.get(name, {})) if method == "post" else client.get(url)


def test_staff_of_another_town_are_refused_on_every_billing_screen(client, towns):
    a, b = towns
    before = _state()
    client.force_login(b.finance)
    assert client.get(reverse("billing:staff-portal", args=[a.org.portal.slug])).status_code == 403
    for method, name, args in staff_calls(a):
        assert call(client, method, name, args).status_code == 403, name
    assert _state() == before
    assert not RecordAccess.objects.exists()  # a refused opening is no access to the record
    # Control: the same pages open for town A's own finance staff; opening the family's account
    # or one of its invoices (both show its postal address) is recorded as an access to its
    # record (docs/security.md).
    client.force_login(a.finance)
    for method, name, args in staff_calls(a):
        if method == "get":
            assert call(client, method, name, args).status_code == 200, name
    assert list(RecordAccess.objects.order_by("pk").values_list("user", "household_id", "what")) == [
        (a.finance.pk, a.household.pk, "billing.household"), (a.finance.pk, a.household.pk, "billing.invoice")
    ]


def test_another_towns_identifiers_in_ones_own_urls_answer_404(client, towns):
    a, b = towns
    before = _state()
    client.force_login(b.finance)
    # B's own page and organisation, A's household, receipt, invoice and run: not found.
    for method, name, args in staff_calls(b, objects=a):
        if name in ("staff-home", "staff-runs", "staff-treasury"):
            continue  # no object in the URL
        if name == "staff-receipt" and a.deposit.receipt_number == b.deposit.receipt_number:
            continue  # receipt numbers are per organisation: this one is B's own (checked below)
        assert call(client, method, name, args).status_code == 404, name
    assert _state() == before
    page = client.get(
        reverse(
            "billing:staff-receipt", args=[b.org.portal.slug, b.org.slug, b.deposit.receipt_number]
        )
    ).content.decode()
    assert b.household.reference in page and a.household.reference not in page
    # A search on B's page never lists A's families.
    found = client.get(
        reverse("billing:staff-home", args=[b.org.portal.slug, b.org.slug]), {"q": "F0"}
    )
    assert a.household.reference not in found.content.decode()


def test_staff_of_another_organisation_of_the_same_page_cannot_act_on_it(client, towns):
    a, _b = towns
    before = _state()
    client.force_login(a.neighbour)
    for method, name, args in staff_calls(a):
        assert call(client, method, name, args).status_code == 404, name
    # Their own organisation's URLs with A's objects: not found either.
    for method, name, args in staff_calls(a, org=a.agglo.slug):
        if name not in ("staff-home", "staff-runs", "staff-treasury"):
            assert call(client, method, name, args).status_code == 404, name
    assert _state() == before
    # The page's entry sends them to their own organisation only.
    r = client.get(reverse("billing:staff-portal", args=[a.org.portal.slug]))
    assert r.status_code == 302 and r["Location"].endswith(f"/{a.agglo.slug}/")


def test_counter_staff_do_not_reach_finance_only_screens(client, towns):
    a, _b = towns
    before = _state()
    client.force_login(a.counter)
    finance_only = {
        "staff-refund",
        "staff-credit-note",
        "staff-draft-discard",
        "staff-runs",
        "staff-run",
        "staff-run-progress",
        "staff-run-finalise",
        "staff-run-cancel",
        "staff-run-resume",
        "staff-treasury",
    }
    for method, name, args in staff_calls(a):
        if name in finance_only:
            assert call(client, method, name, args).status_code == 403, name
    assert _state() == before


def test_a_family_is_refused_on_staff_screens_and_on_another_familys_invoices(client, towns):
    a, b = towns
    before = _state()
    client.force_login(b.parent)
    for method, name, args in staff_calls(a) + staff_calls(b):
        assert call(client, method, name, args).status_code == 403, name
    # Town A's family pages: B's parent has no family file there.
    for name, args in (
        ("family-account", [a.org.portal.slug]),
        ("family-invoice", [a.org.portal.slug, a.invoice.pk]),
        ("family-invoice-pdf", [a.org.portal.slug, a.invoice.pk]),
    ):
        assert client.get(reverse(f"billing:{name}", args=args)).status_code == 404, name
    # Their own page with A's invoice: not found, and A's numbers nowhere on their account.
    for name in ("family-invoice", "family-invoice-pdf"):
        assert (
            client.get(
                reverse(f"billing:{name}", args=[b.org.portal.slug, a.invoice.pk])
            ).status_code
            == 404
        )
    own = client.get(reverse("billing:family-account", args=[b.org.portal.slug]))
    assert own.status_code == 200 and a.household.reference not in own.content.decode()
    assert (
        client.get(
            reverse("billing:family-invoice", args=[b.org.portal.slug, b.invoice.pk])
        ).status_code
        == 200
    )
    assert _state() == before


# --- API ---------------------------------------------------------------------------------------------

BASE = "/api/v1/billing"


def token_for(user) -> dict:
    raw = f"tok-{user.pk}-tenancy"
    ApiToken.objects.create(user=user, name="t", digest=ApiToken.hash(raw))
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def api_calls(client, auth, *, portal, organisation="", household, invoice, receipt, key):
    where = {"portal": portal, "organisation": organisation}
    return {
        "deposit_post": client.post(
            BASE + "/deposits",
            json.dumps({**where, "household": household, "amount_cents": 100, "method": "cash"}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key + "d",
            **auth,
        ),
        "payment_post": client.post(
            BASE + "/payments",
            json.dumps({**where, "invoice": invoice, "amount_cents": 100, "method": "cash"}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key + "p",
            **auth,
        ),
        "receipt_get": client.get(f"{BASE}/receipts/{receipt}", where, **auth),
        "balance_get": client.get(f"{BASE}/households/{household}/balance", where, **auth),
    }


def test_api_staff_of_another_town_or_organisation_are_refused(client, towns):
    a, b = towns
    before = _state()
    mine = {
        "household": a.household.reference,
        "invoice": a.invoice.number,
        "receipt": a.deposit.receipt_number,
    }
    for user in (b.finance, a.neighbour):
        answers = api_calls(
            client,
            token_for(user),
            portal=a.org.portal.slug,
            organisation=a.org.slug,
            key=f"k{user.pk}",
            **mine,
        )
        for op, r in answers.items():
            assert r.status_code == 403, (user.email, op, r.content)
            assert r.json()["errors"][0]["code"] == "forbidden"
    assert _state() == before
    # Control: A's finance staff get the same answers.
    ok = api_calls(
        client,
        token_for(a.finance),
        portal=a.org.portal.slug,
        organisation=a.org.slug,
        key="ok",
        **mine,
    )
    assert {op: r.status_code for op, r in ok.items()} == {
        "deposit_post": 201,
        "payment_post": 201,
        "receipt_get": 200,
        "balance_get": 200,
    }


def test_api_another_towns_identifiers_on_ones_own_page_are_not_found(client, towns):
    a, b = towns
    auth = token_for(b.finance)
    before = _state()
    r = client.get(
        f"{BASE}/households/{a.household.reference}/balance", {"portal": b.org.portal.slug}, **auth
    )
    assert r.status_code == 404
    r = client.post(
        BASE + "/deposits",
        json.dumps(
            {
                "portal": b.org.portal.slug,
                "household": a.household.reference,
                "amount_cents": 100,
                "method": "cash",
            }
        ),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="x1",
        **auth,
    )
    assert r.status_code == 404
    assert _state() == before
    # Numbers are per organisation: the same receipt number on B's page is B's receipt, about B's family.
    r = client.get(
        f"{BASE}/receipts/{a.deposit.receipt_number}", {"portal": b.org.portal.slug}, **auth
    )
    assert r.status_code in (200, 404)
    if r.status_code == 200:
        assert r.json()["household"] == b.household.reference


def test_api_a_family_signed_in_is_refused(client, towns):
    a, _b = towns
    client.force_login(a.parent)
    before = _state()
    where = {"portal": a.org.portal.slug, "organisation": a.org.slug}
    r = client.get(f"{BASE}/households/{a.household.reference}/balance", where)
    assert r.status_code == 403
    r = client.get(f"{BASE}/receipts/{a.deposit.receipt_number}", where)
    assert r.status_code == 403
    assert _state() == before
