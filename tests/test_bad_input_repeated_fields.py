"""A staff form field sent several times, or holding a control character, is refused on its field.

``request.POST.get`` reads only the last of repeated values: ``due_days=['\\x00', '0']`` used to
finalise a run with 0 days. The hand-parsed billing and water views read each field once
(``guichet.common.postdata.post_values``): the page comes back (400) naming the field, nothing
is written.
"""

from __future__ import annotations

import html
import re

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import translation

from guichet.billing.models import Invoice, InvoiceRun, Payment
from guichet.common.postdata import post_values
from guichet.journal.models import Entry
from guichet.water.models import Instalment
from tests.test_bad_input_views import BILLING, WATER, billing_world, water_world  # noqa: F401 - fixtures
from tests.water.conftest import org as water_org  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    """The staff pages in English (``/en/...``), as the other billing screen tests read them."""
    with translation.override("en"):
        yield


def _errors(response) -> list[tuple[str, str]]:
    """(anchor, text) of each error of the page's error box."""
    return [(a, html.unescape(t)) for a, t in re.findall(r'<li><a href="#([\w-]*)">([^<]*)</a></li>',
                                                        response.content.decode())]


def test_post_values_reads_each_field_once():
    errors: dict[str, str] = {}
    data = QueryDict(mutable=True)
    data.setlist("a", ["1", "2"])
    data.setlist("b", [" ok\x00 "])
    data.setlist("c", [" 12 "])
    data.setlist("d", ["tab\there"])
    values = post_values(data, {"a": "Field A", "b": "Field B", "c": "Field C", "d": "Field D", "e": "Field E"},
                         errors)
    assert values == {"a": "", "b": "ok", "c": "12", "d": "tabhere", "e": ""}
    assert set(errors) == {"a", "b", "d"}
    assert errors["a"].startswith("Field A: ") and "more than once" in errors["a"]
    assert errors["b"].startswith("Field B: ") and "control characters" in errors["b"]


def test_post_values_lets_line_breaks_through_in_text_areas_only():
    errors: dict[str, str] = {}
    data = QueryDict(mutable=True)
    data.setlist("address", [" 1 rue A\r\n44600 Ville "])
    data.setlist("note", ["1 rue A\n44600 Ville"])
    data.setlist("bad", ["1 rue A\n\x00Ville"])
    values = post_values(data, {"address": "Address", "note": "Note", "bad": "Bad"}, errors, lines=("address", "bad"))
    assert values == {"address": "1 rue A\r\n44600 Ville", "note": "1 rue A44600 Ville", "bad": "1 rue A\nVille"}
    assert set(errors) == {"note", "bad"}
    assert errors["bad"].startswith("Bad: ") and "line breaks are fine" in errors["bad"]


def test_a_run_is_not_finalised_with_due_days_sent_twice(client, billing_world):  # noqa: F811
    client.force_login(billing_world.user)
    journal = Entry.objects.count()
    r = client.post(BILLING["run-finalise"].url(billing_world),
                    {"issue_date": "2024-12-02", "due_days": ["\x00", "0"]})
    assert r.status_code == 400
    errors = _errors(r)
    assert [a for a, _t in errors] == ["due_days"]
    assert errors[0][1].startswith("Days to pay: ")
    billing_world.run.refresh_from_db()
    assert billing_world.run.status == InvoiceRun.Status.READY
    assert Entry.objects.count() == journal


def test_a_run_is_not_finalised_with_a_control_character_in_due_days(client, billing_world):  # noqa: F811
    client.force_login(billing_world.user)
    r = client.post(BILLING["run-finalise"].url(billing_world), {"issue_date": "2024-12-02", "due_days": "3\x0b0"})
    assert r.status_code == 400
    assert [a for a, _t in _errors(r)] == ["due_days"]
    assert "control characters" in _errors(r)[0][1]
    billing_world.run.refresh_from_db()
    assert billing_world.run.status == InvoiceRun.Status.READY


