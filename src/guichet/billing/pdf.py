"""PDF invoices and credit notes (WeasyPrint, A4, French layout with the legal mentions of a
French municipal invoice: issuer and ordonnateur, public accountant, how and by when to pay,
enforceability and how to contest).

An issued invoice never changes (database triggers), so its PDF is rendered once and kept in
the default file storage under ``billing/pdf/<organisation id>/<number>.pdf``: the background
task (``tasks.render_invoice_pdfs``) renders a run's invoices in batches after finalisation,
and a download of an invoice not rendered yet renders and keeps it on the spot. A draft is
rendered on demand with a "draft" mark and never kept.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from guichet.common.actor import Actor
from guichet.journal.services import journal_append

from .models import Invoice, InvoiceRun
from .present import invoice_doc

log = logging.getLogger(__name__)

LANGUAGE = "fr"  # invoices are legal documents in French, whatever the reader's language


def pdf_name(invoice: Invoice) -> str:
    return f"billing/pdf/{invoice.organisation_id}/{invoice.number}.pdf"


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The PDF bytes of an invoice or credit note (drafts carry a "draft" mark)."""
    from weasyprint import HTML

    with translation.override(LANGUAGE):
        doc = invoice_doc(invoice)
        html = render_to_string("billing/pdf/invoice.html", {"doc": doc, "issuer": doc.issuer})
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()


def is_rendered(invoice: Invoice) -> bool:
    return invoice.status == Invoice.Status.FINAL and default_storage.exists(pdf_name(invoice))


def store_invoice_pdf(invoice: Invoice, *, actor: Actor | None = None) -> bool:
    """Render and keep an issued invoice's PDF, and journal its SHA-256 (the document as sent
    can then be proved unchanged); False when it was already kept (or a draft)."""
    if invoice.status != Invoice.Status.FINAL or not invoice.number:
        return False
    name = pdf_name(invoice)
    if default_storage.exists(name):
        return False
    data = render_invoice_pdf(invoice)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # another worker kept it meanwhile: keep theirs, drop ours (and journal nothing)
        default_storage.delete(saved)
        return False
    with transaction.atomic(durable=True):
        journal_append(actor=actor or Actor.system("billing-pdf"), operation="billing.invoice.pdf", objects=[invoice],
                       details={"number": invoice.number, "sha256": hashlib.sha256(data).hexdigest(),
                                "bytes": len(data)},
                       organisation_id=invoice.organisation_id, now=timezone.now())
    return True


def invoice_pdf(invoice: Invoice) -> bytes:
    """The PDF to download: the kept one, else rendered now (and kept if issued)."""
    if invoice.status == Invoice.Status.FINAL and invoice.number:
        name = pdf_name(invoice)
        if not default_storage.exists(name):
            store_invoice_pdf(invoice)
        with default_storage.open(name, "rb") as f:
            return f.read()
    return render_invoice_pdf(invoice)


def download_name(invoice: Invoice) -> str:
    return f"{invoice.number}.pdf" if invoice.number else f"brouillon-{invoice.pk}.pdf"


def run_pdf_progress(run: InvoiceRun) -> tuple[int, int]:
    """(rendered, issued) PDFs of a finalised run's invoices: what the finance screen shows."""
    numbers = list(Invoice.objects.filter(run=run, status=Invoice.Status.FINAL).values_list("number", flat=True))
    if not numbers:
        return 0, 0
    folder = f"billing/pdf/{run.organisation_id}"
    try:
        _dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError):
        files = []
    kept = set(files)
    return sum(1 for n in numbers if f"{n}.pdf" in kept), len(numbers)
