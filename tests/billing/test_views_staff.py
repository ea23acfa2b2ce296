"""The staff billing screens end to end through the client: counter deposits and payments with
their receipts, invoice runs (start, progress, review, finalise, cancel), credit notes, refunds,
roles and organisations."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import translation

from guichet.billing import pdf, present
from guichet.billing.models import Invoice, InvoiceRun, Payment
from guichet.bookings.models import Child
from guichet.common.money import format_euros

from . import factories as F
from .outputs_data import NOW, billed_town, staff

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The pages in English (``/en/...``): the assertions read the English texts; the French
    catalogue is the lead's, checked by tests/test_i18n.py."""
    with translation.override("en"):
        yield


def text(r) -> str:
    return r.content.decode().replace("\u202f", " ").replace("\u00a0", " ")


@pytest.fixture
def immediate(settings, tmp_path):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def town():
    b = billed_town()
    b.counter = staff(b.org, "guichet@ville.example", "counter")
    b.finance = staff(b.org, "compta@ville.example", "finance")
    b.args = [b.org.portal.slug, b.org.slug]
    return b


# --- counter -----------------------------------------------------------------------------------


def test_a_counter_agent_records_a_deposit_and_gets_a_receipt(client, town):
    client.force_login(town.counter)
    url = reverse("billing:staff-deposit", args=[*town.args, town.household.reference])
    form = {"amount": "45,50", "method": "cheque", "reference": "0001234", "key": "form-1"}
    r = client.post(url, form)
    assert r.status_code == 302
    dep = Payment.objects.get(idempotency_key="form-1")
    assert (dep.kind, dep.amount_cents, dep.method, dep.reference) == ("deposit", 4550, "cheque", "0001234")
    assert r["Location"] == reverse("billing:staff-receipt", args=[*town.args, dep.receipt_number])
    receipt = text(client.get(r["Location"]))
    assert dep.receipt_number in receipt and "45,50 €" in receipt and "0001234" in receipt
    # the open invoice (34,00 left) is settled at once; 11,50 stays as credit
    assert "34,00 €" in receipt and "11,50 €" in receipt
    # a double submit (same form key) records nothing more
    assert client.post(url, form).status_code == 302
    assert Payment.objects.filter(household=town.household, kind="deposit").count() == 2  # fixture's + this one


@pytest.mark.parametrize(("form", "field_error"), [
    ({"amount": "abc", "method": "cash"}, "Enter the amount in euros"),
    ({"amount": "0", "method": "cash"}, "more than 0"),
    ({"amount": "10", "method": ""}, "cash, cheque or card"),
    ({"amount": "10", "method": "direct_debit"}, "cash, cheque or card"),
    ({"amount": "10", "method": "cheque", "reference": ""}, "cheque number"),
    ({"amount": "200000", "method": "cash"}, "at most 100,000 euros"),
])
def test_a_bad_deposit_form_changes_nothing(client, town, form, field_error):
    client.force_login(town.counter)
    before = Payment.objects.count()
    r = client.post(reverse("billing:staff-deposit", args=[*town.args, town.household.reference]), form)
    assert r.status_code == 400
    assert field_error in text(r) and "Nothing was recorded" in text(r)
    assert Payment.objects.count() == before


def test_a_counter_agent_records_the_payment_of_an_invoice(client, town):
    client.force_login(town.counter)
    page = text(client.get(reverse("billing:staff-invoice", args=[*town.args, town.invoice.pk])))
    assert 'value="34,00"' in page  # the amount due is offered
    r = client.post(reverse("billing:staff-invoice-payment", args=[*town.args, town.invoice.pk]),
                    {"amount": "34,00", "method": "card", "reference": "TPE 998", "key": "pay-form-1"})
    assert r.status_code == 302
    p = Payment.objects.get(idempotency_key="pay-form-1")
    assert (p.kind, p.invoice_id, p.amount_cents) == ("payment", town.invoice.pk, 3400)
    account = text(client.get(reverse("billing:staff-household", args=[*town.args, town.household.reference])))
    assert "Up to date" in account and "Paid" in account


def test_counter_agents_do_not_reach_finance_screens(client, town):
    client.force_login(town.counter)
    assert client.get(reverse("billing:staff-runs", args=town.args)).status_code == 403
    assert client.get(reverse("billing:staff-run", args=[*town.args, town.run.pk])).status_code == 403
    assert client.get(reverse("billing:staff-credit-note", args=[*town.args, town.invoice.pk])).status_code == 403
    assert client.get(reverse("billing:staff-treasury", args=town.args)).status_code == 403
    r = client.post(reverse("billing:staff-refund", args=[*town.args, town.household.reference]),
                    {"amount": "1", "method": "cash", "reason": "x"})
    assert r.status_code == 403


