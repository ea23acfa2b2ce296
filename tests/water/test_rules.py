"""The pure water rules: tariffs, proration, bands, VAT once per rate, schedules, regularisation,
SEPA sequence types, IBAN masking."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guichet.water import rules
from guichet.water.demo import TARIFF_2023

D = dt.date
TARIFF = rules.parse_tariff(D(2023, 1, 1), TARIFF_2023)


START, END, YEAR_2024 = D(2023, 11, 20), D(2024, 11, 18), (D(2024, 1, 1), D(2025, 1, 1))


def bill(consumption=118, start=START, end=END, sub=YEAR_2024, sanitation=True, tariffs=(TARIFF,), diameter=15):
    return rules.compute_bill(tariffs=tariffs, diameter=diameter, sanitation=sanitation, subscription_period=sub,
                              consumption_period=(start, end), consumption=consumption)


def test_worked_example_of_the_guide():
    """docs/guide-water.md, "Worked example": Mme Martin's 2024 bill, line by line."""
    b = bill()
    amounts = {(ln.heading, ln.kind): ln.amount for ln in b.lines}
    assert amounts == {
        ("water", "subscription"): 4800, ("water", "consumption"): 17110,
        ("agency_resource", "consumption"): 826, ("agency_pollution", "consumption"): 3894,
        ("sanitation", "subscription"): 3600, ("sanitation", "consumption"): 23364,
        ("agency_networks", "consumption"): 2183,
    }
    assert b.base == {"5.5": 26630, "10": 29147}
    assert b.vat == {"5.5": 1465, "10": 2915}  # 1464.65 and 2914.70 rounded once per rate
    assert (b.total_excl_vat, b.total_vat, b.total) == (55777, 4380, 60157)


def test_vat_is_rounded_once_per_rate_not_per_line():
    # Three lines of 0.10 € at 5.5 %: 0.0055 € each would round to 0.01 € three times (0.03 €);
    # once on the 0.30 € base it is 0.0165 € -> 0.02 €.
    lines = [rules.Line("x", "x", "consumption", D(2024, 1, 1), D(2024, 2, 1), Decimal(1), Decimal("0.10"), 10,
                        Decimal("5.5")) for _ in range(3)]
    assert rules.assemble(lines).vat == {"5.5": 2}


def test_outside_vat_heading_has_no_vat():
    t = rules.parse_tariff(D(2024, 1, 1), {"headings": [{"code": "x", "label": "X", "vat": None, "price": "2"}]})
    b = rules.compute_bill(tariffs=[t], diameter=15, sanitation=False, subscription_period=None,
                           consumption_period=(D(2024, 1, 1), D(2024, 7, 1)), consumption=10)
    assert b.vat == {"none": 0} and b.total == 2000


def test_sanitation_headings_only_for_connected_points():
    codes = {ln.heading for ln in bill(sanitation=False).lines}
    assert codes == {"water", "agency_resource", "agency_pollution"}


@pytest.mark.parametrize(("start", "end", "expected"), [
    (D(2024, 1, 1), D(2025, 1, 1), Decimal(1)),  # a leap year, whole
    (D(2023, 1, 1), D(2024, 1, 1), Decimal(1)),
    (D(2024, 1, 1), D(2024, 7, 1), Decimal(182) / 366),
    (D(2023, 12, 1), D(2024, 2, 1), Decimal(31) / 365 + Decimal(31) / 366),
    (D(2024, 3, 1), D(2024, 3, 1), Decimal(0)),
])
def test_year_fraction(start, end, expected):
    assert rules.year_fraction(start, end) == expected


def test_subscription_prorated_by_days_at_move_in():
    b = rules.compute_bill(tariffs=[TARIFF], diameter=20, sanitation=False,
                           subscription_period=(D(2024, 10, 1), D(2025, 1, 1)), consumption_period=None, consumption=0)
    # 72.00 € a year for a 20 mm meter, 92 days of 366.
    assert [ln.amount for ln in b.lines] == [rules.to_cents(Decimal(7200) * 92 / 366)] == [1810]


def test_unknown_diameter_is_named():
    with pytest.raises(rules.RuleError, match="no subscription for a 25 mm meter"):
        bill(diameter=25)


def test_bands_split_the_volume_with_yearly_thresholds_prorated():
    # 200 m³ over a whole year: 120 at 1.45, 80 at 1.75.
    b = bill(consumption=200, start=D(2024, 1, 1), end=D(2025, 1, 1))
    water = [(ln.quantity, ln.unit_price) for ln in b.lines if ln.heading == "water" and ln.kind == "consumption"]
    assert water == [(Decimal(120), Decimal("1.4500")), (Decimal(80), Decimal("1.7500"))]
    # Over half a year, the first band stops at 60 m³ (182/366 of 120, to the litre).
    half = bill(consumption=100, start=D(2024, 1, 1), end=D(2024, 7, 1))
    water = [ln.quantity for ln in half.lines if ln.heading == "water" and ln.kind == "consumption"]
    assert water == [Decimal("59.672"), Decimal("40.328")]


def test_consumption_split_between_dated_tariffs_by_days():
    t2 = rules.parse_tariff(D(2024, 7, 1), {"headings": [{"code": "water", "label": "Eau", "vat": "5.5",
                                                          "price": "2.0000"}]})
    t1 = rules.parse_tariff(D(2024, 1, 1), {"headings": [{"code": "water", "label": "Eau", "vat": "5.5",
                                                          "price": "1.0000"}]})
    b = rules.compute_bill(tariffs=[t2, t1], diameter=15, sanitation=False, subscription_period=None,
                           consumption_period=(D(2024, 1, 1), D(2025, 1, 1)), consumption=366)
    assert [(ln.quantity, ln.amount) for ln in b.lines] == [(Decimal(182), 18200), (Decimal(184), 36800)]


