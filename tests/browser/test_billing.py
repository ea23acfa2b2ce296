"""Billing in a browser: a parent on a phone reads an invoice, the address it is sent to, and
downloads its PDF; finance reads the same invoice and address on a phone; a counter agent records
a cash deposit and gets a receipt; finance starts a run, sees it ready and issues it. axe checks
the pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from guichet.accounts.models import StaffRole
from guichet.billing.models import InvoiceRun, Payment
from guichet.bookings.models import Activity, Guardian, Household, Unit
from tests.accounts.helpers import enrolled_device
from tests.billing.outputs_data import NOW, billed_town
from tests.browser.test_family import login

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def town(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    b = billed_town()
    User = get_user_model()
    parent = User.objects.create_user("parent", password="correct horse battery")
    Guardian.objects.create(organisation=b.org, household=b.household, user=parent)
    for name, kind in (("guichetier", "counter"), ("compta", "finance")):
        u = User.objects.create_user(name, password="correct horse battery")
        StaffRole.objects.create(user=u, organisation=b.org, kind=kind, granted_at=NOW)
        enrolled_device(u)
    # The names a town really gives (the demo's): long lines that a phone must fit.
    Activity.objects.filter(pk=b.acts["mercredis"].pk).update(name="Accueil périscolaire et restauration")
    Unit.objects.filter(activity=b.acts["mercredis"], code="journee").update(name="Journée complète")
    return b


def test_a_parent_reads_an_invoice_on_a_phone(live_server, phone, axe, town):
    page, base, slug = phone, live_server.url, town.org.portal.slug
    login(page, base, "parent", f"/{slug}/famille/factures/")
    assert page.get_by_role("heading", level=1).inner_text()
    axe(page)
    page.get_by_role("link", name=town.invoice.number).first.click()
    page.wait_for_load_state()
    assert "36,00" in page.content() and "18,00" in page.content()
    assert_fits_the_phone(page)
    assert page.get_by_role("heading", name="Adresse postale").is_visible()
    assert "Pas encore d’adresse postale" in page.locator("section[aria-labelledby=h-address]").inner_text()
    axe(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="PDF").first.click()
    assert download.value.suggested_filename == f"{town.invoice.number}.pdf"


def assert_fits_the_phone(page):
    """No sideways scrolling of the page, and the invoice lines' amounts are not cut off."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    lines = page.locator(".bi-scroll:has(.bi-lines)")
    assert lines.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the invoice lines are wider than the phone"


def test_finance_reads_an_invoice_and_the_address_it_is_sent_to_on_a_phone(live_server, phone, axe, town):
    Household.objects.filter(pk=town.household.pk).update(postal_address="12 rue de la Paix\n44600 Saint-Nazaire")
    page, base = phone, live_server.url
    login(page, base, "compta", f"/manage/billing/{town.org.portal.slug}/{town.org.slug}/invoices/{town.invoice.pk}/")
    assert town.invoice.number in page.get_by_role("heading", level=1).inner_text()
    assert_fits_the_phone(page)
    address = page.locator("address")
    assert address.is_visible() and address.inner_text().splitlines()[1:] == ["12 rue de la Paix", "44600 Saint-Nazaire"]
    axe(page)


def test_a_counter_agent_records_a_cash_deposit(live_server, desktop, axe, town):
    page, base = desktop, live_server.url
    login(page, base, "guichetier", f"/manage/billing/{town.org.portal.slug}/{town.org.slug}/")
    page.locator("#q").fill(town.household.reference)
    page.locator("#q").press("Enter")
    page.wait_for_load_state()
    axe(page)
    page.locator("#dep-amount").fill("12,50")
    page.locator("input[name=method][value=cash]").check()
    page.locator("form.bi-form button[type=submit]").first.click()
    page.wait_for_load_state()
    deposit = Payment.objects.filter(household=town.household).order_by("-pk").first()
    assert deposit.amount_cents == 1250 and deposit.method == "cash"
    assert deposit.receipt_number in page.content()
    axe(page)


def test_finance_starts_a_run_and_issues_it(live_server, desktop, axe, town):
    from guichet.bookings.models import Child
    from tests.billing import factories as F

    F.book(Child.objects.get(household=town.household),
           F.session(town.org, town.site, town.acts["mercredis"], dt.date(2024, 11, 6)), "journee")
    page, base = desktop, live_server.url
    login(page, base, "compta", f"/manage/billing/{town.org.portal.slug}/{town.org.slug}/runs/")
    axe(page)
    page.locator("#first_month").fill("2024-11")
    page.locator("#last_month").fill("2024-11")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    run = InvoiceRun.objects.filter(organisation=town.org).order_by("-pk").first()
    assert run.status == "ready" and run.invoices_count == 1
    axe(page)
    page.locator("form[action$='/finalise/'] button").click()
    page.wait_for_load_state()
    run.refresh_from_db()
    assert run.status == "final"
    from guichet.billing import pdf

    issued = run.invoices.get()
    assert issued.number in page.content() and pdf.is_rendered(issued)  # rendered by the background task
