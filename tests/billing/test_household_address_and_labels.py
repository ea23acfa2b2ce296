"""Finance sees a family's postal address (or that there is none) on its account page and on each
of its invoices, and that reading is recorded; the family sees the address its invoice is sent
to; the address never reaches the logs. Invoice lines name the activity and unit in the reader's
language."""

from __future__ import annotations

import logging
import re

import pytest
from django.urls import reverse
from django.utils import translation

from guichet.accounts.models import RecordAccess
from guichet.billing import present
from guichet.billing.models import InvoiceLine
from guichet.bookings.models import Activity, Household, Unit
from guichet.journal.models import Entry

from .outputs_data import billed_town, parent_of, staff

pytestmark = pytest.mark.django_db

ADDRESS = "12 rue de la Paix\n44600 Saint-Nazaire"
AWKWARD = "12 rue de la Paix\nBât. B <2e étage>\n44600 Saint-Nazaire"
PRINTED = "12 rue de la Paix<br>Bât. B &lt;2e étage&gt;<br>44600 Saint-Nazaire"  # escaped, one line each


@pytest.fixture(autouse=True)
def english():
    """The staff pages in English (``/en/...``), as the other billing screen tests read them."""
    with translation.override("en"):
        yield


def text(r) -> str:
    return r.content.decode().replace("\u202f", " ").replace("\u00a0", " ")


@pytest.fixture
def town():
    b = billed_town()
    b.finance = staff(b.org, "compta@ville.example", "finance")
    b.counter = staff(b.org, "guichet@ville.example", "counter")
    b.url = reverse("billing:staff-household", args=[b.org.portal.slug, b.org.slug, b.household.reference])
    b.invoice_url = reverse("billing:staff-invoice", args=[b.org.portal.slug, b.org.slug, b.invoice.pk])
    return b


def family_invoice_url(town) -> str:
    """In the active language (the URL carries its prefix)."""
    return reverse("billing:family-invoice", args=[town.org.portal.slug, town.invoice.pk])


def address_section(page: str) -> str:
    """The "Postal address" section of a page, or "" when it has none."""
    m = re.search(r'<section[^>]*aria-labelledby="h-address">(.*?)</section>', page, re.S)
    return m.group(1) if m else ""


def _mentions_address(records) -> list:
    return [rec for rec in records if "Paix" in rec.getMessage() or "44600" in rec.getMessage()]


def _accesses(town):
    return list(RecordAccess.objects.filter(household_id=town.household.pk).values_list("user", "what"))


# --- the postal address on the staff account page ----------------------------------------------------


def test_finance_sees_the_address_as_printed_and_the_reading_is_recorded(client, town):
    Household.objects.filter(pk=town.household.pk).update(postal_address=ADDRESS)
    client.force_login(town.finance)
    page = text(client.get(town.url))
    assert 'id="h-address"' in page
    assert "12 rue de la Paix<br>44600 Saint-Nazaire" in page
    assert "cannot be posted" not in page
    assert _accesses(town) == [(town.finance.pk, "billing.household")]
    entry = Entry.objects.filter(operation="accounts.record.access").last()
    assert entry.details["household"] == town.household.pk and "Paix" not in str(entry.details)


def test_no_address_is_said_in_words(client, town):
    client.force_login(town.counter)
    page = text(client.get(town.url))
    assert "No address on file — invoices cannot be posted." in page and "Invoices are printed with the name only" in page
    with translation.override("fr"):
        page = text(client.get(reverse("billing:staff-household", args=[
            town.org.portal.slug, town.org.slug, town.household.reference])))
    assert "Aucune adresse enregistrée — les factures ne peuvent pas être envoyées par la poste." in page


@pytest.mark.parametrize("page, form, what", [
    ("url", "staff-deposit", "billing.household"), ("invoice_url", "staff-invoice-payment", "billing.invoice")])
def test_the_page_sent_back_with_a_form_error_shows_the_address_and_writes_nothing(client, town, page, form, what):
    Household.objects.filter(pk=town.household.pk).update(postal_address=AWKWARD)
    client.force_login(town.counter)
    assert client.get(getattr(town, page)).status_code == 200  # the opening: recorded
    entries = Entry.objects.count()
    target = town.household.reference if form == "staff-deposit" else town.invoice.pk
    r = client.post(reverse(f"billing:{form}", args=[town.org.portal.slug, town.org.slug, target]),
                    {"amount": "abc", "method": "cash", "key": "k-1"})
    assert r.status_code == 400 and PRINTED in address_section(text(r))
    # A refused post changes nothing, the journal included (tests/test_bad_input_views.py).
    assert _accesses(town) == [(town.counter.pk, what)] and Entry.objects.count() == entries