def test_no_tariff_in_force_is_an_error():
    with pytest.raises(rules.RuleError, match="no tariff in force on 2022-12-01"):
        bill(start=D(2022, 12, 1))


def test_negative_consumption_corrects_an_over_estimate_as_credit():
    b = bill(consumption=-10, sub=None, sanitation=False)
    assert all(ln.amount < 0 for ln in b.lines) and b.total < 0


@pytest.mark.parametrize(("definition", "message"), [
    ({}, "'headings' must be a list"),
    ({"headings": []}, "no heading"),
    ({"headings": [{"label": "x", "price": 1}]}, "'code' is missing"),
    ({"headings": [{"code": "a", "price": 1}]}, "'label' is missing"),
    ({"headings": [{"code": "a", "label": "A", "vat": "7", "price": 1}]}, "VAT '7' is not one of"),
    ({"headings": [{"code": "a", "label": "A", "price": "-1"}]}, "must be a positive number"),
    ({"headings": [{"code": "a", "label": "A", "price": "1.23456"}]}, "more than 4 decimals"),
    ({"headings": [{"code": "a", "label": "A", "bands": [{"up_to": 50, "price": 1}]}]}, "last band must have no"),
    ({"headings": [{"code": "a", "label": "A", "bands": [{"up_to": 50, "price": 1}, {"up_to": 40, "price": 1},
                                                         {"up_to": None, "price": 1}]}]}, "must be given and increase"),
    ({"headings": [{"code": "a", "label": "A"}]}, "needs a 'price'"),
    ({"headings": [{"code": "a", "label": "A", "price": 1}, {"code": "a", "label": "B", "price": 1}]}, "declared twice"),
    ({"headings": [{"code": "a", "label": "A", "subscription": {"DN15": 3}}]}, "not a whole number of mm"),
])
def test_bad_tariff_definitions_are_named(definition, message):
    with pytest.raises(rules.RuleError, match=message):
        rules.parse_tariff(D(2024, 1, 1), definition)


def test_estimate_index_carries_the_average_forward():
    history = [(D(2023, 1, 1), 100), (D(2024, 1, 1), 465)]  # 1 m³ a day
    assert rules.estimate_index(history, D(2024, 1, 31)) == 495
    assert rules.estimate_index(history[:1], D(2024, 1, 31)) is None


def test_schedule_dates_and_amounts():
    assert rules.schedule_due_dates(2024, 10, day=10)[0] == D(2024, 1, 10)
    assert rules.schedule_due_dates(2024, 10, day=10)[-1] == D(2024, 10, 10)
    assert rules.schedule_amounts(60157, 10) == [6016] * 7 + [6015] * 3
    with pytest.raises(rules.RuleError):
        rules.schedule_due_dates(2024, 10, first_month=4)


@given(total=st.integers(min_value=0, max_value=10_000_000), count=st.integers(min_value=1, max_value=12))
def test_schedule_amounts_add_up(total, count):
    parts = rules.schedule_amounts(total, count)
    assert sum(parts) == total and max(parts) - min(parts) <= 1


STATES = st.sampled_from(rules.INSTALMENT_STATES)


@given(bill_total=st.integers(min_value=-100_000, max_value=1_000_000),
       instalments=st.lists(st.tuples(STATES, st.integers(min_value=1, max_value=100_000)), max_size=12))
def test_regularisation_is_bill_minus_what_was_actually_collected(bill_total, instalments):
    r = rules.regularise(bill_total, instalments)
    collected = sum(a for s, a in instalments if s == "collected")
    assert r.collected == collected and r.balance == bill_total - collected
    assert r.is_credit == (bill_total < collected)


@settings(max_examples=200)
@given(consumption=st.integers(min_value=0, max_value=5000),
       start=st.dates(min_value=D(2023, 1, 1), max_value=D(2026, 1, 1)), days=st.integers(min_value=1, max_value=800),
       sanitation=st.booleans())
def test_a_bill_is_the_sum_of_its_lines_plus_vat_and_bands_cover_the_volume(consumption, start, days, sanitation):
    b = bill(consumption=consumption, start=start, end=start + dt.timedelta(days=days), sub=None, sanitation=sanitation)
    assert b.total == sum(ln.amount for ln in b.lines) + sum(b.vat.values())
    for code in ("water", "agency_resource"):
        assert sum(ln.quantity for ln in b.lines if ln.heading == code) == consumption


def test_sequence_types_follow_the_mandate():
    assert rules.sequence_type(one_off=True, used_before=False, last=False) == "OOFF"
    assert rules.sequence_type(one_off=False, used_before=False, last=False) == "FRST"
    assert rules.sequence_type(one_off=False, used_before=True, last=False) == "RCUR"
    assert rules.sequence_type(one_off=False, used_before=True, last=True) == "FNAL"


def test_iban_is_masked():
    assert rules.mask_iban("FR76 3000 6000 0112 3456 7890 189") == "FR76 •••• 0189"
    assert rules.mask_iban("x") == "••••"


def test_plan_amounts():
    assert rules.plan_amounts(31357, 3) == [10453, 10452, 10452]
    with pytest.raises(rules.RuleError):
        rules.plan_amounts(0, 3)
    with pytest.raises(rules.RuleError):
        rules.plan_amounts(100, 13)
    assert rules.add_months(D(2025, 1, 31), 1) == D(2025, 2, 28)


def test_schedule_basis_is_brought_to_a_year_for_a_short_first_bill():
    assert rules.schedule_basis(60157, 364) == 60157
    assert rules.schedule_basis(15000, 92) == rules.to_cents(Decimal(15000) * 365 / 92) == 59511
    assert rules.schedule_basis(-500, 365) == 0