def test_roles_and_organisations(client, town):
    other = billed_town(ref="Z001")
    client.force_login(town.counter)
    # another town's objects: 404 (never revealed), its screens: 403
    assert client.get(reverse("billing:staff-household", args=[*town.args, "Z001"])).status_code == 404
    assert client.get(reverse("billing:staff-invoice", args=[*town.args, other.invoice.pk])).status_code == 404
    assert client.get(reverse("billing:staff-home", args=[other.org.portal.slug, other.org.slug])).status_code == 403
    # a family account without any role
    from .outputs_data import parent_of

    client.force_login(parent_of(town.household, "parent@example.org"))
    assert client.get(reverse("billing:staff-home", args=town.args)).status_code == 403
    client.logout()
    assert client.get(reverse("billing:staff-home", args=town.args)).status_code == 302


def test_search_finds_a_family(client, town):
    client.force_login(town.counter)
    r = client.get(reverse("billing:staff-home", args=town.args), {"q": "F001"})
    assert r.status_code == 302 and r["Location"].endswith(f"/households/{town.household.reference}/")
    r = client.get(reverse("billing:staff-portal", args=[town.org.portal.slug]))
    assert r.status_code == 302


# --- finance: runs ---------------------------------------------------------------------------------


def _sept_town():
    org, site, acts = F.town()
    for i in range(3):
        h = F.household(org, ref=f"R{i}")
        F.quotient(h, dt.date(2024, 1, 1), 700)
        for d in F.wednesdays(2024, 9):
            F.book(Child.objects.get(household=h), F.session(org, site, acts["mercredis"], d), "journee")
    F.household(org, ref="NOQ")  # no quotient, booked: an anomaly
    F.book(Child.objects.get(household__reference="NOQ", household__organisation=org),
           F.session(org, site, acts["mercredis"], dt.date(2024, 9, 4)), "journee")
    return org, acts, staff(org, "compta@ville.example", "finance")


def test_finance_runs_a_month_reviews_and_finalises(client, immediate):
    org, acts, user = _sept_town()
    args = [org.portal.slug, org.slug]
    client.force_login(user)
    with time_machine.travel(NOW):
        r = client.post(reverse("billing:staff-runs", args=args), {
            "first_month": "2024-09", "last_month": "2024-09", "activities": [acts["mercredis"].pk],
            "grouping": "run", "key": "run-form-1"})
        assert r.status_code == 302
        run = InvoiceRun.objects.get(organisation=org)
        assert run.status == "ready"  # executed by the background task (immediate here)
        page = text(client.get(r["Location"]))
        assert "Drafts to review" in page and "Anomalies to review" in page
        assert "No family quotient" in page and "NOQ" in page
        assert "36,00 €" in page  # 4 x 9,00 per family in bracket B
        assert 'http-equiv="refresh"' not in page  # nothing left to wait for
        r = client.post(reverse("billing:staff-run-finalise", args=[*args, run.pk]),
                        {"issue_date": "2024-12-02", "due_days": "30"})
        assert r.status_code == 302
    run.refresh_from_db()
    assert run.status == "final" and run.due_date == dt.date(2025, 1, 1)
    invoices = list(Invoice.objects.filter(run=run))
    assert len(invoices) == 4 and all(i.number for i in invoices)
    assert all(pdf.is_rendered(i) for i in invoices)  # the PDFs were rendered in the background
    page = text(client.get(reverse("billing:staff-run", args=[*args, run.pk])))
    assert "PDFs ready: 4 of 4" in page and "Invoices issued" in page


def test_a_running_run_refreshes_its_progress(client):
    org, acts, user = _sept_town()
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]], execute=False)
    InvoiceRun.objects.filter(pk=run.pk).update(status="running", households_done=2, households_total=4)
    client.force_login(user)
    page = text(client.get(reverse("billing:staff-run", args=[org.portal.slug, org.slug, run.pk])))
    assert 'http-equiv="refresh"' in page
    assert "2 of 4 households (50 %)" in page and 'value="50"' in page
    assert "Continue the run" in page
    fragment = text(client.get(reverse("billing:staff-run-progress", args=[org.portal.slug, org.slug, run.pk])))
    assert "2 of 4 households" in fragment and "<html" not in fragment


