"""The pure billing rules: exhaustive cases and properties (hypothesis)."""

import datetime as dt
from decimal import Decimal
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guichet.billing import rules
from guichet.billing.tariffs import TariffBook, price_group

# --- what is billable -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "late", "present", "justified", "expected"),
    [
        ("booked", False, None, False, "booked"),  # booked, attendance not taken
        ("booked", False, True, False, "booked"),  # attended
        ("booked", False, True, True, "booked"),  # attended (a justification changes nothing)
        ("booked", False, False, False, "unjustified_absence"),
        ("booked", False, False, True, None),  # absent with a certificate in time
        ("cancelled", False, None, False, None),  # cancelled in time
        ("cancelled", True, None, False, "late_cancellation"),
        ("cancelled", True, None, True, None),  # late but justified
    ],
)
def test_classify(status, late, present, justified, expected):
    assert rules.classify(status=status, late=late, present=present, justified=justified) == expected


def test_closed_session_never_billed():
    for status, late, present, justified in product(("booked", "cancelled"), (True, False), (None, True, False),
                                                   (True, False)):
        assert rules.classify(status=status, late=late, present=present, justified=justified, closed=True) is None


def test_only_late_and_absent_wait_for_the_justification_window():
    assert rules.needs_justification_window("late_cancellation")
    assert rules.needs_justification_window("unjustified_absence")
    assert not rules.needs_justification_window("booked")


# --- months -----------------------------------------------------------------------------------


def test_months_cross_the_year():
    assert rules.months(dt.date(2022, 11, 1), dt.date(2023, 2, 1)) == [
        dt.date(2022, 11, 1), dt.date(2022, 12, 1), dt.date(2023, 1, 1), dt.date(2023, 2, 1)]
    assert rules.months(dt.date(2023, 2, 1), dt.date(2022, 11, 1)) == []


@pytest.mark.parametrize("text", ["2024-13", "2024", "sept", "", "2024-9-1"])
def test_parse_month_refuses_with_a_clear_message(text):
    with pytest.raises(ValueError, match="not a month"):
        rules.parse_month(text)


def test_parse_month():
    assert rules.parse_month(" 2024-09 ") == dt.date(2024, 9, 1)


# --- dated values, brackets, siblings ------------------------------------------------------------


def test_in_force_takes_the_latest_date_on_or_before():
    dates = [dt.date(2024, 1, 1), dt.date(2024, 9, 1)]
    assert rules.in_force(dates, dt.date(2023, 12, 31)) is None
    assert rules.in_force(dates, dt.date(2024, 1, 1)) == dt.date(2024, 1, 1)
    assert rules.in_force(dates, dt.date(2024, 8, 31)) == dt.date(2024, 1, 1)
    assert rules.in_force(dates, dt.date(2024, 9, 1)) == dt.date(2024, 9, 1)


BRACKETS = [rules.Bracket("A", 500), rules.Bracket("B", 900), rules.Bracket("C", None, is_default=True)]


@pytest.mark.parametrize(("quotient", "code"), [(0, "A"), (500, "A"), (501, "B"), (900, "B"), (901, "C"),
                                                (99999, "C")])
def test_bracket_bounds_are_inclusive(quotient, code):
    assert rules.bracket_for(quotient, BRACKETS) == (code, False)


def test_no_quotient_takes_the_default_bracket_and_says_so():
    assert rules.bracket_for(None, BRACKETS) == ("C", True)
    assert rules.bracket_for(None, [rules.Bracket("A", 10), rules.Bracket("Z", None)]) == ("Z", True)


def test_sibling_ranks_eldest_first_ties_by_id():
    ranks = rules.sibling_ranks([(7, dt.date(2016, 1, 1)), (3, dt.date(2014, 5, 1)), (5, dt.date(2016, 1, 1))])
    assert ranks == {3: 1, 5: 2, 7: 3}


def test_sibling_reduction_highest_rank_applies_above():
    reductions = {2: 1000, 3: 2000}
    assert [rules.sibling_reduction_bp(r, reductions) for r in (1, 2, 3, 4, 9)] == [0, 1000, 2000, 2000, 2000]
    assert rules.sibling_reduction_bp(5, {}) == 0


def test_reduced_price_rounds_half_up_once():
    assert rules.reduced_price(905, 1000) == 815  # 814.5 -> 815
    assert rules.reduced_price(900, 0) == 900
    assert rules.reduced_price(900, 10_000) == 0
    with pytest.raises(ValueError):
        rules.reduced_price(900, 10_001)


def test_line_amount():
    assert rules.line_amount(3, 450) == 1350
    assert rules.line_amount(Decimal("151.67"), 186) == 28211  # 28210.62 -> 28211
    assert rules.line_amount(Decimal("0.5"), 1) == 1  # half a cent rounds up


# --- crèche PSU -----------------------------------------------------------------------------------

PSU_2024 = rules.Psu(80_100, 600_000, {1: 619, 2: 516, 3: 413, 4: 310, 8: 206})


def test_psu_hourly_rate_cnaf_example():
    # 3,000 EUR a month, one child: 3000 x 0.0619 % = 1.857 EUR -> 1.86 EUR an hour
    assert rules.psu_hourly_rate(300_000, 1, PSU_2024) == (186, False)
    # two children: 3000 x 0.0516 % = 1.548 -> 1.55
    assert rules.psu_hourly_rate(300_000, 2, PSU_2024) == (155, False)


