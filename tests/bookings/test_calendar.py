"""School calendars by zone: holiday periods, Wednesdays in term, holiday weekdays, public
holidays, closures, and a clear error where the shipped data stops."""

import datetime as dt

import pytest
from django.utils import translation

from guichet.bookings.calendar import (
    CalendarError,
    Holiday,
    coverage,
    holiday_of,
    holiday_weekdays,
    is_public_holiday,
    is_school_holiday,
    is_working_day,
    public_holidays,
    school_holidays,
    term_weekdays,
)

D = dt.date
WEDNESDAY = 2


def test_summer_2024_zone_b_saint_nazaire():
    found = school_holidays("B", D(2024, 7, 1), D(2024, 9, 30))
    assert found == [Holiday("Vacances d'été", D(2024, 7, 6), D(2024, 9, 1))]
    summer = found[0]
    assert D(2024, 7, 15) in summer and D(2024, 9, 2) not in summer
    assert summer.days()[0] == D(2024, 7, 6) and len(summer.days()) == 58


def test_toussaint_2022_zone_c_maisons_alfort():
    found = school_holidays("C", D(2022, 10, 1), D(2022, 11, 30))
    assert found == [Holiday("Vacances de la Toussaint", D(2022, 10, 22), D(2022, 11, 6))]


def test_periods_are_whole_even_when_the_range_cuts_them():
    # Christmas 2022 crosses the year boundary and is returned whole.
    assert school_holidays("C", D(2023, 1, 1), D(2023, 1, 1)) == [
        Holiday("Vacances de Noël", D(2022, 12, 17), D(2023, 1, 2))
    ]
    assert holiday_of("C", D(2022, 12, 25)).first_day == D(2022, 12, 17)
    assert holiday_of("C", D(2023, 1, 3)) is None


def test_winter_holidays_differ_by_zone():
    winter = {
        zone: school_holidays(zone, D(2023, 2, 1), D(2023, 3, 10))[0] for zone in ("A", "B", "C")
    }
    assert (winter["A"].first_day, winter["A"].last_day) == (D(2023, 2, 4), D(2023, 2, 19))
    assert (winter["B"].first_day, winter["B"].last_day) == (D(2023, 2, 11), D(2023, 2, 26))
    assert (winter["C"].first_day, winter["C"].last_day) == (D(2023, 2, 18), D(2023, 3, 5))
    assert all(h.name == "Vacances d'hiver" for h in winter.values())
    assert is_school_holiday("c", D(2023, 3, 1)) and not is_school_holiday("zone B", D(2023, 3, 1))


def test_wednesdays_in_term_autumn_2022_zone_c():
    got = term_weekdays("C", WEDNESDAY, D(2022, 9, 1), D(2022, 12, 31))
    assert D(2022, 10, 26) not in got and D(2022, 11, 2) not in got  # Toussaint
    assert D(2022, 12, 21) not in got and D(2022, 12, 28) not in got  # Christmas
    assert got == [
        D(2022, 9, 7), D(2022, 9, 14), D(2022, 9, 21), D(2022, 9, 28),
        D(2022, 10, 5), D(2022, 10, 12), D(2022, 10, 19),
        D(2022, 11, 9), D(2022, 11, 16), D(2022, 11, 23), D(2022, 11, 30),
        D(2022, 12, 7), D(2022, 12, 14),
    ]  # fmt: skip
    assert all(day.weekday() == WEDNESDAY for day in got)


def test_wednesdays_in_term_skip_public_holidays():
    # 1 and 8 May 2024 are Wednesdays in term for zone C (spring holidays ended on 21 April).
    may = term_weekdays("C", WEDNESDAY, D(2024, 5, 1), D(2024, 5, 31))
    assert may == [D(2024, 5, 15), D(2024, 5, 22), D(2024, 5, 29)]
    # 11 November 2026 is a Wednesday after the Toussaint holidays (which end on 1 November).
    november = term_weekdays("C", WEDNESDAY, D(2026, 11, 1), D(2026, 11, 30))
    assert D(2026, 11, 11) not in november
    assert november == [D(2026, 11, 4), D(2026, 11, 18), D(2026, 11, 25)]


def test_closures_are_left_out():
    got = term_weekdays("C", WEDNESDAY, D(2022, 11, 1), D(2022, 11, 30), closures=[D(2022, 11, 16)])
    assert got == [D(2022, 11, 9), D(2022, 11, 23), D(2022, 11, 30)]
    days = holiday_weekdays("C", D(2022, 10, 22), D(2022, 11, 6), closures={D(2022, 10, 24)})
    assert D(2022, 10, 24) not in days and D(2022, 10, 25) in days


