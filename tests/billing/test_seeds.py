"""The two founding notices' catch-ups, end to end, on the demo data (``guichet demo``):

- Saint-Nazaire 2024: childhood billing stopped since March; deposits taken by cheque and cash
  at the Espace famille meanwhile; the unbilled months grouped later in one invoice per family.
- Maisons-Alfort 2022: leisure and catering invoices for September + October sent in December,
  November + December in January (staged); crèche invoices September to November, then
  monthly billing again.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum

from guichet.billing import selectors, services
from guichet.billing.demo import DEMO_DIR, load_billing_demo
from guichet.billing.models import Allocation, BilledItem, Invoice, InvoiceLine, Payment, RunAnomaly
from guichet.bookings.demo import load_bookings_demo
from guichet.bookings.models import Activity, Booking, Household
from guichet.bookings.selectors import billable
from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.demo import seed_paths
from guichet.status.notice import import_notice

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.cli()


def at(*args):
    return dt.datetime(*args, tzinfo=PARIS)


@pytest.fixture
def demo():
    for path in seed_paths():
        import_notice(path.read_text(encoding="utf-8"), path.name, actor=ACTOR)
    load_bookings_demo()
    load_billing_demo()
    return {o.portal.slug: o for o in Organisation.objects.filter(slug="ville", portal__slug__in=[
        "saint-nazaire", "maisons-alfort"]).select_related("portal")}


def run(org, first, last, slugs, *, now, key):
    acts = list(Activity.objects.filter(organisation=org, slug__in=slugs))
    assert len(acts) == len(slugs)
    r = services.invoice_run_create(organisation=org, first_month=first, last_month=last, activities=acts,
                                    actor=ACTOR, now=now, idempotency_key=key)
    return services.invoice_run_execute(run=r, actor=ACTOR, now=now, chunk_size=2)


def billable_bookings(org, first, last, slugs, now):
    qs = Booking.objects.filter(organisation=org, session__date__gte=first, session__date__lte=last,
                                session__activity__slug__in=slugs).select_related("session__activity")
    return {b.pk for b in qs if billable(b, now) and not b.session.closed}


def test_saint_nazaire_months_grouped_with_deposits(demo):
    org = demo["saint-nazaire"]
    # during the outage: deposits by cheque and cash, with receipts, before any invoice
    deposits = Payment.objects.filter(organisation=org, kind="deposit").order_by("received_at")
    assert [d.method for d in deposits] == ["cheque", "cash", "cheque", "cash"]
    assert all(d.receipt_number.startswith("REC-2024-") for d in deposits)
    assert not Invoice.objects.filter(organisation=org).exists()
    le_goff = Household.objects.get(organisation=org, reference="SN-FACT-001")
    assert selectors.household_balance(household=le_goff).balance == -25000  # 150 + 100 euros in advance

    # billing is back in September: March to August, every activity, one invoice per family
    slugs = ["ete", "restauration", "periscolaire", "creche"]
    now = at(2024, 9, 10, 9)
    r = run(org, dt.date(2024, 3, 1), dt.date(2024, 8, 1), slugs, now=now, key="catch-up")
    assert r.status == "ready"
    invoices = list(Invoice.objects.filter(run=r))
    assert len(invoices) == len({i.household_id for i in invoices}) == 4
    for invoice in invoices:
        assert (invoice.first_month, invoice.last_month) == (dt.date(2024, 3, 1), dt.date(2024, 8, 1))
        assert invoice.total_cents == invoice.lines.aggregate(s=Sum("amount_cents"))["s"]
    months = set(InvoiceLine.objects.filter(invoice__run=r).values_list("month", flat=True))
    assert months == {dt.date(2024, m, 1) for m in range(3, 9)}  # each line keeps its own month
    creche = InvoiceLine.objects.filter(invoice__run=r, kind="creche_contract")
    assert creche.count() == 6 and {line.amount_cents for line in creche} == {31200}  # 120 h x 2.60 (PSU)
    # the summer tariff of 1 July: July and August at the new price, earlier items at the old one
    summer = InvoiceLine.objects.filter(invoice__run=r, activity__slug="ete", kind="booked")
    assert {line.tariff_date for line in summer} == {dt.date(2024, 7, 1)}
    # the family without a quotient is billed at the default bracket and listed for review
    guerin = Household.objects.get(organisation=org, reference="SN-FACT-002")
    assert RunAnomaly.objects.filter(run=r, kind="no_quotient", household=guerin).count() == 6
    expected = billable_bookings(org, dt.date(2024, 3, 1), dt.date(2024, 8, 31), slugs, now)
    assert set(BilledItem.objects.filter(organisation=org).values_list("booking_id", flat=True)) == expected

    final = services.invoice_run_finalise(run=r, actor=ACTOR, now=now)
    mine = Invoice.objects.get(run=r, household=le_goff)
    # deposits applied oldest first: April's cheque before June's cash
    allocations = list(Allocation.objects.filter(invoice=mine).order_by("payment__received_at"))
    april, june = deposits.filter(household=le_goff)
    assert allocations[0].payment == april and allocations[0].amount_cents == min(15000, mine.total_cents)
    if mine.total_cents > 15000:
        assert allocations[1].payment == june
    assert final.summary["deposits_applied_cents"] == Allocation.objects.filter(run=final).aggregate(
        s=Sum("amount_cents"))["s"]
    balance = selectors.household_balance(household=le_goff)
    assert balance.balance == mine.total_cents - 25000
    assert sorted(Invoice.objects.filter(run=r).values_list("number", flat=True)) == [
        f"FAC-2024-{n:06d}" for n in range(1, 5)]
    # running the same months again bills nothing
    again = run(org, dt.date(2024, 3, 1), dt.date(2024, 8, 1), slugs, now=now, key="again")
    assert (again.invoices_count, again.items_count) == (0, 0)


def test_maisons_alfort_staged_catch_up_and_creche(demo):
    org = demo["maisons-alfort"]
    leisure = ["mercredis", "vacances", "restauration"]
    # December 2022: September + October for the leisure centres and catering
    december = at(2022, 12, 5, 9)
    first = run(org, dt.date(2022, 9, 1), dt.date(2022, 10, 1), leisure, now=december, key="sep-oct")
    assert set(InvoiceLine.objects.filter(invoice__run=first).values_list("month", flat=True)) == {
        dt.date(2022, 9, 1), dt.date(2022, 10, 1)}
    services.invoice_run_finalise(run=first, actor=ACTOR, now=december)
    # ... and the crèche, September to November
    creche = run(org, dt.date(2022, 9, 1), dt.date(2022, 11, 1), ["creche"], now=december, key="creche-sep-nov")
    lines = list(InvoiceLine.objects.filter(invoice__run=creche).order_by("month"))
    assert [line.month for line in lines] == [dt.date(2022, m, 1) for m in (9, 10, 11)]
    # 3,100 EUR, 2 children: 0.0516 % -> 1.60 EUR an hour x 140 h
    assert {(line.unit_price_cents, line.amount_cents) for line in lines} == {(160, 22400)}
    services.invoice_run_finalise(run=creche, actor=ACTOR, now=december)
    # the deposit taken in November went to the Martin family's first invoice
    martin = Household.objects.get(organisation=org, reference="MA-FACT-001")
    assert Allocation.objects.filter(household=martin, invoice__run=first).aggregate(s=Sum("amount_cents"))["s"] == \
        min(6000, Invoice.objects.get(run=first, household=martin).total_cents)

    # January 2023: November + December; the crèche back to monthly billing (December)
    january = at(2023, 1, 16, 9)
    second = run(org, dt.date(2022, 11, 1), dt.date(2022, 12, 1), leisure, now=january, key="nov-dec")
    assert set(InvoiceLine.objects.filter(invoice__run=second).values_list("month", flat=True)) == {
        dt.date(2022, 11, 1), dt.date(2022, 12, 1)}
    services.invoice_run_finalise(run=second, actor=ACTOR, now=january)
    monthly = run(org, dt.date(2022, 12, 1), dt.date(2022, 12, 1), ["creche"], now=january, key="creche-dec")
    assert list(InvoiceLine.objects.filter(invoice__run=monthly).values_list("month", flat=True)) == [
        dt.date(2022, 12, 1)]
    services.invoice_run_finalise(run=monthly, actor=ACTOR, now=january)

    # every billable booking of September to December billed exactly once, over the two stages
    expected = billable_bookings(org, dt.date(2022, 9, 1), dt.date(2022, 12, 31), leisure, january)
    billed = list(BilledItem.objects.filter(organisation=org).values_list("booking_id", flat=True))
    assert len(billed) == len(set(billed)) and set(billed) == expected
    # a family gets one invoice per stage, and the invoices of a stage are numbered without gaps
    demo_family = Household.objects.get(organisation=org, reference="MA-DEMO-001")
    assert Invoice.objects.filter(household=demo_family, kind="invoice").count() == 2
    series: dict[str, list[int]] = {}
    for number in Invoice.objects.filter(organisation=org).values_list("number", flat=True):
        prefix, _sep, n = number.rpartition("-")
        series.setdefault(prefix, []).append(int(n))
    for values in series.values():  # FAC-2022, FAC-2023 (issued in January), AV-...: each 1..n
        assert sorted(values) == list(range(1, len(values) + 1))
    assert {n[:8] for n in Invoice.objects.filter(organisation=org).values_list("number", flat=True)} == {
        "FAC-2022", "FAC-2023"}


def test_demo_loads_twice_without_change(demo):
    counts = (Booking.objects.count(), Payment.objects.count())
    lines = load_billing_demo()
    assert (Booking.objects.count(), Payment.objects.count()) == counts
    assert any("0 bookings, 0 deposits" in line for line in lines)
    assert all("unchanged" in line for line in lines if "tariffs" in line)
    assert (DEMO_DIR / "saint-nazaire-tariffs.yaml").exists()
