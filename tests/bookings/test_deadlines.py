"""Deadline rules: the seed notices' rules on real dates, DST and the year boundary, errors that
say what is wrong and where, plain-language descriptions, and properties of the engine."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone, translation
from hypothesis import given, settings
from hypothesis import strategies as st

from guichet.bookings.deadlines import (
    DAYS_BEFORE,
    SAME_DAY,
    WEEKDAY_BEFORE,
    WEEKDAY_BEFORE_WEEK,
    WEEKDAY_OF_PREVIOUS_WEEK,
    WORKING_DAYS_BEFORE,
    DeadlineRule,
    RuleError,
    describe_deadline,
    format_deadline,
    is_before_deadline,
    parse_rule,
)
from guichet.common.frdates import format_datetime_fr

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.UTC

# The seed notices' rules, as a service manager would type them.
MA_WEDNESDAYS = "sunday before at 23:59"  # "au plus tard le dimanche qui précède le mercredi"
MA_HOLIDAYS = "tuesday before week at 23:59"  # "au plus tard le mardi précédent la semaine"
MA_CANCEL = "sunday of previous week at 23:59"  # "le dimanche de la semaine précédant l'accueil"
SN_CANCEL = "15 days before at 23:59"  # "jusqu'à 15 jours avant le créneau réservé"


def paris(*args):
    return dt.datetime(*args, tzinfo=PARIS)


def deadline(rule: str, day: dt.date) -> dt.datetime:
    return parse_rule(rule).deadline(day)


def en(func, *args, **kwargs):
    with translation.override("en"):
        return func(*args, **kwargs)


# --- the seed rules on real dates ------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "session", "expected"),
    [
        # Maisons-Alfort, Wednesday 7 December 2022: book by Sunday 4 December.
        (MA_WEDNESDAYS, dt.date(2022, 12, 7), paris(2022, 12, 4, 23, 59)),
        (MA_WEDNESDAYS, dt.date(2022, 11, 30), paris(2022, 11, 27, 23, 59)),
        # Christmas holidays 2022 (zone C): the week of Monday 19 December, booked by Tuesday 13th,
        # for every day of that week.
        (MA_HOLIDAYS, dt.date(2022, 12, 19), paris(2022, 12, 13, 23, 59)),
        (MA_HOLIDAYS, dt.date(2022, 12, 21), paris(2022, 12, 13, 23, 59)),
        (MA_HOLIDAYS, dt.date(2022, 12, 23), paris(2022, 12, 13, 23, 59)),
        # ...and the week of Monday 26 December by Tuesday 20th.
        (MA_HOLIDAYS, dt.date(2022, 12, 27), paris(2022, 12, 20, 23, 59)),
        # Cancel a Wednesday 7 December 2022 session: the session's week runs Monday 5 to Sunday
        # 11 December; the previous week Monday 28 November to Sunday 4 December.
        (MA_CANCEL, dt.date(2022, 12, 7), paris(2022, 12, 4, 23, 59)),
        (MA_CANCEL, dt.date(2022, 12, 5), paris(2022, 12, 4, 23, 59)),
        (MA_CANCEL, dt.date(2022, 12, 11), paris(2022, 12, 4, 23, 59)),
        (MA_CANCEL, dt.date(2022, 12, 19), paris(2022, 12, 18, 23, 59)),
        # Saint-Nazaire, summer 2024: a slot on Monday 15 July can be cancelled until 30 June.
        (SN_CANCEL, dt.date(2024, 7, 15), paris(2024, 6, 30, 23, 59)),
        (SN_CANCEL, dt.date(2024, 7, 8), paris(2024, 6, 23, 23, 59)),
    ],
)
def test_seed_rules_on_real_dates(rule, session, expected):
    got = deadline(rule, session)
    assert got == expected
    assert got.tzinfo == PARIS
    assert (got.hour, got.minute) == (23, 59)


def test_wednesday_booking_open_until_the_last_minute_of_sunday():
    rule, wednesday = parse_rule(MA_WEDNESDAYS), dt.date(2022, 12, 7)
    assert is_before_deadline(rule, wednesday, paris(2022, 12, 4, 23, 58, 59))
    assert is_before_deadline(rule, wednesday, paris(2022, 12, 4, 23, 59))
    assert is_before_deadline(rule, wednesday, paris(2022, 12, 4, 23, 59, 59, 999999))
    assert not is_before_deadline(rule, wednesday, paris(2022, 12, 5, 0, 0))
    assert not is_before_deadline(rule, wednesday, paris(2022, 12, 5, 8, 0))
    # The same instant written in UTC gives the same answer.
    assert is_before_deadline(rule, wednesday, dt.datetime(2022, 12, 4, 22, 59, 59, tzinfo=UTC))
    assert not is_before_deadline(rule, wednesday, dt.datetime(2022, 12, 4, 23, 0, tzinfo=UTC))


def test_a_sunday_session_is_booked_by_the_sunday_before_not_the_same_day():
    assert deadline("sunday before", dt.date(2022, 12, 11)) == paris(2022, 12, 4, 23, 59)
    assert deadline("wednesday before", dt.date(2022, 12, 7)) == paris(2022, 11, 30, 23, 59)
    assert deadline("tuesday before week", dt.date(2022, 12, 13)) == paris(2022, 12, 6, 23, 59)


def test_before_week_and_of_previous_week_agree_for_every_weekday():
    day = dt.date(2024, 1, 1)
    for name in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"):
        for offset in range(14):
            session = day + dt.timedelta(days=offset)
            assert deadline(f"{name} before week", session) == deadline(
                f"{name} of previous week", session
            )


def test_frozen_clock_with_timezone_now():
    rule = parse_rule(MA_WEDNESDAYS)
    with time_machine.travel(paris(2022, 12, 4, 21, 0), tick=False):
        assert is_before_deadline(rule, dt.date(2022, 12, 7), timezone.now())
    with time_machine.travel(paris(2022, 12, 5, 0, 0), tick=False):
        assert not is_before_deadline(rule, dt.date(2022, 12, 7), timezone.now())
        assert is_before_deadline(rule, dt.date(2022, 12, 14), timezone.now())


@override_settings(TIME_ZONE="America/New_York")
def test_deadlines_do_not_depend_on_the_display_time_zone():
    assert deadline(MA_WEDNESDAYS, dt.date(2022, 12, 7)) == paris(2022, 12, 4, 23, 59)
    assert en(describe_deadline, deadline(MA_WEDNESDAYS, dt.date(2022, 12, 7)), "book") == (
        "bookable until Sunday 4 December, 23:59"
    )


# --- working days and other times of day -------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "session", "expected"),
    [
        # Thursday 2 January 2025: 1 January is a public holiday, then the weekend.
        ("1 working day before at 12:00", dt.date(2025, 1, 2), paris(2024, 12, 31, 12, 0)),
        ("2 working days before at 12:00", dt.date(2025, 1, 2), paris(2024, 12, 30, 12, 0)),
        ("3 working days before at 12:00", dt.date(2025, 1, 2), paris(2024, 12, 27, 12, 0)),
        # Friday 27 December 2024: 25 December is off, 26 December is a working day (outside
        # Alsace-Moselle).
        ("1 working day before at 10:30", dt.date(2024, 12, 27), paris(2024, 12, 26, 10, 30)),
        ("2 working days before at 10:30", dt.date(2024, 12, 27), paris(2024, 12, 24, 10, 30)),
        # A Monday session: Friday; Tuesday after Easter Monday 2024 (1 April): Friday 29 March.
        ("1 working day before", dt.date(2024, 3, 25), paris(2024, 3, 22, 23, 59)),
        ("1 working day before", dt.date(2024, 4, 2), paris(2024, 3, 29, 23, 59)),
        # Calendar days are calendar days, weekends and holidays included.
        ("3 days before at 18:00", dt.date(2025, 1, 2), paris(2024, 12, 30, 18, 0)),
        ("same day at 09:00", dt.date(2024, 7, 15), paris(2024, 7, 15, 9, 0)),
    ],
)
def test_working_days_and_times(rule, session, expected):
    assert deadline(rule, session) == expected


# --- daylight saving time ----------------------------------------------------------------------


def test_spring_forward_sunday_2024():
    monday = dt.date(2024, 4, 1)  # Easter Monday; the clocks changed on Sunday 31 March
    got = deadline(MA_WEDNESDAYS, monday)
    assert got == paris(2024, 3, 31, 23, 59)
    assert got.utcoffset() == dt.timedelta(hours=2)  # already summer time
    assert got.astimezone(UTC) == dt.datetime(2024, 3, 31, 21, 59, tzinfo=UTC)
    # 02:30 does not exist that night: the deadline moves forward by the gap, to 03:30.
    gap = deadline("1 day before at 02:30", monday)
    assert (gap.date(), gap.hour, gap.minute) == (dt.date(2024, 3, 31), 3, 30)
    assert gap.utcoffset() == dt.timedelta(hours=2)
    assert gap.astimezone(UTC) == dt.datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    # The Saturday before is still winter time.
    assert deadline("saturday before", monday).utcoffset() == dt.timedelta(hours=1)


def test_fall_back_sunday_2024():
    monday = dt.date(2024, 10, 28)  # the clocks went back on Sunday 27 October
    got = deadline(MA_WEDNESDAYS, monday)
    assert got == paris(2024, 10, 27, 23, 59)
    assert got.utcoffset() == dt.timedelta(hours=1)
    assert got.astimezone(UTC) == dt.datetime(2024, 10, 27, 22, 59, tzinfo=UTC)
    # 02:30 happens twice that night: the deadline is the second one (winter time).
    twice = deadline("1 day before at 02:30", monday)
    assert (twice.hour, twice.minute) == (2, 30)
    assert twice.astimezone(UTC) == dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC)
    rule = parse_rule("1 day before at 02:30")
    assert is_before_deadline(rule, monday, dt.datetime(2024, 10, 27, 1, 15, tzinfo=UTC))
    assert is_before_deadline(rule, monday, dt.datetime(2024, 10, 27, 1, 30, 59, tzinfo=UTC))
    assert not is_before_deadline(rule, monday, dt.datetime(2024, 10, 27, 1, 31, tzinfo=UTC))


def test_cancellation_across_the_dst_change():
    # Cancel a session of Wednesday 3 April 2024 by Sunday 31 March 23:59 summer time.
    got = deadline(MA_CANCEL, dt.date(2024, 4, 3))
    assert got.astimezone(UTC) == dt.datetime(2024, 3, 31, 21, 59, tzinfo=UTC)
    got = deadline(MA_CANCEL, dt.date(2024, 10, 30))
    assert got.astimezone(UTC) == dt.datetime(2024, 10, 27, 22, 59, tzinfo=UTC)


# --- the year boundary --------------------------------------------------------------------------


def test_year_boundary_wednesday_3_january_2024():
    session = dt.date(2024, 1, 3)
    assert deadline(MA_WEDNESDAYS, session) == paris(2023, 12, 31, 23, 59)
    assert deadline(MA_CANCEL, session) == paris(2023, 12, 31, 23, 59)
    assert deadline(MA_HOLIDAYS, session) == paris(2023, 12, 26, 23, 59)
    text = en(describe_deadline, deadline(MA_WEDNESDAYS, session), "book", session_date=session)
    assert text == "bookable until Sunday 31 December 2023, 23:59"


def test_year_shown_when_now_is_in_another_year():
    when = paris(2025, 1, 5, 23, 59)
    assert "2025" in en(describe_deadline, when, "book", now=paris(2024, 12, 20, 10, 0))
    assert "2025" not in en(describe_deadline, when, "book", now=paris(2025, 1, 2, 10, 0))
    assert "2025" not in en(
        describe_deadline, when, "book", session_date=dt.date(2025, 1, 8), now=paris(2025, 1, 2)
    )


# --- descriptions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "action", "expected"),
    [
        (paris(2023, 12, 3, 23, 59), "book", "bookable until Sunday 3 December, 23:59"),
        (paris(2023, 12, 3, 23, 59), "cancel", "cancellable until Sunday 3 December, 23:59"),
        (paris(2024, 6, 30, 12, 0), "cancel", "cancellable until Sunday 30 June, 12:00"),
        (paris(2024, 3, 1, 9, 5), "book", "bookable until Friday 1 March, 9:05"),
        # Any aware datetime is described in Paris time.
        (
            dt.datetime(2023, 12, 3, 22, 59, tzinfo=UTC),
            "book",
            "bookable until Sunday 3 December, 23:59",
        ),
    ],
)
def test_describe_in_english(when, action, expected):
    assert en(describe_deadline, when, action) == expected


def test_describe_in_french_uses_french_day_and_month_names():
    with translation.override("fr"):
        text = describe_deadline(paris(2023, 12, 3, 23, 59), "book")
    assert "dimanche 3 décembre" in text


def _french_catalogue_has(msgid: str) -> bool:
    with translation.override("fr"):
        return translation.gettext(msgid) != msgid


def test_describe_in_french_reads_as_french():
    with translation.override("fr"):
        assert describe_deadline(paris(2023, 12, 3, 23, 59), "book") == (
            "réservable jusqu’au dimanche 3 décembre à 23 h 59"
        )
        assert describe_deadline(paris(2024, 6, 30, 12, 0), "cancel") == (
            "annulable jusqu’au dimanche 30 juin à 12 h"
        )
        assert describe_deadline(paris(2024, 12, 1, 9, 5), "book") == (
            "réservable jusqu’au dimanche 1er décembre à 9 h 05"
        )


@pytest.mark.parametrize(
    ("when", "with_year", "french", "english"),
    [
        # The first of the month is "1er" in French, "1" in English.
        (paris(2024, 12, 1, 9, 5), False, "dimanche 1er décembre à 9 h 05", "Sunday 1 December, 9:05"),
        (paris(2024, 12, 3, 23, 59), False, "mardi 3 décembre à 23 h 59", "Tuesday 3 December, 23:59"),
        (paris(2024, 6, 30, 12, 0), False, "dimanche 30 juin à 12 h", "Sunday 30 June, 12:00"),
        (paris(2024, 6, 4, 0, 5), False, "mardi 4 juin à 0 h 05", "Tuesday 4 June, 0:05"),
        # The year boundary: the year is written when asked, and each date keeps its own year.
        (paris(2023, 12, 31, 23, 59), True, "dimanche 31 décembre 2023 à 23 h 59",
         "Sunday 31 December 2023, 23:59"),
        (paris(2024, 1, 1, 0, 0), True, "lundi 1er janvier 2024 à 0 h", "Monday 1 January 2024, 0:00"),
        # Any aware datetime is written in Paris time: 23:30 UTC on 31 December is already 2024.
        (dt.datetime(2023, 12, 31, 23, 30, tzinfo=UTC), True, "lundi 1er janvier 2024 à 0 h 30",
         "Monday 1 January 2024, 0:30"),
    ],
)
def test_format_deadline_writes_dates_like_the_rest_of_the_site(when, with_year, french, english):
    with translation.override("fr"):
        assert format_deadline(when, with_year=with_year) == french
        assert format_deadline(when, with_year=with_year) == format_datetime_fr(when, weekday=True, year=with_year)
    assert en(format_deadline, when, with_year=with_year) == english


def test_format_deadline_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="aware"):
        format_deadline(dt.datetime(2024, 12, 3, 23, 59))  # noqa: DTZ001


def test_describe_refuses_naive_datetimes_and_unknown_actions():
    with pytest.raises(ValueError, match="aware"):
        describe_deadline(dt.datetime(2023, 12, 3, 23, 59), "book")  # noqa: DTZ001
    with pytest.raises(ValueError, match="action"):
        describe_deadline(paris(2023, 12, 3, 23, 59), "waitlist")


def test_is_before_deadline_refuses_naive_now():
    with pytest.raises(ValueError, match="aware"):
        is_before_deadline(
            parse_rule(MA_WEDNESDAYS), dt.date(2022, 12, 7), dt.datetime(2022, 12, 1)
        )  # noqa: DTZ001


# --- the language ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("sunday before at 23:59", "sunday before at 23:59"),
        ("Sunday before", "sunday before at 23:59"),
        ("  DIMANCHE   before   at 23h59 ", "sunday before at 23:59"),
        ("tuesday before week", "tuesday before week at 23:59"),
        ("mardi before the week at 23:59", "tuesday before week at 23:59"),
        ("sunday of previous week", "sunday of previous week at 23:59"),
        ("Sunday of the previous week at 23:59", "sunday of previous week at 23:59"),
        ("15 days before", "15 days before at 23:59"),
        ("1 days before at 8h", "1 day before at 08:00"),
        ("3 working days before at 12:00", "3 working days before at 12:00"),
        ("1 Working Day before at 12 h 30", "1 working day before at 12:30"),
        ("same day at 9:00", "same day at 09:00"),
        ("same day at 00:00", "same day at 00:00"),
        ("samedi before at 18:00", "saturday before at 18:00"),
    ],
)
def test_accepted_spellings(text, canonical):
    rule = parse_rule(text)
    assert rule.text == canonical
    assert parse_rule(rule.text) == rule
    assert str(rule) == canonical


def test_parsed_values():
    assert parse_rule(MA_WEDNESDAYS) == DeadlineRule(WEEKDAY_BEFORE, weekday=6, hour=23, minute=59)
    assert parse_rule(MA_HOLIDAYS) == DeadlineRule(WEEKDAY_BEFORE_WEEK, weekday=1)
    assert parse_rule(MA_CANCEL) == DeadlineRule(WEEKDAY_OF_PREVIOUS_WEEK, weekday=6)
    assert parse_rule(SN_CANCEL) == DeadlineRule(DAYS_BEFORE, count=15)
    assert parse_rule("2 working days before at 12:00") == DeadlineRule(
        WORKING_DAYS_BEFORE, count=2, hour=12, minute=0
    )
    assert parse_rule("same day at 9h") == DeadlineRule(SAME_DAY, hour=9, minute=0)


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        (
            "sundy before",
            0,
            "unknown weekday 'sundy' at position 0; expected monday..sunday or lundi..dimanche",
        ),
        ("", 0, "the rule is empty"),
        ("   ", 0, "the rule is empty"),
        ("sunday", 6, "expected 'before' or 'of' at position 6, found the end of the rule"),
        ("sunday after", 7, "expected 'before' or 'of' at position 7, found 'after'"),
        ("sunday of week", 10, "expected 'previous' at position 10, found 'week'"),
        ("sunday of previous", 18, "expected 'week' at position 18"),
        ("tuesday before the", 18, "expected 'week' at position 18"),
        ("15 weeks before", 3, "found 'weeks'"),
        ("15 days", 7, "expected 'before'"),
        ("0 days before", 0, "number of days 0 at position 0 is out of range; expected 1 to 366"),
        ("400 days before", 0, "expected 1 to 366"),
        ("101 working days before", 0, "expected 1 to 100"),
        ("sunday before at 24:00", 17, "invalid time '24:00' at position 17"),
        ("sunday before at 23:60", 17, "invalid time '23:60'"),
        ("sunday before at noon", 17, "invalid time 'noon'"),
        (
            "sunday before at",
            16,
            "expected a time (HH:MM) at position 16, found the end of the rule",
        ),
        ("sunday before 23:59", 14, "expected 'at' before the time at position 14"),
        ("sunday before at 23:59 please", 23, "unexpected 'please' at position 23"),
        ("sunday, before", 6, "unexpected character ',' at position 6"),
        ("same week", 5, "expected 'day' at position 5, found 'week'"),
        ("23:59", 0, "expected a weekday, a number of days or 'same day' at position 0"),
        ("x" * 121, 120, "the rule is too long (121 characters, at most 120)"),
    ],
)
def test_errors_say_what_and_where(text, position, message):
    with translation.override("en"), pytest.raises(RuleError) as error:
        parse_rule(text)
    assert message in error.value.message
    assert error.value.position == position
    assert isinstance(error.value, ValueError)


def test_non_text_is_a_rule_error():
    with translation.override("en"), pytest.raises(RuleError, match="text"):
        parse_rule(None)


# --- properties --------------------------------------------------------------------------------

WEEKDAY_KINDS = (WEEKDAY_BEFORE, WEEKDAY_BEFORE_WEEK, WEEKDAY_OF_PREVIOUS_WEEK)


@st.composite
def rules(draw):
    kind = draw(st.sampled_from(WEEKDAY_KINDS + (DAYS_BEFORE, WORKING_DAYS_BEFORE, SAME_DAY)))
    weekday = draw(st.integers(0, 6)) if kind in WEEKDAY_KINDS else None
    count = None
    if kind == DAYS_BEFORE:
        count = draw(st.integers(1, 366))
    elif kind == WORKING_DAYS_BEFORE:
        count = draw(st.integers(1, 100))
    return DeadlineRule(kind, weekday, count, draw(st.integers(0, 23)), draw(st.integers(0, 59)))


session_dates = st.dates(dt.date(2000, 1, 1), dt.date(2060, 12, 31))
instants = st.datetimes(dt.datetime(1999, 1, 1), dt.datetime(2061, 12, 31), timezones=st.just(UTC))  # noqa: DTZ001


@given(rules(), session_dates)
def test_a_before_deadline_never_falls_after_the_session_starts(rule, session):
    got = rule.deadline(session)
    assert got.tzinfo is not None
    if rule.is_before_session:
        assert got < dt.datetime.combine(session, dt.time(0, 0), tzinfo=PARIS)
        assert got.astimezone(PARIS).date() < session
    else:
        assert got.astimezone(PARIS).date() == session


@given(rules(), session_dates)
def test_the_deadline_shows_the_rule_time_except_in_the_spring_gap(rule, session):
    local = rule.deadline(session).astimezone(PARIS)
    if (local.hour, local.minute) != (rule.hour, rule.minute):
        # Only possible on the last Sunday of March, between 02:00 and 03:00, moved one hour on.
        assert local.month == 3 and local.weekday() == 6 and local.day >= 25
        assert rule.hour == 2 and local.hour == 3 and local.minute == rule.minute


@given(rules(), session_dates, instants, instants)
def test_moving_now_forward_never_reopens_a_closed_deadline(rule, session, a, b):
    earlier, later = min(a, b), max(a, b)
    if is_before_deadline(rule, session, later):
        assert is_before_deadline(rule, session, earlier)


@given(rules())
def test_canonical_text_parses_back_to_the_same_rule(rule):
    assert parse_rule(rule.text) == rule


@given(rules(), st.data())
def test_case_and_spacing_do_not_matter(rule, data):
    words = rule.text.split(" ")
    spaced = "".join(
        data.draw(st.sampled_from([w, w.upper(), w.title()]))
        + data.draw(st.sampled_from([" ", "  ", "\t"]))
        for w in words
    )
    assert parse_rule(spaced) == rule


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_random_text_raises_only_rule_errors(text):
    try:
        rule = parse_rule(text)
    except RuleError as error:
        assert error.message
        assert 0 <= error.position <= max(len(text), 120)
    else:
        assert parse_rule(rule.text) == rule


keywordish = st.lists(
    st.sampled_from(
        [
            "sunday",
            "mardi",
            "before",
            "of",
            "the",
            "previous",
            "week",
            "same",
            "day",
            "days",
            "working",
            "at",
            "23:59",
            "9h",
            "15",
            "0",
            "24:00",
            "x",
            ",",
        ]
    ),
    max_size=8,
).map(" ".join)


@settings(max_examples=300)
@given(keywordish)
def test_near_miss_rules_raise_only_rule_errors(text):
    try:
        rule = parse_rule(text)
    except RuleError as error:
        assert error.message
    else:
        assert parse_rule(rule.text) == rule


def test_the_deadline_minute_is_included_up_to_its_last_second():
    rule = parse_rule("sunday before at 23:59")
    wednesday = dt.date(2022, 12, 7)
    assert is_before_deadline(rule, wednesday, dt.datetime(2022, 12, 4, 23, 59, 59, tzinfo=PARIS))
    assert not is_before_deadline(rule, wednesday, dt.datetime(2022, 12, 5, 0, 0, 0, tzinfo=PARIS))
