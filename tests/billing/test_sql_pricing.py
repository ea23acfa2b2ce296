"""Pricing in SQL (PostgreSQL) is the Python rules' pricing.

On PostgreSQL a run prices its groups by joining them to a price grid that ``tariffs.price_grid``
computed with the Python rules (``price_group``) over their whole finite domain: segments,
units, kinds, residency, quotient classes and sibling ranks. These tests prove the two ends
meet: the quotient classes never straddle a bracket bound (pure, hypothesis), and a run priced
in SQL writes exactly the invoices, lines, ledger rows and anomalies of the same run priced in
Python, over random households (residency, quotients changing mid-range or missing, 1 to 4
children with tied birth dates, every booking state, a tariff change on 1 November, sessions
before any tariff)."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guichet.billing import engine, rules, services
from guichet.billing.models import BilledItem, Invoice, InvoiceLine, RunAnomaly
from guichet.billing.tariffs import TariffBook, max_rank, quotient_classes

from . import factories as f

LATER = dt.datetime(2025, 1, 15, 9, tzinfo=dt.UTC)
DAYS = [dt.date(2023, 12, 6), dt.date(2024, 10, 2), dt.date(2024, 10, 30), dt.date(2024, 11, 6),
        dt.date(2024, 11, 13)]
STATES = [dict(), dict(present=True), dict(present=False), dict(status="cancelled", late=True),
          dict(status="cancelled"), dict(present=False, justified_at=dt.datetime(2024, 10, 5, tzinfo=dt.UTC))]
UNITS = [("mercredis", "journee"), ("mercredis", "matin-repas"), ("cantine", "repas")]


# --- quotient classes (pure) ------------------------------------------------------------------------

bracket_lists = st.lists(
    st.lists(st.integers(0, 3000), min_size=0, max_size=5, unique=True).map(sorted), min_size=1, max_size=3)


@given(lists=bracket_lists, quotient=st.integers(0, 5000))
def test_a_quotient_class_never_straddles_a_bracket_bound(lists, quotient):
    book = TariffBook()
    for i, uppers in enumerate(lists):
        book.brackets[dt.date(2024, 1 + i, 1)] = [
            *(rules.Bracket(f"B{j}", u) for j, u in enumerate(uppers)), rules.Bracket("TOP", None, True)]
    classes = quotient_classes(book)
    assert classes[0] == (-1, -1, None)
    found = [c for c in classes[1:] if c[0] <= quotient <= c[1]]
    assert len(found) == 1  # the classes tile 0..max
    lo, hi, representative = found[0]
    for brackets in book.brackets.values():
        assert rules.bracket_for(quotient, brackets) == rules.bracket_for(representative, brackets)


def test_ranks_above_the_highest_configured_one_price_alike():
    book = TariffBook(reductions={(None, dt.date(2024, 1, 1)): {1: 0, 2: 1000, 3: 2000}})
    assert max_rank(book) == 3
    table = book.reductions[(None, dt.date(2024, 1, 1))]
    assert {rules.sibling_reduction_bp(r, table) for r in range(3, 12)} == {2000}
    assert max_rank(TariffBook()) == 1


# --- a run priced in SQL == the same run priced in Python (PostgreSQL) ---------------------------------

household = st.fixed_dictionaries({
    "resident": st.booleans(),
    "quotients": st.lists(st.tuples(st.sampled_from([dt.date(2024, 1, 1), dt.date(2024, 10, 1), dt.date(2024, 10, 15),
                                                     dt.date(2024, 11, 1)]),
                                    st.one_of(st.integers(0, 2000), st.sampled_from([0, 500, 501, 900, 901, 1400]))),
                          max_size=2, unique_by=lambda q: q[0]),
    "children": st.lists(st.sampled_from([dt.date(2015, 1, 1), dt.date(2016, 6, 1), dt.date(2018, 3, 3)]),
                         min_size=1, max_size=4),
    "bookings": st.lists(st.tuples(st.integers(0, 3), st.integers(0, len(DAYS) - 1), st.integers(0, len(UNITS) - 1),
                                   st.integers(0, len(STATES) - 1)), max_size=12),
})


def snapshot(org):
    invoices = {i.pk: (i.household_id, i.first_month, i.last_month, i.total_cents)
                for i in Invoice.objects.filter(organisation=org)}
    lines = {ln.pk: (invoices[ln.invoice_id], ln.month, ln.kind, ln.activity_id, ln.unit_id, ln.child_id,
                     ln.tariff_date, ln.bracket, ln.sibling_rank, ln.quantity, ln.unit_price_cents, ln.amount_cents)
             for ln in InvoiceLine.objects.filter(organisation=org)}
    items = sorted((b, lines[line]) for b, line in BilledItem.objects.filter(organisation=org)
                   .values_list("booking_id", "line_id"))
    anomalies = sorted(RunAnomaly.objects.filter(organisation=org).values_list("kind", "household_id", "key", "count",
                                                                               "details"), key=repr)
    return sorted(invoices.values()), sorted(lines.values(), key=repr), items, anomalies


@pytest.mark.postgres
@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(households=st.lists(household, min_size=1, max_size=5), grouping=st.sampled_from(["run", "month"]),
       chunk=st.integers(1, 3))
def test_a_run_priced_in_sql_is_the_run_priced_in_python(households, grouping, chunk, monkeypatch):
    org, site, acts = f.town()
    for spec in households:
        h = f.household(org, resident=spec["resident"], children=0)
        for valid_from, q in spec["quotients"]:
            f.quotient(h, valid_from, q)
        children = [h.children.create(organisation=org, first_name="E", birth_date=b) for b in spec["children"]]
        taken = set()
        for child_index, day, unit, state in spec["bookings"]:
            child = children[child_index % len(children)]
            activity, code = UNITS[unit]
            if (child.pk, activity, day) in taken:  # one booking per child, activity and day
                continue
            taken.add((child.pk, activity, day))
            f.book(child, f.session(org, site, acts[activity], DAYS[day]), code, **STATES[state])
    chosen = [acts["mercredis"], acts["cantine"]]
    got = {}
    for sql in (False, True):
        monkeypatch.setattr(engine, "SQL_PRICING", sql)
        run = f.run(org, dt.date(2023, 12, 1), dt.date(2024, 11, 1), chosen, now=LATER, grouping=grouping,
                    chunk=chunk, key=f"k-{sql}")
        got[sql] = (snapshot(org), run.items_count, run.lines_count, run.invoices_count, run.amount_cents,
                    run.anomalies_count, run.summary["by_activity_month"])
        services.invoice_run_cancel(run=run, actor=f.ACTOR, now=LATER)
        RunAnomaly.objects.filter(run=run).delete()
    assert got[True] == got[False]
