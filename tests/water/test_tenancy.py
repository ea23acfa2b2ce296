"""Cross-tenant and object-level refusals of the water screens.

Two agglomerations, each with a customer, an invoice and a direct-debit run, and a second
organisation on the first one's page. Finance staff of one organisation cannot see or act on
another's customers, invoices, outage marks or SEPA files, even with another organisation's
identifiers in their own URLs; counter staff and families are refused; each refusal changes
nothing, and the right person gets the same pages (control).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from guichet.accounts.models import StaffRole
from guichet.bookings.models import Guardian, Household
from guichet.catalog.models import Organisation, Portal
from guichet.water import services as s
from guichet.water.demo import TARIFF_2023
from guichet.water.models import DebitRun, Instalment, Invoice

from .conftest import ACTOR, IBANS, D, at, debit_month, monthly_payer, regularise_2024

pytestmark = pytest.mark.django_db


def _user(email, org=None, *kinds):
    user = get_user_model().objects.create_user(email, email, "x" * 12)
    for kind in kinds:
        StaffRole.objects.create(user=user, organisation=org, kind=kind, granted_at=timezone.now())
    return user


def _agglo(slug):
    portal = Portal.objects.create(slug=slug, name=slug)
    org = Organisation.objects.create(portal=portal, slug="eau", name="Eau", kind="agglomeration")
    s.creditor_set(
        organisation=org,
        name="Eau",
        creditor_id="FR72ZZZ123456",
        iban="FR7630006000000001123456786",
        actor=ACTOR,
        now=at(D(2023, 11, 1)),
    )
    s.tariff_set(
        organisation=org,
        valid_from=D(2023, 1, 1),
        definition=TARIFF_2023,
        actor=ACTOR,
        now=at(D(2023, 11, 1)),
    )
    return org


class Side:
    def __init__(self, org, ref, iban):
        self.org = org
        contract = monthly_payer(org, ref, iban=iban)
        self.ref = ref
        self.run = debit_month(org, 1).run
        regularise_2024(org, contract)
        self.invoice = Invoice.objects.get(organisation=org)
        self.finance = _user(f"compta-{org.portal.slug}@example.org", org, "finance")


@pytest.fixture
def sides(org):
    a = Side(org, "C-A", IBANS[0])
    b = Side(_agglo("autre-agglo"), "C-B", IBANS[1])
    a.neighbour_org = Organisation.objects.create(portal=org.portal, slug="ville", name="Ville")
    a.neighbour = _user("compta-ville@example.org", a.neighbour_org, "finance")
    a.counter = _user("guichet@example.org", org, "counter")
    return a, b


def _state():
    return (
        sorted(Instalment.objects.values_list("pk", "state")),
        DebitRun.objects.count(),
        sorted(Invoice.objects.values_list("pk", "balance")),
    )


POSTS = {
    "plan": {"first_due": "10/01/2025", "count": "3"},
    "outage": {"due_from": "01/01/2024", "due_until": "31/12/2024", "reason": "test"},
}


def calls(side, *, portal=None, org=None, objects=None):
    o = objects or side
    args = [portal or side.org.portal.slug, org or side.org.slug]
    return [
        ("get", "home", args),
        ("get", "customer", args + [o.ref]),
        ("post", "plan", args + [o.ref, o.invoice.number]),
        ("get", "outage", args),
        ("post", "outage", args),
        ("get", "regularisations", args),
        ("get", "debit-runs", args),
        ("get", "debit-file", args + [o.run.pk]),
    ]


def call(client, method, name, args):
    url = reverse(f"water:{name}", args=args)
    return client.post(url, POSTS.get(name, {})) if method == "post" else client.get(url)


def test_finance_of_another_agglomeration_is_refused_everywhere(client, sides):
    a, b = sides
    before = _state()
    client.force_login(b.finance)
    assert client.get(reverse("water:portal", args=[a.org.portal.slug])).status_code == 403
    for method, name, args in calls(a):
        assert call(client, method, name, args).status_code == 403, name
    # Their own page with A's customer, invoice and SEPA file: not found.
    for method, name, args in calls(b, objects=a):
        if name in ("customer", "plan", "debit-file"):
            assert call(client, method, name, args).status_code == 404, name
    assert _state() == before
    # Control: A's finance opens the same pages; the SEPA file is theirs.
    client.force_login(a.finance)
    for method, name, args in calls(a):
        if method == "get":
            assert call(client, method, name, args).status_code == 200, name


def test_finance_of_another_organisation_of_the_same_page_is_refused(client, sides):
    a, _b = sides
    before = _state()
    client.force_login(a.neighbour)
    for method, name, args in calls(a):
        assert call(client, method, name, args).status_code == 404, name
    for method, name, args in calls(a, org=a.neighbour_org.slug):
        if name in ("customer", "plan", "debit-file"):
            assert call(client, method, name, args).status_code == 404, name
    r = client.get(reverse("water:portal", args=[a.org.portal.slug]))
    assert r.status_code == 302 and r["Location"].endswith(f"/{a.neighbour_org.slug}/")
    assert _state() == before


def test_counter_staff_and_families_are_refused(client, sides):
    a, _b = sides
    parent = _user("parent@example.org")
    household = Household.objects.create(
        organisation=a.org, reference="F1", display_name="Famille", created_at=timezone.now()
    )
    Guardian.objects.create(organisation=a.org, household=household, user=parent)
    before = _state()
    for user in (a.counter, parent):
        client.force_login(user)
        assert client.get(reverse("water:portal", args=[a.org.portal.slug])).status_code == 403
        for method, name, args in calls(a):
            assert call(client, method, name, args).status_code == 403, (user.email, name)
    assert _state() == before
