"""PDF invoices: how long the background rendering takes. See docs/benchmarks.md ("Invoice PDFs").

    .venv/bin/python bench/billing_pdfs.py              # 60 invoices of a 4-month catch-up
    .venv/bin/python bench/billing_pdfs.py --invoices 20

Builds a scratch SQLite database in a temporary directory (not measured): a town whose families
have two children booked for Wednesdays and school catering over four months (about 30 lines per
invoice, lines grouped by month, a deposit deducted), bills and finalises them through the
services. Then measures the background task ``render_invoice_pdfs`` (WeasyPrint, one process)
over those invoices in batches of 200 as after a finalisation: seconds per invoice, invoices per
hour, PDF size, peak RSS; and projects the time for 20,000 invoices on one and two workers.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT / "src"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench.rush import LoadSampler, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=60)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="guichet-bench-pdf-")
    os.environ.update({"DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3", "SECRET_KEY": "bench-only",
                       "GUICHET_DATA_DIR": tmp, "DJANGO_SETTINGS_MODULE": "guichet.settings",
                       "GUICHET_FIELD_KEY": base64.b64encode(os.urandom(32)).decode(),  # throw-away field key
                       "GUICHET_TASKS_BACKEND": "django_tasks.backends.immediate.ImmediateBackend"})
    import django

    django.setup()
    import datetime as dt

    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.core.files.storage import default_storage
    from tests.billing import factories as F

    from guichet.billing import services, tasks
    from guichet.billing.models import Invoice
    from guichet.bookings.models import Child

    print({k: v for k, v in machine("postgres://nowhere.invalid/x").items() if not k.startswith("pg")
           and k != "postgresql"})
    setup = time.perf_counter()
    org, site, acts = F.town("bench")
    months = [(2024, 9), (2024, 10), (2024, 11), (2024, 12)]
    for i in range(args.invoices):
        h = F.household(org, children=2, ref=f"B{i:05d}")
        F.quotient(h, dt.date(2024, 1, 1), 300 + 37 * i % 1500)
        for child in Child.objects.filter(household=h):
            for y, m in months:
                for day in F.wednesdays(y, m):
                    F.book(child, F.session(org, site, acts["mercredis"], day), "journee")
                    F.book(child, F.session(org, site, acts["cantine"], day), "repas")
        services.deposit_record(household=h, amount_cents=5000, method="cash", actor=F.ACTOR, now=F.NOW,
                                idempotency_key=f"bench-dep-{i}")
    run = F.run(org, dt.date(2024, 9, 1), dt.date(2024, 12, 1), [acts["mercredis"], acts["cantine"]])
    run = services.invoice_run_finalise(run=run, actor=F.ACTOR, now=F.NOW)
    ids = list(Invoice.objects.filter(run=run).values_list("pk", flat=True))
    lines = run.lines_count
    print(f"setup (not measured): {len(ids)} invoices, {lines} lines ({lines / len(ids):.0f} per invoice), "
          f"{time.perf_counter() - setup:.1f} s")

    with LoadSampler() as sampler:
        start = time.perf_counter()
        batches = tasks.enqueue_invoice_pdfs(ids)  # immediate backend: rendered now, batch by batch
        elapsed = time.perf_counter() - start
    sizes = [default_storage.size(f"billing/pdf/{org.pk}/{n}.pdf")
             for n in Invoice.objects.filter(pk__in=ids).values_list("number", flat=True)]
    per = elapsed / len(ids)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rendered {len(ids)} PDFs in {batches} batch(es): {elapsed:.1f} s, {per * 1000:.0f} ms per invoice, "
          f"{3600 / per:.0f} invoices per hour per worker")
    print(f"PDF size: mean {sum(sizes) / len(sizes) / 1024:.0f} KiB, max {max(sizes) / 1024:.0f} KiB; "
          f"peak RSS {rss:.0f} MiB")
    print(f"projection for 20,000 invoices: {20000 * per / 60:.0f} min with one worker, "
          f"{20000 * per / 120:.0f} min with two")
    print(f"during the measure: {sampler.text()}; uptime: {os.getloadavg()}")


if __name__ == "__main__":
    main()