def test_the_same_due_days_once_finalises_the_run(client, billing_world):  # noqa: F811
    """Control: the finalise form goes through with each field once."""
    client.force_login(billing_world.user)
    r = client.post(BILLING["run-finalise"].url(billing_world), {"issue_date": "2024-12-02", "due_days": "0"})
    assert r.status_code == 302
    billing_world.run.refresh_from_db()
    assert billing_world.run.status == InvoiceRun.Status.FINAL


@pytest.mark.parametrize(("name", "data", "field", "label"), [
    ("deposit", {"amount": ["10", "1000"], "method": "cash"}, "dep-amount", "Amount (€)"),
    ("deposit", {"amount": "10", "method": ["cash", "cheque"]}, "dep-method", "Paid by"),
    ("deposit", {"amount": "10", "method": "cash", "reference": "A\tB"}, "dep-reference",
     "Cheque number or card slip"),
    ("deposit", {"amount": "10", "method": "cash", "key": ["k-1", "k-2"]}, "dep-key", "The form's key"),
    ("invoice-payment", {"amount": "1", "method": "cash", "reference": ["1", "2"]}, "pay-reference",
     "Cheque number or card slip"),
    ("refund", {"amount": "1", "method": "cash", "reason": ["Déménagement", "x"]}, "ref-reason", "Reason"),
])
def test_money_forms_refuse_a_field_sent_twice_or_with_control_characters(client, billing_world, name, data,  # noqa: F811
                                                                           field, label):
    client.force_login(billing_world.user)
    journal, payments = Entry.objects.count(), Payment.objects.count()
    r = client.post(BILLING[name].url(billing_world), data)
    assert r.status_code == 400
    errors = dict(_errors(r))
    assert field in errors and errors[field].startswith(label)
    assert (Entry.objects.count(), Payment.objects.count()) == (journal, payments)


def test_runs_refuse_a_month_sent_twice(client, billing_world):  # noqa: F811
    client.force_login(billing_world.user)
    runs = InvoiceRun.objects.count()
    r = client.post(reverse("billing:staff-runs", args=billing_world.sept_args),
                    {"first_month": ["2024-09", "2024-10"], "last_month": "2024-10",
                     "activities": [str(billing_world.activity)], "grouping": "run"})
    assert r.status_code == 400
    assert dict(_errors(r))["first_month"].startswith("First month: ")
    assert InvoiceRun.objects.count() == runs


def test_a_draft_is_not_discarded_with_its_reason_sent_twice(client, billing_world):  # noqa: F811
    client.force_login(billing_world.user)
    r = client.post(BILLING["draft-discard"].url(billing_world), {"reason": ["quotient", "other"]}, follow=True)
    assert "Reason: this field was sent more than once" in r.content.decode()
    assert Invoice.objects.filter(pk=billing_world.draft.pk).exists()


def test_water_outage_and_plan_refuse_repeated_fields(client, water_world):  # noqa: F811
    client.force_login(water_world.user)
    before = list(Instalment.objects.values_list("pk", "state").order_by("pk"))
    r = client.post("/en" + WATER["outage"].url(water_world),
                    {"due_from": ["2024-03-01", "2024-01-01"], "due_until": "2024-06-30", "reason": "Pan\tne"})
    assert r.status_code == 400
    errors = dict(_errors(r))
    assert errors["due_from"].startswith("First due date: ") and "more than once" in errors["due_from"]
    assert errors["reason"].startswith("Reason (shown on the customer's account): ")
    r = client.post("/en" + WATER["plan"].url(water_world), {"count": ["3", "12"], "first_due": "2025-01-10"})
    assert r.status_code == 400
    assert "Monthly instalments: this field was sent more than once" in html.unescape(r.content.decode())
    assert list(Instalment.objects.values_list("pk", "state").order_by("pk")) == before