@pytest.mark.parametrize(("form", "message"), [
    ({"first_month": "2024-10", "last_month": "2024-09"}, "The last month is before the first one"),
    ({"first_month": "septembre", "last_month": "2024-09"}, "Enter the first month"),
    ({"first_month": "2024-09", "last_month": "2024-09", "activities": []}, "Choose at least one activity"),
])
def test_a_bad_run_form_starts_nothing(client, form, message):
    org, acts, user = _sept_town()
    client.force_login(user)
    data = {"activities": [acts["mercredis"].pk], "grouping": "run", **form}
    r = client.post(reverse("billing:staff-runs", args=[org.portal.slug, org.slug]), data)
    assert r.status_code == 400 and message in text(r)
    assert not InvoiceRun.objects.filter(organisation=org).exists()


def test_an_overlapping_open_run_is_refused_with_its_number(client, immediate):
    org, acts, user = _sept_town()
    first = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]])
    client.force_login(user)
    r = client.post(reverse("billing:staff-runs", args=[org.portal.slug, org.slug]), {
        "first_month": "2024-08", "last_month": "2024-10", "activities": [acts["mercredis"].pk], "grouping": "run"})
    assert r.status_code == 400 and f"Run {first.pk} covers" in text(r)
    assert InvoiceRun.objects.filter(organisation=org).count() == 1


def test_bad_finalise_input_issues_nothing(client):
    org, acts, user = _sept_town()
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]])
    client.force_login(user)
    url = reverse("billing:staff-run-finalise", args=[org.portal.slug, org.slug, run.pk])
    for form in ({"issue_date": "demain", "due_days": "30"}, {"issue_date": "2024-12-02", "due_days": "400"}):
        r = client.post(url, form)
        assert r.status_code == 400 and "Nothing was issued" in text(r)
    run.refresh_from_db()
    assert run.status == "ready" and not Invoice.objects.filter(run=run, number__isnull=False).exists()


def test_finalise_issue_date_typed_the_french_way_or_refused_with_the_reason(client):
    org, acts, user = _sept_town()
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]])
    client.force_login(user)
    url = reverse("billing:staff-run-finalise", args=[org.portal.slug, org.slug, run.pk])
    r = client.post(url, {"issue_date": "1900-01-01", "due_days": "30"})
    assert r.status_code == 400 and "Nothing was issued" in text(r)
    assert "The issue date 01/01/1900 is not accepted" in text(r) and "01/10/2024" in text(r)
    r = client.post(url, {"issue_date": "24 novembre", "due_days": "30"})
    assert r.status_code == 400 and "as DD/MM/YYYY (for example 24/11/2026)" in text(r)
    run.refresh_from_db()
    assert run.status == "ready" and not Invoice.objects.filter(run=run, number__isnull=False).exists()
    with time_machine.travel(NOW):
        r = client.post(url, {"issue_date": "02/12/2024", "due_days": "30"})
    assert r.status_code == 302
    run.refresh_from_db()
    assert run.status == "final" and run.issue_date == dt.date(2024, 12, 2) and run.due_date == dt.date(2025, 1, 1)


def test_cancel_a_run_and_discard_one_draft(client):
    org, acts, user = _sept_town()
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]])
    client.force_login(user)
    args = [org.portal.slug, org.slug]
    draft = Invoice.objects.get(run=run, household__reference="NOQ")
    assert client.post(reverse("billing:staff-draft-discard", args=[*args, draft.pk]), {"reason": ""}).status_code == 302
    assert Invoice.objects.filter(pk=draft.pk).exists()  # no reason: refused, kept
    client.post(reverse("billing:staff-draft-discard", args=[*args, draft.pk]), {"reason": "quotient to update"})
    assert not Invoice.objects.filter(pk=draft.pk).exists()
    left = Invoice.objects.filter(run=run).count()
    page = text(client.get(reverse("billing:staff-run", args=[*args, run.pk])))
    assert f"I confirm that the {left} drafts of this run will be deleted." in page and 'name="confirm"' in page
    # One click without ticking the box deletes nothing.
    r = client.post(reverse("billing:staff-run-cancel", args=[*args, run.pk]), follow=True)
    assert "Nothing was cancelled: tick the box" in text(r)
    run.refresh_from_db()
    assert run.status == "ready" and Invoice.objects.filter(run=run).count() == left
    amount = format_euros(run.amount_cents).replace("\u202f", " ").replace("\u00a0", " ")
    r = client.post(reverse("billing:staff-run-cancel", args=[*args, run.pk]), {"confirm": "yes"}, follow=True)
    run.refresh_from_db()
    assert run.status == "cancelled" and not Invoice.objects.filter(run=run).exists()
    page = text(r)
    assert f"its {left} drafts (" in page and "were deleted; their items can be billed by another run" in page
    assert "Cancelled on" in page and f"({amount}) were deleted" in page and f"{left} invoices ·" not in page
    runs = text(client.get(reverse("billing:staff-runs", args=args)))
    assert "drafts deleted" in runs
    with translation.override("fr"):
        assert present.run_status_label("cancelled") == "Annulée"


