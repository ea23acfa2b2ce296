"""Finance sees a family's postal address (or that there is none) on its account page, and that
reading is recorded; invoice lines name the activity and unit in the reader's language."""

from __future__ import annotations

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
    return b


def _accesses(town):
    return list(RecordAccess.objects.filter(household_id=town.household.pk).values_list("user", "what"))


# --- the postal address on the staff account page --------------------------------------------------


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


def test_the_page_sent_back_with_a_form_error_shows_it_and_writes_nothing(client, town):
    Household.objects.filter(pk=town.household.pk).update(postal_address=ADDRESS)
    client.force_login(town.counter)
    assert client.get(town.url).status_code == 200  # the opening: recorded
    entries = Entry.objects.count()
    deposit = reverse("billing:staff-deposit", args=[town.org.portal.slug, town.org.slug, town.household.reference])
    r = client.post(deposit, {"amount": "abc", "method": "cash", "key": "k-1"})
    assert r.status_code == 400 and "44600 Saint-Nazaire" in text(r)
    # A refused post changes nothing, the journal included (tests/test_bad_input_views.py).
    assert _accesses(town) == [(town.counter.pk, "billing.household")] and Entry.objects.count() == entries


def test_a_refused_opening_records_nothing_and_shows_no_address(client, town):
    Household.objects.filter(pk=town.household.pk).update(postal_address=ADDRESS)
    other = billed_town("autre", ref="F002")
    outsider = staff(other.org, "compta@autre.example", "finance")
    client.force_login(outsider)
    r = client.get(town.url)
    assert r.status_code in (403, 404) and "Saint-Nazaire" not in text(r)
    assert _accesses(town) == []


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
