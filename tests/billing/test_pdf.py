"""PDF invoices: rendered with WeasyPrint, read back with pdftotext, amounts and legal mentions
checked; kept once issued; drafts marked; rendered in batches by the background task."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess

import pytest
from django.core.files.storage import default_storage

from guichet.billing import pdf, present, services, tasks
from guichet.billing.models import Invoice
from guichet.bookings.models import Child

from . import factories as F
from .outputs_data import NOW, billed_town

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(shutil.which("pdftotext") is None,
                                                        reason="pdftotext (poppler-utils) is not installed")]


def text_of(data: bytes, tmp_path) -> str:
    path = tmp_path / "x.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True).stdout
    return " ".join(out.replace("\u202f", " ").replace("\u00a0", " ").split())


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "en"
    return tmp_path


@pytest.fixture
def issuers(tmp_path, settings):
    path = tmp_path / "issuers.yaml"
    settings.GUICHET_BILLING_ISSUERS_FILE = str(path)

    def write(slug):
        path.write_text(
            f"{slug}/ville:\n"
            "  name: Ville de Testville\n"
            "  address: [Hôtel de ville, 1 place de la Mairie, 99000 Testville]\n"
            "  ordonnateur: Jeanne Martin, maire\n"
            "  comptable: Service de gestion comptable de Testville\n"
            "  comptable_address: 2 rue du Trésor, 99000 Testville\n"
            "  payfip_id: '012345'\n"
            "  court: le tribunal administratif de Testville\n", encoding="utf-8")
    return write


def test_the_pdf_carries_the_lines_by_month_the_deposit_and_the_amount_to_pay(media, issuers):
    b = billed_town()
    issuers(b.org.portal.slug)
    text = text_of(pdf.invoice_pdf(b.invoice), media)
    assert b.invoice.number in text
    assert b.household.reference in text
    # hand-computed: 4 x 9,00 in September, 2 x 9,00 in October, deposit 20,00 deducted
    assert "36,00 €" in text and "18,00 €" in text
    assert "54,00 €" in text
    assert "− 20,00 €" in text and b.deposit.receipt_number in text
    assert "34,00 €" in text
    # lines grouped per month of service, oldest first, each with its subtotal (dates in French)
    assert text.index("Septembre 2024") < text.index("36,00 €") < text.index("Octobre 2024") < text.index("18,00 €")
    # legal mentions (the PDF is in French whatever the reader's language)
    from django.utils import translation

    with translation.override("fr"):
        assert translation.gettext("Amount to pay") in text
    assert "Jeanne Martin, maire" in text and "Service de gestion comptable de Testville" in text
    assert "L. 252 A" in text and "L. 1617-5" in text and "le tribunal administratif de Testville" in text
    assert "012345" in text
    assert "31 décembre 2024" in text or "December 31, 2024" in text  # due date: issue + 30 days


@pytest.fixture
def english_pdf(monkeypatch):
    monkeypatch.setattr(pdf, "LANGUAGE", "en")  # the English msgids, whatever the French catalogue says


def test_generic_mentions_without_an_issuer_file(media, settings, english_pdf):
    settings.GUICHET_BILLING_ISSUERS_FILE = ""
    b = billed_town()
    text = text_of(pdf.invoice_pdf(b.invoice), media)
    assert b.org.name in text
    assert "ordonnateur of" in text and "competent court" in text
    assert present.issuer_for(b.org).missing  # the finance screens say what is missing


def test_an_issued_pdf_is_kept_and_served_again_unchanged(media):
    b = billed_town()
    assert not pdf.is_rendered(b.invoice)
    first = pdf.invoice_pdf(b.invoice)
    assert pdf.is_rendered(b.invoice)
    assert default_storage.exists(pdf.pdf_name(b.invoice))
    assert pdf.invoice_pdf(b.invoice) == first
    assert pdf.store_invoice_pdf(b.invoice) is False  # already kept: not rendered again
    # the journal proves which document was sent: one entry, with the kept file's SHA-256
    from guichet.journal.models import Entry

    entries = list(Entry.objects.filter(operation="billing.invoice.pdf"))
    assert len(entries) == 1
    assert entries[0].details == {"number": b.invoice.number, "sha256": hashlib.sha256(first).hexdigest(),
                                  "bytes": len(first)}


def test_a_draft_is_marked_and_never_kept(media, english_pdf):
    org, site, acts = F.town()
    h = F.household(org)
    child = Child.objects.get(household=h)
    F.book(child, F.session(org, site, acts["mercredis"], dt.date(2024, 9, 4)), "journee")
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]])
    draft = Invoice.objects.get(run=run)
    text = text_of(pdf.invoice_pdf(draft), media)
    assert "Draft invoice (not issued)" in text
    assert "None" not in text and "Payment slip" not in text  # nothing to pay on a draft
    assert not default_storage.exists(f"billing/pdf/{org.pk}/None.pdf")


def test_a_credit_note_pdf_names_the_invoice_it_corrects(media):
    b = billed_town()
    note = services.credit_note_create(invoice=b.invoice, actor=F.ACTOR, now=NOW + dt.timedelta(days=1),
                                       reason="Absence for illness", idempotency_key="cn-1")
    text = text_of(pdf.invoice_pdf(note), media)
    assert note.number in text and b.invoice.number in text
    assert "Absence for illness" in text
    assert "54,00 €" in text
    assert "L. 252 A" not in text  # a credit note claims nothing


def test_the_background_task_renders_a_run_in_batches(media, settings, monkeypatch):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    org, site, acts = F.town()
    for i in range(5):
        h = F.household(org, ref=f"B{i}")
        F.book(Child.objects.get(household=h), F.session(org, site, acts["mercredis"], dt.date(2024, 9, 4)), "journee")
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 9, 1), [acts["mercredis"]])
    run = services.invoice_run_finalise(run=run, actor=F.ACTOR, now=NOW)
    monkeypatch.setattr(tasks, "PDF_BATCH", 2)
    assert pdf.run_pdf_progress(run) == (0, 5)
    assert tasks.enqueue_run_pdfs(run.pk) == 3  # 2 + 2 + 1
    assert pdf.run_pdf_progress(run) == (5, 5)


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n- b\n", "maps 'portal/organisation'"),
    ("ville: {name: X}\n", "the key is 'portal/organisation'"),
    ("a/b: {address: x}\n", "'name' (the organisation as printed on invoices) is required"),
    ("a/b: {name: X, mayor: Y}\n", "unknown field(s) mayor"),
    ("a/b: {name: X, address: {street: 1}}\n", "address: an address is a text or a list of lines"),
    ("a/b: [\n", "not YAML"),
])
def test_a_bad_issuer_file_is_refused_with_the_entry_at_fault(text, message):
    with pytest.raises(present.IssuerFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        present.parse_issuers(text)


def test_an_unusable_issuer_file_never_breaks_an_invoice(media, settings, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a/b: {name: X, mayor: Y}\n", encoding="utf-8")
    settings.GUICHET_BILLING_ISSUERS_FILE = str(bad)
    b = billed_town()
    issuer = present.issuer_for(b.org)
    assert issuer.name == b.org.name and "unknown field(s) mayor" in issuer.missing[0]
    assert b.invoice.number in text_of(pdf.invoice_pdf(b.invoice), media)  # generic mentions, still a PDF
    settings.GUICHET_BILLING_ISSUERS_FILE = str(tmp_path / "missing.yaml")
    assert "No such file" in present.issuer_for(b.org).missing[0]