def test_a_draft_invoice_owes_nothing_yet_and_says_so(client):
    org, acts, user = _sept_town()
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]])
    draft = Invoice.objects.filter(run=run).first()
    client.force_login(user)
    page = text(client.get(reverse("billing:staff-invoice", args=[org.portal.slug, org.slug, draft.pk])))
    assert "draft, not issued yet" in page and "Draft, not issued yet" in page
    assert "Still to pay</dt><dd>0,00 €" not in page


# --- finance: credit notes and refunds -------------------------------------------------------------


def test_finance_issues_a_partial_credit_note(client, town, immediate):
    client.force_login(town.finance)
    url = reverse("billing:staff-credit-note", args=[*town.args, town.invoice.pk])
    line = town.invoice.lines.order_by("month").first()
    r = client.post(url, {"scope": "lines", f"line-{line.pk}": "9,00", "reason": "Sortie annulée", "key": "cn-form"})
    assert r.status_code == 302
    note = Invoice.objects.get(kind="credit_note", corrects=town.invoice)
    assert note.total_cents == 900 and note.number.startswith("AV-")
    page = text(client.get(r["Location"]))
    assert note.number in page and town.invoice.number in page and "Sortie annulée" in page


@pytest.mark.parametrize(("form", "message"), [
    ({"scope": "all", "reason": ""}, "Give the reason"),
    ({"scope": "lines", "reason": "x"}, "at least one line"),
    ({"scope": "lines", "reason": "x", "LINE": "abc"}, "enter an amount in euros"),
    ({"scope": "lines", "reason": "x", "LINE": "999,00"}, "credit from 0.01 to"),
])
def test_a_bad_credit_note_issues_nothing(client, town, form, message):
    client.force_login(town.finance)
    line = town.invoice.lines.order_by("month").first()
    if "LINE" in form:
        form[f"line-{line.pk}"] = form.pop("LINE")
    r = client.post(reverse("billing:staff-credit-note", args=[*town.args, town.invoice.pk]), form)
    assert r.status_code == 400 and message in text(r)
    assert not Invoice.objects.filter(kind="credit_note").exists()


def test_finance_refunds_available_credit_and_no_more(client, town):
    client.force_login(town.finance)
    url = reverse("billing:staff-refund", args=[*town.args, town.household.reference])
    from guichet.billing import services

    services.deposit_record(household=town.household, amount_cents=5000, method="cash", actor=F.ACTOR,
                            now=NOW + dt.timedelta(days=1), idempotency_key="dep-more")  # 34 settled, 16 left
    r = client.post(url, {"amount": "20,00", "method": "cash", "reason": "Déménagement", "key": "rf-1"})
    assert r.status_code == 400 and "Only 16,00" in text(r)
    r = client.post(url, {"amount": "16,00", "method": "transfer", "reason": "Déménagement", "key": "rf-2"})
    assert r.status_code == 302
    assert Payment.objects.get(idempotency_key="rf-2").kind == "refund"


def test_drafts_are_for_finance_only(client):
    org, acts, user = _sept_town()
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]])
    draft = Invoice.objects.filter(run=run).first()
    args = [org.portal.slug, org.slug, draft.pk]
    client.force_login(staff(org, "guichet@ville.example", "counter"))
    assert client.get(reverse("billing:staff-invoice", args=args)).status_code == 404
    client.force_login(user)
    page = text(client.get(reverse("billing:staff-invoice", args=args)))
    assert "Draft invoice (not issued)" in page and "Take this draft out of the run" in page
    assert client.get(reverse("billing:staff-credit-note", args=args)).status_code == 404  # not issued yet
    r = client.get(reverse("billing:staff-invoice-pdf", args=args))
    assert r.status_code == 200 and r.content.startswith(b"%PDF")


def test_a_queued_execution_of_a_cancelled_run_does_nothing(client):
    from guichet.billing import services, tasks

    org, acts, user = _sept_town()
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]], execute=False)
    services.invoice_run_cancel(run=run, actor=F.ACTOR, now=NOW)
    assert tasks.execute_run.call(run.pk, "user:1", None) == "run_closed"
    assert tasks.execute_run.call(10**9, "user:1", None) == "missing"
    assert not Invoice.objects.filter(run=run).exists()