def test_holiday_weekdays_toussaint_2022_zone_c():
    days = holiday_weekdays("C", D(2022, 10, 1), D(2022, 11, 30))  # 1 November is off
    assert days == [
        D(2022, 10, 24), D(2022, 10, 25), D(2022, 10, 26), D(2022, 10, 27), D(2022, 10, 28),
        D(2022, 10, 31), D(2022, 11, 2), D(2022, 11, 3), D(2022, 11, 4),
    ]  # fmt: skip


def test_holiday_weekdays_summer_skip_14_july_and_15_august():
    summer_2025 = holiday_weekdays("B", D(2025, 7, 1), D(2025, 9, 30))
    assert summer_2025[0] == D(2025, 7, 7) and summer_2025[-1] == D(2025, 8, 29)
    assert D(2025, 7, 14) not in summer_2025  # a Monday
    assert D(2025, 8, 15) not in summer_2025  # a Friday
    assert len(summer_2025) == 8 * 5 - 2
    summer_2024 = holiday_weekdays("B", D(2024, 7, 1), D(2024, 9, 30))
    assert summer_2024[0] == D(2024, 7, 8) and summer_2024[-1] == D(2024, 8, 30)
    assert D(2024, 8, 15) not in summer_2024
    assert len(summer_2024) == 8 * 5 - 1  # 14 July 2024 was a Sunday
    assert all(day.weekday() < 5 for day in summer_2024)


def test_christmas_holiday_weekdays_across_the_year_boundary():
    days = holiday_weekdays("C", D(2024, 12, 1), D(2025, 1, 31))
    assert days == [
        D(2024, 12, 23), D(2024, 12, 24), D(2024, 12, 26), D(2024, 12, 27),
        D(2024, 12, 30), D(2024, 12, 31), D(2025, 1, 2), D(2025, 1, 3),
    ]  # fmt: skip


def test_public_holidays_and_working_days():
    found = public_holidays(D(2024, 12, 20), D(2025, 1, 10))
    assert list(found) == [D(2024, 12, 25), D(2025, 1, 1)]
    assert is_public_holiday(D(2024, 7, 14)) and is_public_holiday(D(2024, 5, 20))  # Whit Monday
    assert not is_public_holiday(D(2024, 12, 26))  # only in Alsace-Moselle
    assert is_working_day(D(2024, 12, 26))
    assert not is_working_day(D(2024, 12, 28))  # a Saturday
    assert not is_working_day(D(2025, 1, 1))


def test_data_coverage_is_known_and_enforced():
    first, last = coverage()
    assert first <= D(2022, 1, 1) and last >= D(2027, 8, 31)
    with translation.override("en"), pytest.raises(CalendarError) as error:
        term_weekdays("B", WEDNESDAY, D(2030, 1, 1), D(2030, 6, 30))
    assert "no school holiday data for 2030-01-01 to 2030-06-30" in error.value.message
    assert "vacances-scolaires-france" in error.value.message
    assert error.value.field == "date_to"
    with pytest.raises(CalendarError):
        holiday_weekdays("B", last, last + dt.timedelta(days=1))
    with pytest.raises(CalendarError):
        school_holidays("A", D(1980, 1, 1), D(1980, 12, 31))


@pytest.mark.parametrize(
    ("call", "field", "words"),
    [
        (
            lambda: school_holidays("D", D(2024, 1, 1), D(2024, 2, 1)),
            "zone",
            "unknown school zone 'D'",
        ),
        (
            lambda: term_weekdays("B", 7, D(2024, 1, 1), D(2024, 2, 1)),
            "weekday",
            "from 0 (Monday) to 6",
        ),
        (
            lambda: term_weekdays("B", "wed", D(2024, 1, 1), D(2024, 2, 1)),
            "weekday",
            "from 0 (Monday)",
        ),
        (
            lambda: holiday_weekdays("B", D(2024, 2, 1), D(2024, 1, 1)),
            "date_to",
            "ends (2024-01-01) before",
        ),
        (lambda: holiday_weekdays("B", "2024-01-01", D(2024, 1, 1)), "date_from", "must be a date"),
    ],
)
def test_bad_arguments_name_the_field(call, field, words):
    with translation.override("en"), pytest.raises(CalendarError) as error:
        call()
    assert error.value.field == field
    assert words in error.value.message
