"""Invoice runs: what is billed and at which price, resumable and idempotent runs, review,
finalisation (gapless numbers, immutability, credit oldest first), cancellation."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from guichet.billing import selectors, services
from guichet.billing.errors import BillingError
from guichet.billing.models import (
    BilledCrecheMonth,
    BilledItem,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    NumberSequence,
    RunAnomaly,
)
from guichet.bookings.models import Session

from . import factories as f

pytestmark = pytest.mark.django_db

OCT, NOV, DEC = dt.date(2024, 10, 1), dt.date(2024, 11, 1), dt.date(2024, 12, 1)
LATER = dt.datetime(2025, 1, 15, 9, tzinfo=dt.UTC)  # every justification window is closed


@pytest.fixture
def town():
    return f.town()


def lines_of(household, **filters):
    return list(InvoiceLine.objects.filter(invoice__household=household, **filters).order_by("month", "kind", "pk"))


def test_what_is_billed_and_what_is_not(town):
    org, site, acts = town
    h = f.household(org)
    f.quotient(h, dt.date(2024, 1, 1), 700)  # bracket B: 9.00 a day in October
    child = h.children.get()
    days = f.wednesdays(2024, 10)  # 2, 9, 16, 23, 30
    s = [f.session(org, site, acts["mercredis"], d) for d in days]
    on_time = dt.datetime(2024, 10, 20, tzinfo=dt.UTC)  # within 8 days of the 16th
    too_late = dt.datetime(2024, 11, 20, tzinfo=dt.UTC)
    billed = [
        f.book(child, s[0]),  # booked, attendance not taken
        f.book(child, s[1], present=True),
    ]
    absent = f.book(child, s[2], present=False)  # unjustified absence: billed + 1.00 penalty
    late = f.book(child, s[3], status="cancelled", late=True)  # late cancellation: billed + 2.00 penalty
    not_billed = [
        f.book(child, s[4], status="cancelled", late=False),  # cancelled in time
    ]
    s2 = [f.session(org, site, acts["mercredis"], d) for d in f.wednesdays(2024, 11)[:3]]
    not_billed.append(f.book(child, s2[0], present=False, justified_at=on_time.replace(month=11, day=8)))
    not_billed.append(f.book(child, s2[1], status="cancelled", late=True, justified_at=on_time.replace(month=11, day=15)))
    justified_too_late = f.book(child, s2[2], present=False, justified_at=too_late + dt.timedelta(days=30))
    closed = f.session(org, site, acts["mercredis"], dt.date(2024, 11, 27))
    Session.objects.filter(pk=closed.pk).update(closed=True)
    not_billed.append(f.book(child, closed))

    run = f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER)

    billed_ids = set(BilledItem.objects.values_list("booking_id", flat=True))
    assert billed_ids == {b.pk for b in [*billed, absent, late, justified_too_late]}
    kinds = {(line.month, line.kind): (line.quantity, line.unit_price_cents, line.amount_cents) for line in lines_of(h)}
    assert kinds == {
        (OCT, "booked"): (Decimal(2), 900, 1800),
        (OCT, "unjustified_absence"): (Decimal(1), 900, 900),
        (OCT, "absence_penalty"): (Decimal(1), 100, 100),
        (OCT, "late_cancellation"): (Decimal(1), 900, 900),
        (OCT, "late_penalty"): (Decimal(1), 200, 200),
        # November's tariff (9.50), no penalty configured from 1 November
        (NOV, "unjustified_absence"): (Decimal(1), 950, 950),
    }
    invoice = Invoice.objects.get(household=h)
    assert invoice.total_cents == 1800 + 900 + 100 + 900 + 200 + 950
    assert (run.status, run.invoices_count, run.items_count) == ("ready", 1, 5)


def test_late_items_wait_until_the_justification_window_closes(town):
    org, site, acts = town
    h = f.household(org)
    f.quotient(h, dt.date(2024, 1, 1), 700)
    child = h.children.get()
    booked = f.book(child, f.session(org, site, acts["mercredis"], dt.date(2024, 11, 20)))
    absent = f.book(child, f.session(org, site, acts["mercredis"], dt.date(2024, 11, 27)), present=False)
    now = dt.datetime(2024, 12, 2, 9, tzinfo=dt.UTC)  # 27 Nov + 8 days = 5 Dec: still open
    first = f.run(org, NOV, NOV, [acts["mercredis"]], now=now)
    assert set(BilledItem.objects.values_list("booking_id", flat=True)) == {booked.pk}
    pending = RunAnomaly.objects.get(run=first)
    assert (pending.kind, pending.count, pending.household_id) == ("justification_pending", 1, h.pk)
    services.invoice_run_finalise(run=first, actor=f.ACTOR, now=now)
    # after the window, running November again bills the absence only, on a new invoice
    second = f.run(org, NOV, NOV, [acts["mercredis"]], now=dt.datetime(2024, 12, 6, 9, tzinfo=dt.UTC))
    assert BilledItem.objects.get(booking=absent).invoice.run == second
    assert second.items_count == 1 and second.anomalies_count == 0


def test_tariff_change_on_the_first_prices_each_item_at_its_own_date(town):
    org, site, acts = town
    h = f.household(org)
    f.quotient(h, dt.date(2024, 1, 1), 300)  # bracket A: 5.00 then 5.50
    child = h.children.get()
    for d in [dt.date(2024, 10, 30), dt.date(2024, 11, 6)]:
        f.book(child, f.session(org, site, acts["mercredis"], d))
    f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER)
    assert [(line.month, line.tariff_date, line.unit_price_cents) for line in lines_of(h)] == [
        (OCT, dt.date(2024, 1, 1), 500), (NOV, dt.date(2024, 11, 1), 550)]


def test_quotient_is_frozen_on_the_first_day_of_the_month(town):
    org, site, acts = town
    h = f.household(org)
    f.quotient(h, dt.date(2024, 1, 1), 300)  # A
    f.quotient(h, dt.date(2024, 10, 15), 1000)  # C from mid-October: applies from November only
    child = h.children.get()
    for d in [dt.date(2024, 10, 16), dt.date(2024, 10, 30), dt.date(2024, 11, 6)]:
        f.book(child, f.session(org, site, acts["mercredis"], d))
    f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER)
    assert [(line.month, line.bracket, line.quantity) for line in lines_of(h)] == [
        (OCT, "A", Decimal(2)), (NOV, "C", Decimal(1))]


def test_non_residents_siblings_and_missing_quotient(town):
    org, site, acts = town
    away = f.household(org, resident=False)
    family = f.household(org, children=3)  # no quotient: default bracket D, reported
    s = f.session(org, site, acts["mercredis"], dt.date(2024, 10, 9))
    f.book(away.children.get(), s)
    for child in family.children.all():
        f.book(child, s)
    run = f.run(org, OCT, OCT, [acts["mercredis"]], now=LATER)
    assert [(line.bracket, line.unit_price_cents) for line in lines_of(away)] == [("", 2500)]
    got = sorted((line.sibling_rank, line.bracket, line.unit_price_cents) for line in lines_of(family))
    assert got == [(1, "D", 1700), (2, "D", 1530), (3, "D", 1360)]  # eldest full price, then -10 %, -20 %
    anomaly = RunAnomaly.objects.get(run=run)
    assert (anomaly.kind, anomaly.household_id, anomaly.count) == ("no_quotient", family.pk, 1)


def test_no_tariff_is_an_anomaly_and_the_item_stays_billable(town):
    org, site, acts = town
    h = f.household(org)
    f.quotient(h, dt.date(2024, 1, 1), 300)
    b = f.book(h.children.get(), f.session(org, site, acts["mercredis"], dt.date(2023, 10, 4)))  # before any tariff
    run = f.run(org, dt.date(2023, 10, 1), dt.date(2023, 10, 1), [acts["mercredis"]], now=LATER)
    assert run.invoices_count == 0 and not BilledItem.objects.filter(booking=b).exists()
    assert RunAnomaly.objects.get(run=run).kind == "no_tariff"


def test_grouping_by_month_and_by_run(town):
    org, site, acts = town
    h = f.household(org)
    f.quotient(h, dt.date(2024, 1, 1), 300)
    child = h.children.get()
    for d in [dt.date(2024, 10, 2), dt.date(2024, 11, 6)]:
        f.book(child, f.session(org, site, acts["mercredis"], d))
        f.book(child, f.session(org, site, acts["cantine"], d), "repas")
    f.run(org, OCT, NOV, [acts["mercredis"], acts["cantine"]], now=LATER, grouping="month")
    invoices = list(Invoice.objects.filter(household=h).order_by("first_month"))
    assert [(i.first_month, i.last_month, i.total_cents) for i in invoices] == [(OCT, OCT, 600), (NOV, NOV, 650)]
    for invoice in invoices:
        assert invoice.total_cents == sum(line.amount_cents for line in invoice.lines.all())


def test_creche_contract_hours_at_the_psu_rate(town):
    org, site, acts = town
    h = f.household(org, children=2)
    baby = h.children.order_by("-birth_date").first()
    f.quotient(h, dt.date(2024, 1, 1), 900, resources=300_000, children=2)  # 3000 x 0.0516 % = 1.55
    services.creche_contract_create(household=h, child=baby, activity=acts["creche"], first_month=dt.date(2024, 9, 1),
                                    last_month=NOV, monthly_hours="151.67", actor=f.ACTOR, now=f.NOW)
    run = f.run(org, dt.date(2024, 9, 1), DEC, [acts["creche"]], now=LATER)
    got = [(line.month, line.quantity, line.unit_price_cents, line.amount_cents) for line in lines_of(h)]
    assert got == [(m, Decimal("151.67"), 155, 23509) for m in (dt.date(2024, 9, 1), OCT, NOV)]  # 235.0885
    assert BilledCrecheMonth.objects.count() == 3 and run.invoices_count == 1
    # re-running the same months bills nothing more
    services.invoice_run_finalise(run=run, actor=f.ACTOR, now=LATER)
    again = f.run(org, dt.date(2024, 9, 1), DEC, [acts["creche"]], now=LATER)
    assert again.invoices_count == 0


def test_creche_without_resources_pays_the_ceiling_and_is_reported(town):
    org, site, acts = town
    h = f.household(org)
    services.creche_contract_create(household=h, child=h.children.get(), activity=acts["creche"], first_month=OCT,
                                    monthly_hours=100, actor=f.ACTOR, now=f.NOW)
    run = f.run(org, OCT, OCT, [acts["creche"]], now=LATER)
    assert [(line.unit_price_cents, line.amount_cents) for line in lines_of(h)] == [(371, 37100)]
    assert RunAnomaly.objects.get(run=run).kind == "no_resources"


def test_open_run_blocks_an_overlapping_one_but_not_others(town):
    org, site, acts = town
    f.run(org, OCT, NOV, [acts["mercredis"]], execute=False, key="first")
    with pytest.raises(BillingError) as e:
        f.run(org, NOV, DEC, [acts["mercredis"], acts["cantine"]], execute=False)
    assert e.value.code == "open_run_overlaps"
    f.run(org, NOV, DEC, [acts["cantine"]], execute=False)  # another activity: fine
    f.run(org, DEC, DEC, [acts["mercredis"]], execute=False)  # another month: fine
    same = f.run(org, OCT, NOV, [acts["mercredis"]], execute=False, key="first")  # same key: same run
    assert InvoiceRun.objects.filter(idempotency_key="first").get() == same


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"first_month": NOV, "last_month": OCT}, "months_reversed"),
    ({"activities": []}, "no_activities"),
    ({"grouping": "week"}, "invalid_grouping"),
    ({"idempotency_key": ""}, "invalid_key"),
])
def test_run_create_refuses_bad_arguments(town, kwargs, code):
    org, site, acts = town
    args = dict(organisation=org, first_month=OCT, last_month=NOV, activities=[acts["mercredis"]], actor=f.ACTOR,
                now=f.NOW, idempotency_key="k")
    with pytest.raises(BillingError) as e:
        services.invoice_run_create(**{**args, **kwargs})
    assert e.value.code == code and InvoiceRun.objects.count() == 0


def test_run_refuses_an_activity_of_another_organisation(town):
    org, site, acts = town
    other_org, _s, other = f.town(tariffs=False)
    with pytest.raises(BillingError) as e:
        services.invoice_run_create(organisation=org, first_month=OCT, last_month=OCT, activities=[other["cantine"]],
                                    actor=f.ACTOR, now=f.NOW, idempotency_key="k")
    assert e.value.code == "other_organisation"


def _population(org, site, acts, households=7):
    out = []
    days = f.wednesdays(2024, 10) + f.wednesdays(2024, 11)
    sessions = [f.session(org, site, acts["mercredis"], d) for d in days]
    for i in range(households):
        h = f.household(org, children=1 + i % 2)
        if i % 3:
            f.quotient(h, dt.date(2024, 1, 1), 200 * i)
        for child in h.children.all():
            for j, s in enumerate(sessions):
                if (i + j) % 3:
                    f.book(child, s, "journee" if j % 2 else "matin-repas")
        out.append(h)
    return out


def test_crash_between_chunks_then_resume_bills_everything_once(town, monkeypatch):
    org, site, acts = town
    _population(org, site, acts)
    reference_run = None
    run = f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER, execute=False)

    class Crash(Exception):
        pass

    def crash(r, cursor):
        raise Crash

    monkeypatch.setattr(services, "after_chunk_hook", crash)
    with pytest.raises(Crash):
        services.invoice_run_execute(run=run, actor=f.ACTOR, now=LATER, chunk_size=2)
    half = InvoiceRun.objects.get(pk=run.pk)
    assert half.status == "running" and half.households_done == 2
    items_after_crash = BilledItem.objects.count()
    assert items_after_crash > 0
    monkeypatch.setattr(services, "after_chunk_hook", None)
    done = services.invoice_run_execute(run=run, actor=f.ACTOR, now=LATER, chunk_size=2)
    assert done.status == "ready" and done.households_done == done.households_total == 7
    assert BilledItem.objects.count() == done.items_count
    assert InvoiceLine.objects.filter(invoice__run=run, kind="booked").count() == len(
        set(InvoiceLine.objects.filter(invoice__run=run, kind="booked").values_list(
            "invoice_id", "month", "child_id", "unit_id", "tariff_date", "unit_price_cents")))
    # compare with the same population billed in one go in another town
    org2, site2, acts2 = f.town()
    _population(org2, site2, acts2)
    reference_run = f.run(org2, OCT, NOV, [acts2["mercredis"]], now=LATER, chunk=1000)
    assert (done.items_count, done.amount_cents, done.invoices_count) == (
        reference_run.items_count, reference_run.amount_cents, reference_run.invoices_count)
    assert services.invoice_total_mismatches(run=done) == []


def test_resume_after_the_staging_table_lost_its_rows(town, monkeypatch):
    """PostgreSQL empties UNLOGGED tables when it recovers from a crash: a resumed run notices
    and classifies again, skipping what was billed already."""
    from django.db import connection

    from guichet.billing import engine

    org, site, acts = town
    _population(org, site, acts)
    run = f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER, execute=False)

    class Crash(Exception):
        pass

    def crash(r, cursor):
        raise Crash

    monkeypatch.setattr(services, "after_chunk_hook", crash)
    with pytest.raises(Crash):
        services.invoice_run_execute(run=run, actor=f.ACTOR, now=LATER, chunk_size=3)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {engine.stage_name(run.pk)}")
    monkeypatch.setattr(services, "after_chunk_hook", None)
    done = services.invoice_run_execute(run=run, actor=f.ACTOR, now=LATER, chunk_size=3)
    org2, site2, acts2 = f.town()
    _population(org2, site2, acts2)
    reference = f.run(org2, OCT, NOV, [acts2["mercredis"]], now=LATER)
    assert (done.items_count, done.amount_cents) == (reference.items_count, reference.amount_cents)
    assert BilledItem.objects.filter(organisation=org).count() == done.items_count
    assert not engine.stage_exists(run.pk)  # dropped once the run is ready


def test_rerun_creates_nothing(town):
    org, site, acts = town
    _population(org, site, acts, households=4)
    first = f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER)
    services.invoice_run_finalise(run=first, actor=f.ACTOR, now=LATER)
    counts = (Invoice.objects.count(), InvoiceLine.objects.count(), BilledItem.objects.count())
    again = f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER)
    assert (again.invoices_count, again.items_count) == (0, 0)
    assert (Invoice.objects.count(), InvoiceLine.objects.count(), BilledItem.objects.count()) == counts
    # executing a finished run again does nothing either
    assert services.invoice_run_execute(run=again, actor=f.ACTOR, now=LATER).items_count == 0


def test_the_database_refuses_a_booking_billed_twice(town):
    org, site, acts = town
    h = f.household(org)
    f.book(h.children.get(), f.session(org, site, acts["mercredis"], dt.date(2024, 10, 2)))
    f.run(org, OCT, OCT, [acts["mercredis"]], now=LATER)
    item = BilledItem.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        BilledItem.objects.create(booking_id=item.booking_id, organisation=org, line=item.line, invoice=item.invoice)


def test_finalise_numbers_gapless_and_final_invoices_are_immutable(town):
    org, site, acts = town
    _population(org, site, acts, households=5)
    run = f.run(org, OCT, OCT, [acts["mercredis"]], now=LATER)
    with pytest.raises(BillingError):
        services.invoice_run_finalise(run=f.run(org, NOV, NOV, [acts["cantine"]], now=LATER, execute=False),
                                      actor=f.ACTOR, now=LATER)
    final = services.invoice_run_finalise(run=run, actor=f.ACTOR, now=LATER, issue_date=dt.date(2025, 1, 15))
    numbers = sorted(Invoice.objects.filter(run=run).values_list("number", flat=True))
    assert numbers == [f"FAC-2025-{n:06d}" for n in range(1, 6)]
    assert final.status == "final" and final.summary["numbers"] == [numbers[0], numbers[-1]]
    second = services.invoice_run_finalise(
        run=f.run(org, NOV, NOV, [acts["mercredis"]], now=LATER), actor=f.ACTOR, now=LATER,
        issue_date=dt.date(2025, 1, 20))
    assert sorted(Invoice.objects.filter(run=second).values_list("number", flat=True)) == [
        f"FAC-2025-{n:06d}" for n in range(6, 11)]
    assert NumberSequence.objects.get(series="FAC", year=2025).last == 10
    # finalising again changes nothing
    assert services.invoice_run_finalise(run=final, actor=f.ACTOR, now=LATER).finalised_at == final.finalised_at
    invoice = Invoice.objects.filter(run=run).first()
    line = invoice.lines.first()
    for attempt in (lambda: Invoice.objects.filter(pk=invoice.pk).update(total_cents=1),
                    lambda: InvoiceLine.objects.filter(pk=line.pk).update(amount_cents=1),
                    lambda: InvoiceLine.objects.create(
                        organisation=org, invoice=invoice, month=OCT, kind="correction", quantity=1,
                        unit_price_cents=1, amount_cents=1)):
        with pytest.raises(IntegrityError, match="cannot be changed"), transaction.atomic():
            attempt()
    with pytest.raises(BillingError) as e:
        services.invoice_run_cancel(run=final, actor=f.ACTOR, now=LATER)
    assert e.value.code == "run_final"


def test_finalise_refuses_an_issue_date_out_of_bounds_and_changes_nothing(town):
    """A typo such as 1900-01-01 would number invoices FAC-1900-..., due in 1900, first in line
    for credit: refused, naming issue_date; so is a date before the month after the run's first
    month, or more than 90 days ahead."""
    org, site, acts = town
    _population(org, site, acts, households=2)
    run = f.run(org, OCT, OCT, [acts["mercredis"]], now=LATER)
    for bad in (dt.date(1900, 1, 1), dt.date(2024, 10, 31), dt.date(2025, 4, 16)):
        with pytest.raises(BillingError) as e:
            services.invoice_run_finalise(run=run, actor=f.ACTOR, now=LATER, issue_date=bad)
        assert e.value.code == "invalid_issue_date" and e.value.field == "issue_date"
        assert bad.strftime("%d/%m/%Y") in e.value.message
    run.refresh_from_db()
    assert run.status == "ready" and run.issue_date is None
    assert not Invoice.objects.filter(run=run, number__isnull=False).exists()
    assert not NumberSequence.objects.exists()
    # the bounds themselves are accepted: the first day of the next month, today + 90 days
    final = services.invoice_run_finalise(run=run, actor=f.ACTOR, now=LATER, issue_date=dt.date(2024, 11, 1))
    assert final.status == "final" and final.issue_date == dt.date(2024, 11, 1)
    later = services.invoice_run_finalise(run=f.run(org, NOV, NOV, [acts["mercredis"]], now=LATER), actor=f.ACTOR,
                                          now=LATER, issue_date=dt.date(2025, 4, 15))
    assert later.status == "final"


def test_finalise_refuses_an_invoice_that_does_not_add_up(town):
    org, site, acts = town
    _population(org, site, acts, households=2)
    run = f.run(org, OCT, OCT, [acts["mercredis"]], now=LATER)
    Invoice.objects.filter(run=run).update(total_cents=1)  # a draft written around the services
    with pytest.raises(BillingError) as e:
        services.invoice_run_finalise(run=run, actor=f.ACTOR, now=LATER)
    assert e.value.code == "total_mismatch"
    assert not Invoice.objects.filter(status="final").exists()


def test_deposits_are_applied_oldest_first_at_finalisation(town):
    org, site, acts = town
    h = f.household(org)
    f.quotient(h, dt.date(2024, 1, 1), 700)
    child = h.children.get()
    for d in f.wednesdays(2024, 10):
        f.book(child, f.session(org, site, acts["mercredis"], d))  # 5 x 9.00 = 45.00
    old = services.deposit_record(household=h, amount_cents=3000, method="cash", actor=f.ACTOR,
                                  now=dt.datetime(2024, 10, 3, tzinfo=dt.UTC), idempotency_key="d1")
    new = services.deposit_record(household=h, amount_cents=3000, method="cheque", actor=f.ACTOR,
                                  now=dt.datetime(2024, 10, 20, tzinfo=dt.UTC), idempotency_key="d2")
    run = services.invoice_run_finalise(run=f.run(org, OCT, OCT, [acts["mercredis"]], now=LATER), actor=f.ACTOR,
                                        now=LATER)
    invoice = Invoice.objects.get(household=h)
    assert selectors.payment_available(old) == 0 and selectors.payment_available(new) == 1500
    assert selectors.invoice_due(invoice) == 0
    assert run.summary["deposits_applied_cents"] == 4500
    balance = selectors.household_balance(household=h)
    assert (balance.balance, balance.available_credit, balance.due) == (-1500, 1500, 0)


def test_cancel_a_run_gives_its_items_back(town):
    org, site, acts = town
    _population(org, site, acts, households=3)
    run = f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER)
    items = run.items_count
    services.invoice_run_cancel(run=run, actor=f.ACTOR, now=LATER)
    assert not Invoice.objects.exists() and not BilledItem.objects.exists()
    again = f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER)
    assert again.items_count == items


def test_discard_one_draft(town):
    org, site, acts = town
    homes = _population(org, site, acts, households=3)
    run = f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER)
    draft = Invoice.objects.get(household=homes[0])
    with pytest.raises(BillingError):
        services.invoice_draft_discard(invoice=draft, actor=f.ACTOR, now=LATER, reason=" ")
    services.invoice_draft_discard(invoice=draft, actor=f.ACTOR, now=LATER, reason="address to check")
    run.refresh_from_db()
    assert run.invoices_count == 2 == Invoice.objects.count()
    assert run.items_count == BilledItem.objects.count()
    assert run.amount_cents == sum(Invoice.objects.values_list("total_cents", flat=True))
    final = services.invoice_run_finalise(run=run, actor=f.ACTOR, now=LATER)
    assert final.status == "final"
    later = f.run(org, OCT, NOV, [acts["mercredis"]], now=LATER)
    assert list(Invoice.objects.filter(run=later).values_list("household_id", flat=True)) == [homes[0].pk]


def test_progress_and_summary(town):
    org, site, acts = town
    _population(org, site, acts, households=5)
    seen = []
    run = services.invoice_run_create(organisation=org, first_month=OCT, last_month=NOV,
                                      activities=[acts["mercredis"]], actor=f.ACTOR, now=LATER, idempotency_key="p")
    assert selectors.run_progress(run).percent == 0
    run = services.invoice_run_execute(run=run, actor=f.ACTOR, now=LATER, chunk_size=2,
                                       progress=lambda r: seen.append(selectors.run_progress(r).households_done))
    assert seen == [2, 4, 5]
    summary = selectors.run_summary(run)
    assert summary.households == summary.invoices == 5
    assert sum(cents for *_x, cents, _n in summary.by_activity_month) == run.amount_cents
    assert [m for _a, m, _c, _n in summary.by_activity_month] == ["2024-10", "2024-11"]
    assert sum(n for *_x, n in summary.by_activity_month) == run.items_count
