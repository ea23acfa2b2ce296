from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guichet.common.money import (
    MoneyError,
    euros_to_cents,
    format_euros,
    format_euros_plain,
    parse_euros,
    split_evenly,
    to_cents,
)


@pytest.mark.parametrize(
    ("value", "cents"),
    [("0.5", 1), ("1.49", 1), ("1.5", 2), ("-0.5", -1), ("-1.5", -2), ("2.4999", 2)],
)
def test_to_cents_rounds_half_away_from_zero(value, cents):
    assert to_cents(Decimal(value)) == cents


def test_euros_to_cents():
    assert euros_to_cents(Decimal("12.345")) == 1235
    assert euros_to_cents("0.004") == 0


@given(st.integers(-10**9, 10**9), st.integers(1, 400))
def test_split_evenly_adds_up_and_differs_by_at_most_a_cent(total, parts):
    amounts = split_evenly(total, parts)
    assert sum(amounts) == total
    assert len(amounts) == parts
    assert max(amounts) - min(amounts) <= 1


@pytest.mark.parametrize(
    ("text", "cents"),
    [("12,50", 1250), ("12.5", 1250), ("1 234,56 €", 123456), ("-3", -300), ("7 EUR", 700),
     ("1.234,56", 123456), ("0,05", 5)],
)
def test_parse_euros(text, cents):
    assert parse_euros(text) == cents


@pytest.mark.parametrize("text", ["", "abc", "12,345", "1,2,3", "€", "12 ,5"])
def test_parse_euros_rejects_what_is_not_an_amount(text):
    with pytest.raises(MoneyError):
        parse_euros(text)


def test_format_euros_french_and_plain():
    assert format_euros(123456) == "1\u202f234,56\u00a0€"
    assert format_euros(-5) == "-0,05\u00a0€"
    assert format_euros_plain(-123456) == "-1234.56"
    assert format_euros_plain(7) == "0.07"


@given(st.integers(-10**11, 10**11))
def test_format_and_parse_round_trip(cents):
    assert parse_euros(format_euros(cents)) == cents
