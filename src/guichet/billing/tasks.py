"""Background work for billing (django-tasks): executing an invoice run started from the
finance screen, and rendering the PDFs of issued invoices in batches.

Tasks take ids, never model instances, and log ids and counts only.
"""

from __future__ import annotations

import logging

from django.utils import timezone
from django_tasks import task

from guichet.common.actor import Actor

from . import services
from .errors import BillingError
from .models import Invoice, InvoiceRun

log = logging.getLogger(__name__)

PDF_BATCH = 200


@task()
def execute_run(run_id: int, actor_ref: str, user_id: int | None = None) -> str:
    """Bill a run to the end (resumable: a second execution continues where the first
    stopped). Progress is stored by each chunk; the finance screen polls it."""
    run = InvoiceRun.objects.filter(pk=run_id).first()
    if run is None:
        return "missing"
    actor = Actor(ref=actor_ref, channel="web", user_id=user_id)
    try:
        run = services.invoice_run_execute(run=run, actor=actor, now=timezone.now())
    except BillingError as exc:
        log.info("invoice run #%s not executed: %s", run_id, exc.code)
        return exc.code
    log.info("invoice run #%s executed: %s invoices", run_id, run.invoices_count)
    return run.status


@task()
def render_invoice_pdfs(invoice_ids: list[int]) -> int:
    """Render and keep the PDFs of issued invoices (one batch); returns how many were rendered.
    One that fails is logged and left for the download to render; the others go on."""
    from .pdf import store_invoice_pdf

    done = 0
    for invoice in Invoice.objects.filter(pk__in=list(invoice_ids), status=Invoice.Status.FINAL).select_related(
            "household", "organisation__portal"):
        try:
            done += bool(store_invoice_pdf(invoice))
        except Exception:  # noqa: BLE001 - one bad document must not stop the batch
            log.exception("could not render the PDF of invoice #%s", invoice.pk)
    return done


def enqueue_invoice_pdfs(invoice_ids: list[int]) -> int:
    """Queue the rendering of these invoices' PDFs in batches of ``PDF_BATCH``; returns the
    number of batches."""
    ids = sorted(invoice_ids)
    batches = [ids[i:i + PDF_BATCH] for i in range(0, len(ids), PDF_BATCH)]
    for batch in batches:
        render_invoice_pdfs.enqueue(batch)
    return len(batches)


def enqueue_run_pdfs(run_id: int) -> int:
    """After a run is finalised: queue its invoices' PDFs in batches."""
    ids = list(Invoice.objects.filter(run_id=run_id, status=Invoice.Status.FINAL).values_list("pk", flat=True))
    return enqueue_invoice_pdfs(ids)