def test_psu_floor_ceiling_and_missing_resources():
    assert rules.psu_hourly_rate(10_000, 1, PSU_2024) == rules.psu_hourly_rate(80_100, 1, PSU_2024)  # floor
    assert rules.psu_hourly_rate(2_000_000, 1, PSU_2024) == (371, False)  # ceiling: 6000 x 0.0619 % = 3.714
    assert rules.psu_hourly_rate(None, 1, PSU_2024) == (371, True)  # no resources: the ceiling (CNAF rule)


def test_effort_rate_by_children():
    assert [rules.effort_rate(n, PSU_2024.effort_rates) for n in (0, 1, 2, 3, 4, 7, 8, 12)] == [
        619, 619, 516, 413, 310, 310, 206, 206]


# --- properties -------------------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=10_000_000)


@given(st.lists(amounts, max_size=50))
def test_total_is_exactly_the_sum_of_lines(line_amounts):
    assert rules.invoice_total(line_amounts) == sum(line_amounts)


@given(st.lists(st.tuples(st.integers(1, 10_000), st.integers(0, 100_000)), max_size=30))
def test_line_amounts_add_up_to_a_whole_number_of_cents(lines):
    # each line is rounded once; the total is their exact sum (no second rounding)
    total = rules.invoice_total(rules.line_amount(q, p) for q, p in lines)
    assert total == sum(q * p for q, p in lines)  # integer quantities: no rounding at all


@given(st.lists(st.integers(0, 50_000), max_size=8), st.lists(st.integers(0, 50_000), max_size=8))
def test_allocate_oldest_first_never_overspends(credits, debts):
    pairs = rules.allocate_oldest_first(list(enumerate(credits)), [(f"i{j}", d) for j, d in enumerate(debts)])
    used: dict = {}
    paid: dict = {}
    for source, target, amount in pairs:
        assert amount > 0
        used[source] = used.get(source, 0) + amount
        paid[target] = paid.get(target, 0) + amount
    assert all(used[s] <= credits[s] for s in used)
    assert all(paid[f"i{j}"] <= debts[j] for j in range(len(debts)) if f"i{j}" in paid)
    assert sum(used.values()) == min(sum(credits), sum(debts))
    # oldest credit first: a credit is used only once every older credit is spent
    for s in used:
        assert all(used.get(t, 0) == credits[t] for t in range(s))


@given(st.integers(0, 2_000_000), st.integers(1, 12))
def test_psu_rate_is_monotonic_in_resources(resources, children):
    low, _ = rules.psu_hourly_rate(resources, children, PSU_2024)
    high, _ = rules.psu_hourly_rate(resources + 10_000, children, PSU_2024)
    assert 0 < low <= high <= rules.psu_hourly_rate(None, children, PSU_2024)[0]


def _book():
    book = TariffBook()
    book.tariff_dates = {1: [dt.date(2024, 1, 1), dt.date(2024, 11, 1)]}
    book.penalties = {(1, dt.date(2024, 1, 1)): (200, 100), (1, dt.date(2024, 11, 1)): (0, 0)}
    for d, base in ((dt.date(2024, 1, 1), 900), (dt.date(2024, 11, 1), 950)):
        book.prices[(1, d, 10, True, "A")] = base - 400
        book.prices[(1, d, 10, True, "B")] = base
        book.prices[(1, d, 10, False, "")] = base * 2
    book.bracket_dates = [dt.date(2024, 1, 1)]
    book.brackets = {dt.date(2024, 1, 1): [rules.Bracket("A", 500), rules.Bracket("B", None)]}
    book.reduction_dates = {None: [dt.date(2024, 1, 1)]}
    book.reductions = {(None, dt.date(2024, 1, 1)): {2: 1000}}
    return book


def test_price_group_each_item_at_the_rate_of_its_own_date():
    book = _book()
    kw = dict(activity_id=1, unit_id=10, kind="booked", resident=True, quotient=700, rank=1)
    assert price_group(book, day=dt.date(2024, 10, 31), **kw).unit_price_cents == 900
    assert price_group(book, day=dt.date(2024, 11, 1), **kw).unit_price_cents == 950
    assert price_group(book, day=dt.date(2023, 12, 31), **kw) is None  # no tariff yet


def test_price_group_brackets_non_residents_siblings_penalties():
    book = _book()
    day = dt.date(2024, 10, 2)
    kw = dict(activity_id=1, unit_id=10, day=day)
    assert price_group(book, kind="booked", resident=True, quotient=400, rank=1, **kw).unit_price_cents == 500
    none = price_group(book, kind="booked", resident=True, quotient=None, rank=1, **kw)
    assert (none.bracket, none.defaulted) == ("B", True)
    away = price_group(book, kind="booked", resident=False, quotient=None, rank=1, **kw)
    assert (away.unit_price_cents, away.bracket, away.defaulted) == (1800, "", False)
    assert price_group(book, kind="booked", resident=True, quotient=700, rank=2, **kw).unit_price_cents == 810
    late = price_group(book, kind="late_cancellation", resident=True, quotient=700, rank=1, **kw)
    assert late.penalty_cents == 200
    assert price_group(book, kind="unjustified_absence", resident=True, quotient=700, rank=1, **kw).penalty_cents == 100
    assert price_group(book, kind="booked", resident=True, quotient=700, rank=1, **kw).penalty_cents == 0
    assert price_group(book, kind="booked", resident=True, quotient=700, rank=1, activity_id=1, unit_id=99,
                       day=day) is None