@pytest.mark.parametrize("page", ["url", "invoice_url"])
def test_a_refused_opening_records_nothing_and_shows_no_address(client, town, page):
    Household.objects.filter(pk=town.household.pk).update(postal_address=ADDRESS)
    other = billed_town("autre", ref="F002")
    outsider = staff(other.org, "compta@autre.example", "finance")
    client.force_login(outsider)
    r = client.get(getattr(town, page))
    assert r.status_code in (403, 404) and "Saint-Nazaire" not in text(r)
    assert _accesses(town) == []


# --- the postal address on the staff invoice page ----------------------------------------------------


def test_finance_sees_the_address_the_invoice_is_sent_to_and_the_reading_is_recorded(client, town, caplog):
    Household.objects.filter(pk=town.household.pk).update(postal_address=AWKWARD)
    client.force_login(town.finance)
    with caplog.at_level(logging.DEBUG):
        r = client.get(town.invoice_url)
    assert r.status_code == 200
    section = address_section(text(r))
    assert "As printed on the family's invoices and credit notes:" in section
    assert f"{town.household.display_name}<br>{PRINTED}" in section  # escaped, one line each
    assert "cannot be posted" not in section
    assert _accesses(town) == [(town.finance.pk, "billing.invoice")]
    entry = Entry.objects.filter(operation="accounts.record.access").last()
    assert entry.details["household"] == town.household.pk and "Paix" not in str(entry.details)
    assert not _mentions_address(caplog.records)


def test_no_address_on_the_invoice_page_is_said_in_words(client, town):
    client.force_login(town.counter)
    section = address_section(text(client.get(town.invoice_url)))
    assert "No address on file — invoices cannot be posted." in section
    assert "Invoices are printed with the name only" in section
    with translation.override("fr"):
        page = text(client.get(reverse("billing:staff-invoice", args=[
            town.org.portal.slug, town.org.slug, town.invoice.pk])))
    assert "Aucune adresse enregistrée — les factures ne peuvent pas être envoyées par la poste." in address_section(page)


# --- the postal address on the family's invoice page -------------------------------------------------


def test_the_family_sees_the_address_its_invoice_is_sent_to(client, town, caplog):
    Household.objects.filter(pk=town.household.pk).update(postal_address=AWKWARD)
    client.force_login(parent_of(town.household, "parent@example.org"))
    with caplog.at_level(logging.DEBUG):
        section = address_section(text(client.get(family_invoice_url(town))))
    assert "The invoice is addressed to:" in section
    assert f"{town.household.display_name}<br>{PRINTED}" in section
    assert "Change the address" in section and reverse("bookings:address", args=[town.org.portal.slug]) in section
    assert not _mentions_address(caplog.records)
    assert _accesses(town) == []  # a family's own visits are not recorded
    with translation.override("fr"):
        section = address_section(text(client.get(family_invoice_url(town))))
    assert "La facture est adressée à :" in section and PRINTED in section


def test_a_family_without_an_address_is_told_and_offered_to_add_one(client, town):
    client.force_login(parent_of(town.household, "parent@example.org"))
    section = address_section(text(client.get(family_invoice_url(town))))
    assert "No postal address yet: your invoices are printed without one." in section
    assert "Add an address" in section and "<address" not in section


# --- invoice line labels in the reader's language ----------------------------------------------------


@pytest.fixture
def named(town):
    Activity.objects.filter(pk=town.acts["mercredis"].pk).update(name="Mercredis loisirs", name_en="Wednesday club")
    Unit.objects.filter(activity=town.acts["mercredis"], code="journee").update(
        name="Journée complète", name_en="Full day")
    return town


def _labels(invoice) -> list[str]:
    lines = InvoiceLine.objects.filter(invoice=invoice).select_related("activity", "unit")
    return [present.line_label(ln).split(" (")[0] for ln in lines]  # without "(bracket B)"


def test_line_labels_follow_the_language(named):
    with translation.override("en"):
        assert set(_labels(named.invoice)) == {"Wednesday club — Full day"}
    with translation.override("fr"):
        assert set(_labels(named.invoice)) == {"Mercredis loisirs — Journée complète"}


def test_a_unit_without_an_english_name_keeps_its_french_one(named):
    Unit.objects.filter(activity=named.acts["mercredis"], code="journee").update(name_en="")
    with translation.override("en"):
        assert set(_labels(named.invoice)) == {"Wednesday club — Journée complète"}


def test_the_family_reads_its_invoice_lines_in_english(client, named):
    client.force_login(parent_of(named.household, "parent@example.org"))
    with translation.override("en"):
        page = text(client.get(reverse("billing:family-invoice", args=[named.org.portal.slug, named.invoice.pk])))
    assert "Wednesday club — Full day" in page and "Journée complète" not in page
    with translation.override("fr"):
        page = text(client.get(reverse("billing:family-invoice", args=[named.org.portal.slug, named.invoice.pk])))
    assert "Mercredis loisirs — Journée complète" in page and "Full day" not in page
