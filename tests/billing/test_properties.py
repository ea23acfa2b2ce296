"""Properties over whole sequences of operations (hypothesis): whatever the runs, crashes,
resumes, re-runs, cancellations, finalisations and re-billing credit notes, no booking is ever
billed twice, every invoice adds up, and in the end every billable booking — as the bookings
module itself defines it — is billed exactly once."""

import datetime as dt

import pytest
from django.db.models import Count, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guichet.billing import services
from guichet.billing.models import BilledItem, Invoice, InvoiceLine, InvoiceRun
from guichet.bookings.models import Booking
from guichet.bookings.selectors import billable

from . import factories as f

pytestmark = pytest.mark.django_db

LATER = dt.datetime(2025, 2, 1, 9, tzinfo=dt.UTC)
MONTHS = [dt.date(2024, 9, 1), dt.date(2024, 10, 1), dt.date(2024, 11, 1)]


class Crash(Exception):
    pass


def small_town():
    org, site, acts = f.town()
    states = [dict(), dict(present=True), dict(present=False), dict(status="cancelled", late=True),
              dict(status="cancelled"), dict(present=False, justified_at=dt.datetime(2024, 9, 20, tzinfo=dt.UTC))]
    n = 0
    for i in range(4):
        h = f.household(org, children=1 + i % 2)
        if i != 3:
            f.quotient(h, dt.date(2024, 1, 1), 300 * i)
        for child in h.children.all():
            for month in (9, 10, 11):
                for d in f.wednesdays(2024, month)[:2]:
                    f.book(child, f.session(org, site, acts["mercredis"], d), **states[n % len(states)])
                    f.book(child, f.session(org, site, acts["cantine"], d), "repas", **states[(n + 1) % len(states)])
                    n += 1
    return org, acts


operation = st.one_of(
    st.tuples(st.just("run"), st.integers(0, 2), st.integers(0, 2), st.sampled_from(["mercredis", "cantine", "both"]),
              st.integers(1, 3), st.one_of(st.none(), st.integers(0, 2)), st.sampled_from(["run", "month"])),
    st.tuples(st.just("resume")),
    st.tuples(st.just("finalise")),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("rebill")),
)


def check_invariants(org):
    # each line of booked items has exactly its quantity of billed bookings (none once re-billed)
    per_line = dict(BilledItem.objects.filter(organisation=org).values("line_id").annotate(n=Count("pk")).values_list("line_id", "n"))
    for line in InvoiceLine.objects.filter(kind__in=["booked", "late_cancellation", "unjustified_absence"],
                                           invoice__kind="invoice", organisation=org):
        billed = per_line.get(line.pk, 0)
        credited = line.invoice.credit_notes.filter(rebill=True).exists()
        assert billed == (0 if credited else int(line.quantity)), (line.pk, billed, line.quantity)
    for invoice in Invoice.objects.filter(organisation=org):
        assert invoice.total_cents == (invoice.lines.aggregate(s=Sum("amount_cents"))["s"] or 0)
    numbers = list(Invoice.objects.filter(organisation=org).exclude(number=None).values_list("number", flat=True))
    assert len(numbers) == len(set(numbers))
    series: dict[str, list[int]] = {}
    for number in numbers:  # gapless: 1..n in each series and year
        prefix, _sep, n = number.rpartition("-")
        series.setdefault(prefix, []).append(int(n))
    for values in series.values():
        assert sorted(values) == list(range(1, len(values) + 1))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=8))
def test_no_booking_is_ever_billed_twice(ops, monkeypatch):
    org, acts = small_town()
    key = 0
    for op in ops:
        key += 1
        open_runs = list(InvoiceRun.objects.filter(organisation=org).exclude(status__in=["final", "cancelled"]))
        if op[0] == "run":
            _, a, b, which, chunk, crash_after, grouping = op
            chosen = [acts["mercredis"], acts["cantine"]] if which == "both" else [acts[which]]
            try:
                run = services.invoice_run_create(
                    organisation=org, first_month=MONTHS[min(a, b)], last_month=MONTHS[max(a, b)], activities=chosen,
                    actor=f.ACTOR, now=LATER, idempotency_key=f"k{key}", grouping=grouping)
            except services.BillingError as e:
                assert e.code == "open_run_overlaps"
                continue
            if crash_after is not None:
                seen = []

                def crash(r, cursor, seen=seen, limit=crash_after):
                    seen.append(cursor)
                    if len(seen) > limit:
                        raise Crash

                monkeypatch.setattr(services, "after_chunk_hook", crash)
            try:
                services.invoice_run_execute(run=run, actor=f.ACTOR, now=LATER, chunk_size=chunk)
            except Crash:
                pass
            finally:
                monkeypatch.setattr(services, "after_chunk_hook", None)
        elif op[0] == "resume" and open_runs:
            services.invoice_run_execute(run=open_runs[0], actor=f.ACTOR, now=LATER, chunk_size=2)
        elif op[0] == "finalise":
            for run in open_runs:
                if run.status == "ready":
                    services.invoice_run_finalise(run=run, actor=f.ACTOR, now=LATER)
        elif op[0] == "cancel" and open_runs:
            services.invoice_run_cancel(run=open_runs[-1], actor=f.ACTOR, now=LATER)
        elif op[0] == "rebill":
            invoice = Invoice.objects.filter(organisation=org, kind="invoice", status="final").exclude(
                credit_notes__isnull=False).first()
            if invoice is not None:
                services.credit_note_create(invoice=invoice, actor=f.ACTOR, now=LATER, reason="r",
                                            idempotency_key=f"cn{key}", rebill=True)
        check_invariants(org)
    # finish everything: resume and finalise open runs, then bill all months, twice
    for run in InvoiceRun.objects.filter(organisation=org).exclude(status__in=["final", "cancelled"]):
        services.invoice_run_execute(run=run, actor=f.ACTOR, now=LATER)
        services.invoice_run_finalise(run=run, actor=f.ACTOR, now=LATER)
    for final_key in ("last-1", "last-2"):
        run = services.invoice_run_create(organisation=org, first_month=MONTHS[0], last_month=MONTHS[-1],
                                          activities=[acts["mercredis"], acts["cantine"]], actor=f.ACTOR, now=LATER,
                                          idempotency_key=final_key)
        run = services.invoice_run_execute(run=run, actor=f.ACTOR, now=LATER)
        services.invoice_run_finalise(run=run, actor=f.ACTOR, now=LATER)
    check_invariants(org)
    expected = {b.pk for b in Booking.objects.filter(organisation=org).select_related("session__activity")
                if billable(b, LATER)}
    billed = set(BilledItem.objects.filter(organisation=org).values_list("booking_id", flat=True))
    assert billed == expected
