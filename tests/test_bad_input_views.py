"""Issue 7: the staff views that read ``request.POST`` by hand, fed garbage by hypothesis.

Billing (counter deposit, refund, invoice payment, invoice runs, finalising a run, discarding a
draft) and water (instalment plan, service interruption). Whatever is posted: never a 5xx; an
answer that refuses (400, the page again with its error box) wrote nothing at all (journal and
every table) and names the fields in error (each error links to a field of the form); and an
answer that accepts wrote its journal entry: no table changes without the journal changing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guichet.billing.models import Invoice
from guichet.journal.models import Entry
from tests.billing import factories as F
from tests.billing.outputs_data import billed_town, staff
from tests.billing.test_views_staff import _sept_town
from tests.test_bad_input_forms import GARBAGE, _row_counts
from tests.water.conftest import monthly_payer, regularise_2024
from tests.water.conftest import org as water_org  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db

# Tables a request may change without it being a write of the application: the session, and
# background tasks (enqueuing the PDFs of an already final run again is not a change).
NOT_DOMAIN = {"django_session", "accounts_session", "django_tasks_database_dbtaskresult"}


@dataclass
class Endpoint:
    url: Callable[[object], str]
    fields: dict[str, list[str]]  # field -> plausible values
    anchor: str | None  # errors link to "#<anchor><field>"; None: one message, no link
    lists: tuple[str, ...] = ()  # fields posted as several values
    gone: Callable[[object], bool] | None = (
        None  # the object was used up by an accepted post: 404 is right
    )


AMOUNT = ["10", "45,50", "0", "-5", "200000", "0,001", "1.5"]
METHOD = ["cash", "cheque", "card", "transfer", "direct_debit"]
KEY = ["form-1", "form-2", "x" * 101]

BILLING = {
    "deposit": Endpoint(
        lambda w: reverse("billing:staff-deposit", args=[*w.args, w.household.reference]),
        {"amount": AMOUNT, "method": METHOD, "reference": ["0001234", ""], "key": KEY},
        "dep-",
    ),
    "refund": Endpoint(
        lambda w: reverse("billing:staff-refund", args=[*w.args, w.household.reference]),
        {"amount": AMOUNT, "method": METHOD, "reason": ["Déménagement", ""], "key": KEY},
        "ref-",
    ),
    "invoice-payment": Endpoint(
        lambda w: reverse("billing:staff-invoice-payment", args=[*w.args, w.invoice.pk]),
        {"amount": AMOUNT, "method": METHOD, "reference": ["TPE 998", ""], "key": KEY},
        "pay-",
    ),
    "runs": Endpoint(
        lambda w: reverse("billing:staff-runs", args=w.sept_args),
        {
            "first_month": ["2024-09", "2024-10", "2024-13", "09/2024"],
            "last_month": ["2024-09", "2024-08", "2024-10"],
            "grouping": ["run", "month", "week"],
            "activities": ["ACTIVITY", "999999", "-1"],
            "key": KEY,
        },
        "",
        lists=("activities",),
    ),
    "run-finalise": Endpoint(
        lambda w: reverse("billing:staff-run-finalise", args=[*w.sept_args, w.run.pk]),
        {
            "issue_date": ["2024-12-02", "02/12/2024", "1900-01-01", "31/02/2024"],
            "due_days": ["30", "400", "0", "-1"],
        },
        "",
    ),
    "draft-discard": Endpoint(
        lambda w: reverse("billing:staff-draft-discard", args=[*w.sept_args, w.draft.pk]),
        {"reason": ["quotient to update", ""]},
        None,
        gone=lambda w: not Invoice.objects.filter(pk=w.draft.pk).exists(),
    ),
}

WATER = {
    "plan": Endpoint(
        lambda w: (
            f"/manage/water/{w.org.portal.slug}/{w.org.slug}/customers/C-1/invoices/R2024-000001/plan/"
        ),
        {
            "count": ["3", "2", "12", "13", "1", "30"],
            "first_due": ["2025-01-10", "10/01/2025", "2024-02-30"],
        },
        None,
    ),
    "outage": Endpoint(
        lambda w: f"/manage/water/{w.org.portal.slug}/{w.org.slug}/outage/",
        {
            "due_from": ["2024-03-01", "01/03/2024", "31/02/2024"],
            "due_until": ["2024-06-30", "30/06/2024", "2024-02-01"],
            "reason": ["Panne", ""],
        },
        "",
    ),
}


class Billing:
    def __init__(self):
        town = billed_town()
        self.household, self.invoice = town.household, town.invoice
        self.args = [town.org.portal.slug, town.org.slug]
        self.user = staff(town.org, "fuzz@ville.example", "finance", "counter")
        org, acts, sept_user = _sept_town()
        self.sept_args = [org.portal.slug, org.slug]
        self.activity = acts["mercredis"].pk
        self.run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]])
        self.draft = Invoice.objects.get(run=self.run, household__reference="NOQ")
        from guichet.accounts.models import StaffRole

        StaffRole.objects.create(user=self.user, organisation=org, kind="finance", granted_at=F.NOW)


class Water:
    def __init__(self, org):
        self.org = org
        contract = monthly_payer(org)
        regularise_2024(org, contract)
        from django.contrib.auth import get_user_model
        from django.utils import timezone

        from guichet.accounts.models import StaffRole

        self.user = get_user_model().objects.create_user("compta", "compta@example.org", "x")
        StaffRole.objects.create(
            user=self.user, organisation=org, kind="finance", granted_at=timezone.now()
        )


@pytest.fixture
def billing_world():
    return Billing()


@pytest.fixture
def water_world(water_org):  # noqa: F811 - the fixture imported above
    return Water(water_org)


def _post_data(draw, endpoint: Endpoint, world) -> dict[str, list[str]]:
    """Either garbage everywhere, or plausible values with one field spoilt."""
    data: dict[str, list[str]] = {}
    spoilt = (
        draw(st.sampled_from([None, *endpoint.fields])) if draw(st.booleans()) else "everything"
    )
    for name, plausible in endpoint.fields.items():
        plausible = [str(world.activity) if v == "ACTIVITY" else v for v in plausible]
        if spoilt not in ("everything", name):
            data[name] = [draw(st.sampled_from(plausible))]
            continue
        one = st.one_of(st.just(""), GARBAGE, st.sampled_from(plausible))
        how = draw(st.sampled_from(["absent", "one", "one", "one", "several"]))
        if how == "one":
            data[name] = [draw(one)]
        elif how == "several" or name in endpoint.lists:
            data[name] = draw(st.lists(one, min_size=0, max_size=3))
    if draw(st.booleans()):
        data[draw(st.text(min_size=1, max_size=10))] = [draw(GARBAGE)]
    return data


def _domain_counts() -> dict[str, int]:
    return {t: n for t, n in _row_counts().items() if t not in NOT_DOMAIN}


def _check(client, world, endpoint: Endpoint, data: dict[str, list[str]]) -> None:
    journal, tables = Entry.objects.count(), _domain_counts()
    r = client.post(endpoint.url(world), data)
    assert r.status_code < 500, r.status_code
    if r.status_code == 404 and endpoint.gone is not None and endpoint.gone(world):
        return
    assert r.status_code in (302, 400), r.status_code
    if r.status_code == 400:
        assert Entry.objects.count() == journal, "a refused post wrote to the journal"
        assert _domain_counts() == tables, "a refused post wrote to the database"
        page = r.content.decode()
        assert 'class="m-errors" role="alert"' in page
        if endpoint.anchor is not None:
            links = re.findall(r'<li><a href="#' + re.escape(endpoint.anchor) + r'([\w-]*)">', page)
            assert links, "the error box names no field"
            assert set(links) <= set(endpoint.fields), links
    else:
        # PostgreSQL refuses NUL in text (a 500 there): an accepted post must not have stored one.
        nul = [
            k
            for k, vs in data.items()
            if k in endpoint.fields and k != "key" and any("\x00" in v for v in vs)
        ]
        assert not nul, f"accepted text with a NUL character in {nul}"
    if r.status_code == 302 and Entry.objects.count() == journal:
        after = _domain_counts()
        changed = {t: (n, after[t]) for t, n in tables.items() if after[t] != n}
        assert not changed, f"a write without its journal entry: {changed}"


SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("name", sorted(BILLING))
@SETTINGS
@given(draw=st.data())
def test_billing_staff_views_refuse_garbage_cleanly(client, billing_world, name, draw):
    client.force_login(billing_world.user)
    endpoint = BILLING[name]
    _check(client, billing_world, endpoint, _post_data(draw.draw, endpoint, billing_world))


@pytest.mark.parametrize("name", sorted(WATER))
@SETTINGS
@given(draw=st.data())
def test_water_staff_views_refuse_garbage_cleanly(client, water_world, name, draw):
    client.force_login(water_world.user)
    water_world.activity = None
    endpoint = WATER[name]
    _check(client, water_world, endpoint, _post_data(draw.draw, endpoint, water_world))


def test_the_plausible_values_do_get_through(client, billing_world, water_world):
    """Control: the fuzzing can reach the writes (a refused answer is not the only one)."""
    client.force_login(billing_world.user)
    url = BILLING["deposit"].url(billing_world)
    r = client.post(url, {"amount": "10", "method": "cash", "reference": "", "key": "control-1"})
    assert r.status_code == 302
    client.force_login(water_world.user)
    r = client.post(
        WATER["outage"].url(water_world),
        {"due_from": "2024-03-01", "due_until": "2024-06-30", "reason": "Panne"},
    )
    assert r.status_code == 302


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("deposit", {"amount": "10", "method": "cash", "reference": "A\x00B"}),
        ("invoice-payment", {"amount": "1", "method": "cash", "reference": "\x00"}),
        ("refund", {"amount": "1", "method": "cash", "reason": "Déménagement\x00"}),
    ],
)
def test_a_nul_character_is_refused_on_its_field(client, billing_world, name, data):
    """PostgreSQL cannot store NUL in text: the views refuse it on the field, as Django's forms do."""
    client.force_login(billing_world.user)
    journal = Entry.objects.count()
    r = client.post(BILLING[name].url(billing_world), data)
    assert r.status_code == 400
    field = "reference" if "reference" in data else "reason"
    assert re.search(r'<li><a href="#\w+-' + field + '">', r.content.decode())
    assert Entry.objects.count() == journal


def test_a_refused_refund_shows_its_error_even_without_credit_to_refund(client, billing_world):
    """The refund form is only offered while there is credit; an error must show all the same
    (a second tab, or the credit used meanwhile), not a silent 400."""
    client.force_login(billing_world.user)
    r = client.post(
        BILLING["refund"].url(billing_world), {"amount": "5", "method": "cash", "reason": ""}
    )
    assert r.status_code == 400
    assert '<li><a href="#ref-reason">' in r.content.decode()


def test_the_outage_and_draft_discard_refuse_a_nul_character(client, billing_world, water_world):
    client.force_login(water_world.user)
    r = client.post(
        WATER["outage"].url(water_world),
        {"due_from": "2024-03-01", "due_until": "2024-06-30", "reason": "Panne\x00"},
    )
    assert r.status_code == 400 and '<li><a href="#reason">' in r.content.decode()
    client.force_login(billing_world.user)
    r = client.post(BILLING["draft-discard"].url(billing_world), {"reason": "to fix\x00"})
    assert r.status_code == 302 and Invoice.objects.filter(pk=billing_world.draft.pk).exists()
