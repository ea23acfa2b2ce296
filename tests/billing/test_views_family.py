"""The family portal's billing pages: a parent sees its own invoices (HTML and PDF), deposits,
payments and balance, and never another family's."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import translation

from guichet.billing import services

from . import factories as F
from .outputs_data import NOW, billed_town, parent_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The pages in English (``/en/...``): the assertions read the English texts; the French
    catalogue is the lead's, checked by tests/test_i18n.py."""
    with translation.override("en"):
        yield


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def town():
    b = billed_town()
    b.user = parent_of(b.household, "parent@example.org")
    return b


def test_the_account_page_shows_balance_invoices_and_the_deposit(client, town):
    client.force_login(town.user)
    with time_machine.travel(NOW + dt.timedelta(days=2)):
        r = client.get(reverse("billing:family-account", args=[town.org.portal.slug]))
    assert r.status_code == 200
    page = r.content.decode().replace("\u202f", " ").replace("\u00a0", " ")
    assert town.invoice.number in page
    assert "54,00 €" in page  # the invoice
    assert "34,00 €" in page  # what is left to pay: balance and the invoice's state
    assert town.deposit.receipt_number in page and "20,00 €" in page
    assert "Fully deducted from your invoices" in page
    assert reverse("billing:family-invoice-pdf", args=[town.org.portal.slug, town.invoice.pk]) in page
    assert 'aria-current="page"' in page  # the "Invoices" tab of the family menu


def test_an_overdue_invoice_is_said_in_words(client, town):
    client.force_login(town.user)
    with time_machine.travel(NOW + dt.timedelta(days=45)):
        page = client.get(reverse("billing:family-account", args=[town.org.portal.slug])).content.decode()
    assert "Overdue" in page and "past its payment date" in page


def test_a_paid_invoice_says_paid(client, town):
    services.payment_record(invoice=town.invoice, amount_cents=3400, method="cheque", actor=F.ACTOR,
                            now=NOW + dt.timedelta(days=3), idempotency_key="pay-1", reference="123")
    client.force_login(town.user)
    with time_machine.travel(NOW + dt.timedelta(days=4)):
        page = client.get(reverse("billing:family-account", args=[town.org.portal.slug])).content.decode()
    assert "Paid" in page and "Up to date" in page


def test_the_invoice_page_lists_lines_by_month(client, town):
    client.force_login(town.user)
    r = client.get(reverse("billing:family-invoice", args=[town.org.portal.slug, town.invoice.pk]))
    assert r.status_code == 200
    page = r.content.decode().replace("\u202f", " ").replace("\u00a0", " ")
    assert page.index("36,00 €") < page.index("18,00 €")
    assert "How to pay" in page


def test_the_pdf_downloads(client, town, media):
    client.force_login(town.user)
    r = client.get(reverse("billing:family-invoice-pdf", args=[town.org.portal.slug, town.invoice.pk]))
    assert r.status_code == 200
    assert r["Content-Type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    assert f'filename="{town.invoice.number}.pdf"' in r["Content-Disposition"]


def test_a_family_never_reaches_another_familys_invoice(client, town, media):
    other = F.household(town.org, ref="F002")
    intruder = parent_of(other, "other@example.org")
    client.force_login(intruder)
    slug = town.org.portal.slug
    assert client.get(reverse("billing:family-invoice", args=[slug, town.invoice.pk])).status_code == 404
    assert client.get(reverse("billing:family-invoice-pdf", args=[slug, town.invoice.pk])).status_code == 404
    page = client.get(reverse("billing:family-account", args=[slug])).content.decode()
    assert town.invoice.number not in page and town.deposit.receipt_number not in page
    assert "No invoice yet" in page


def test_drafts_are_not_shown_to_families(client):
    org, site, acts = F.town()
    h = F.household(org, ref="D1")
    from guichet.bookings.models import Child

    F.book(Child.objects.get(household=h), F.session(org, site, acts["mercredis"], dt.date(2024, 9, 4)), "journee")
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]])
    draft = run.invoices.get()
    client.force_login(parent_of(h, "d@example.org"))
    assert client.get(reverse("billing:family-invoice", args=[org.portal.slug, draft.pk])).status_code == 404
    assert "No invoice yet" in client.get(reverse("billing:family-account", args=[org.portal.slug])).content.decode()


def test_signed_out_and_unlinked_accounts(client, town):
    url = reverse("billing:family-account", args=[town.org.portal.slug])
    r = client.get(url)
    assert r.status_code == 302 and "login" in r["Location"]
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("nobody", "n@example.org", "x-Secret-123456"))
    assert client.get(url).status_code == 404


def test_an_invoice_fully_credited_shows_as_cancelled_by_its_credit_note(client, town):
    note = services.credit_note_create(invoice=town.invoice, actor=F.ACTOR, now=NOW + dt.timedelta(days=3),
                                       reason="wrong quotient", idempotency_key="cn-full")
    client.force_login(town.user)
    with time_machine.travel(NOW + dt.timedelta(days=4)):
        page = client.get(reverse("billing:family-account", args=[town.org.portal.slug])).content.decode()
        detail = client.get(reverse("billing:family-invoice", args=[town.org.portal.slug, town.invoice.pk]))
    assert f"Cancelled by credit note {note.number}" in page and "⊘" in page
    assert "✓</span> Paid" not in page
    assert f"Cancelled by credit note {note.number}" in detail.content.decode()
