"""Opening hours: parsing with named errors, "open now" and "next opening" in Paris time."""

import datetime as dt
from zoneinfo import ZoneInfo

import holidays
import pytest
from django.test import override_settings
from django.utils import translation
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from guichet.catalog.hours import (
    DAY_CODES,
    HoursError,
    parse_schedule,
    schedule_to_data,
)
from guichet.catalog.hours import describe as describe_schedule
from guichet.catalog.hours import open_state as open_state_at

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.UTC
OFFICE = [{"days": "mon-fri", "slots": ["08:30-11:00", "13:30-17:00"]}]  # "Monday–Friday 8:30–11:00 and 13:30–17:00"


def at(*args, tz=PARIS):
    return dt.datetime(*args, tzinfo=tz)


def state(data, now, audience=None):
    return open_state_at(parse_schedule(data), now, audience)


# --- parsing: every error names its field -----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ("sometimes", "hours", "expected a list of rules"),
        ({"rules": [], "holidays": "open"}, "hours", "unknown field(s): holidays"),
        ([{"days": "mon-fri", "slots": ["8:30-11"]}], "hours[0].slots[0]", "is not a slot"),
        ([{"days": "mon", "slots": ["08:30-11:00", "25:00-26:00"]}], "hours[0].slots[1]", "not a valid time"),
        ([{"days": "mon", "slots": ["08:60-11:00"]}], "hours[0].slots[0]", "not a valid time"),
        ([{"days": "mon", "slots": ["12:00-11:00"]}], "hours[0].slots[0]", "ends before it starts"),
        ([{"days": "mon", "slots": ["08:00-12:00", "11:00-14:00"]}], "hours[0].slots", "overlap"),
        ([{"days": "mon", "slots": []}], "hours[0].slots", "list of time slots"),
        ([{"days": "mon"}], "hours[0].slots", "list of time slots"),
        ([{"days": "lun", "slots": ["08:00-12:00"]}], "hours[0].days", "is not a day"),
        ([{"days": "fri-mon", "slots": ["08:00-12:00"]}], "hours[0].days", "runs backwards"),
        ([{"days": "mon-xyz", "slots": ["08:00-12:00"]}], "hours[0].days", "not a day range"),
        ([{"slots": ["08:00-12:00"]}], "hours[0].days", "missing"),
        ([{"days": "", "slots": ["08:00-12:00"]}], "hours[0].days", "no day given"),
        ([{"days": "mon", "except": "mon", "slots": ["08:00-12:00"]}], "hours[0].days", "no day left"),
        ([{"days": "mon-fri", "except": "jeudi", "slots": ["08:00-12:00"]}], "hours[0].except", "is not a day"),
        ([OFFICE[0], {"days": "sat", "slots": ["08:00-12:00"], "audience": "tourists"}], "hours[1].audience", "must be one of"),
        ([{"days": "sat", "slots": ["08:00-12:00"], "access": "by_phone"}], "hours[0].access", "must be one of"),
        ([{"days": "sat", "slots": ["08:00-12:00"], "opens": "soon"}], "hours[0]", "unknown field(s): opens"),
        (["mon 8-12"], "hours[0]", "expected a rule"),
        ({"rules": OFFICE, "exceptions": [{"date": "2024-02-30", "closed": True}]}, "hours.exceptions[0].date", "is not a date"),
        ({"rules": OFFICE, "exceptions": [{"closed": True}]}, "hours.exceptions[0]", "expected a date"),
        ({"rules": OFFICE, "exceptions": [{"date": "2024-05-25", "slots": ["9-10"]}]}, "hours.exceptions[0].slots[0]", "is not a slot"),
        ({"rules": OFFICE, "public_holidays": "sometimes"}, "hours.public_holidays", "must be 'closed' or 'open'"),
    ],
)
def test_parse_errors_name_the_field(data, path, words):
    with translation.override("en"), pytest.raises(HoursError) as e:
        parse_schedule(data)
    assert e.value.path == path
    assert words in e.value.message
    assert str(e.value).startswith(f"{path}: ")


def test_parse_errors_carry_the_callers_path():
    with pytest.raises(HoursError) as e:
        parse_schedule([{"days": "mon", "slots": ["x"]}], "operations[3].hours")
    assert e.value.path == "operations[3].hours[0].slots[0]"


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_no_hours_means_never_open_and_no_next_opening(empty):
    s = parse_schedule(empty)
    assert s.empty
    st_ = open_state_at(s, at(2024, 5, 22, 10, 0))
    assert (st_.open, st_.next_open_at) == (False, None)


def test_days_accept_lists_ranges_and_exceptions():
    s = parse_schedule([{"days": ["mon-wed", "fri"], "except": ["tue"], "slots": ["09:00-12:00"]}])
    assert s.rules[0].days == {0, 2, 4}


# --- open now -------------------------------------------------------------------------------


def test_split_day_open_morning_closed_at_lunch_open_afternoon():
    wed = (2024, 5, 22)  # a Wednesday
    assert state(OFFICE, at(*wed, 8, 29)).open is False
    s = state(OFFICE, at(*wed, 8, 30))
    assert s.open and s.closes_at == at(*wed, 11, 0) and s.access == "walk_in"
    lunch = state(OFFICE, at(*wed, 11, 0))
    assert not lunch.open and lunch.next_open_at == at(*wed, 13, 30)
    assert state(OFFICE, at(*wed, 16, 59)).open
    evening = state(OFFICE, at(*wed, 17, 0))
    assert not evening.open and evening.next_open_at == at(2024, 5, 23, 8, 30)


def test_next_opening_over_a_weekend():
    s = state(OFFICE, at(2024, 5, 24, 17, 30))  # Friday evening
    assert not s.open
    assert s.next_open_at == at(2024, 5, 27, 8, 30)  # Monday morning
    assert state(OFFICE, at(2024, 5, 25, 10, 0)).open is False  # Saturday


def test_except_thursday():
    data = [{"days": "mon-sun", "except": "thu", "slots": ["09:00-12:00"]}]
    assert state(data, at(2024, 5, 22, 10, 0)).open  # Wednesday
    thu = state(data, at(2024, 5, 23, 10, 0))
    assert not thu.open and thu.next_open_at == at(2024, 5, 24, 9, 0)
    assert state(data, at(2024, 5, 26, 10, 0)).open  # Sunday


@pytest.mark.parametrize(
    ("day", "name"),
    [((2024, 5, 1), "1 May"), ((2025, 7, 14), "14 July"), ((2024, 4, 1), "Easter Monday"),
     ((2024, 5, 9), "Ascension"), ((2024, 11, 11), "Armistice"), ((2024, 12, 25), "Christmas")],
)
def test_closed_on_public_holidays(day, name):
    s = state(OFFICE, at(*day, 9, 0))
    assert not s.open, name
    nxt = s.next_open_at.date()
    assert nxt > dt.date(*day) and nxt not in holidays.France(years=nxt.year)


def test_open_on_public_holidays_when_said_so():
    assert state({"rules": OFFICE, "public_holidays": "open"}, at(2024, 5, 1, 9, 0)).open


def test_easter_weekend_with_the_clock_change():
    """Friday 29 March 2024 evening: the clocks go forward on Sunday, Monday is Easter Monday."""
    s = state(OFFICE, at(2024, 3, 29, 17, 30))
    assert s.next_open_at == at(2024, 4, 2, 8, 30)
    assert s.next_open_at.utcoffset() == dt.timedelta(hours=2)


def test_dated_exceptions_close_a_day_or_change_its_hours():
    data = {
        "rules": OFFICE + [{"days": "sat", "slots": ["08:30-11:00"], "access": "appointment"}],
        "exceptions": [
            {"date": "2024-05-25", "closed": True, "note": "Matinée annulée"},
            {"date": "2024-05-22", "slots": ["14:00-16:00"]},
            {"date": "2024-05-01", "slots": ["10:00-12:00"], "note": "Permanence"},
        ],
    }
    assert not state(data, at(2024, 5, 25, 9, 0)).open
    assert state(data, at(2024, 5, 25, 9, 0)).next_open_at == at(2024, 5, 27, 8, 30)
    assert not state(data, at(2024, 5, 22, 9, 0)).open
    assert state(data, at(2024, 5, 22, 9, 0)).next_open_at == at(2024, 5, 22, 14, 0)
    assert state(data, at(2024, 5, 22, 15, 0)).open
    assert state(data, at(2024, 5, 1, 11, 0)).open  # an exception beats the public holiday
    assert state(data, at(2024, 6, 1, 9, 0)).access == "appointment"  # an ordinary Saturday


def test_saturday_by_appointment_only():
    data = OFFICE + [{"days": "sat", "slots": ["08:30-11:00"], "access": "appointment"}]
    s = state(data, at(2024, 5, 25, 9, 0))
    assert s.open and s.access == "appointment"
    fri = state(data, at(2024, 5, 24, 18, 0))
    assert fri.next_open_at == at(2024, 5, 25, 8, 30) and fri.access == "appointment"


def test_residents_walk_in_non_residents_by_appointment():
    data = [
        {"days": "mon-fri", "slots": ["08:30-12:00"], "audience": "residents"},
        {"days": "mon-fri", "slots": ["14:00-17:00"], "audience": "non_residents", "access": "appointment"},
    ]
    morning = at(2024, 5, 22, 10, 0)
    assert state(data, morning, "residents").open
    assert state(data, morning, "residents").access == "walk_in"
    other = state(data, morning, "non_residents")
    assert not other.open
    assert other.next_open_at == at(2024, 5, 22, 14, 0) and other.access == "appointment"
    assert state(data, morning).open  # anyone: some rule applies
    assert not state(data, at(2024, 5, 22, 15, 0), "residents").open


def test_always_is_open_day_and_night_even_on_holidays():
    for now in (at(2024, 5, 1, 3, 0), at(2024, 12, 25, 23, 59), at(2024, 3, 31, 2, 30, tz=UTC)):
        assert state("always", now).open
    assert parse_schedule({"always": True}).always


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        open_state_at(parse_schedule(OFFICE), dt.datetime(2024, 5, 22, 10, 0))  # noqa: DTZ001


# --- Paris time, whatever the clock or the settings say ---------------------------------------


@pytest.mark.parametrize(
    ("now_utc", "is_open"),
    [
        # Spring forward on Sunday 30 March 2025: 06:45 UTC is 07:45 before, 08:45 after.
        (dt.datetime(2025, 3, 28, 6, 45, tzinfo=UTC), False),
        (dt.datetime(2025, 3, 31, 6, 45, tzinfo=UTC), True),
        # Fall back on Sunday 27 October 2024: 07:15 UTC is 09:15 before, 08:15 after.
        (dt.datetime(2024, 10, 25, 7, 15, tzinfo=UTC), True),
        (dt.datetime(2024, 10, 28, 7, 15, tzinfo=UTC), False),
    ],
)
def test_opening_follows_paris_summer_and_winter_time(now_utc, is_open):
    assert state(OFFICE, now_utc).open is is_open


def test_next_opening_across_the_autumn_change_is_in_winter_time():
    s = state(OFFICE, at(2024, 10, 25, 18, 0))  # Friday, summer time
    assert s.next_open_at == at(2024, 10, 28, 8, 30)
    assert s.next_open_at.utcoffset() == dt.timedelta(hours=1)
    assert s.next_open_at.astimezone(UTC) == dt.datetime(2024, 10, 28, 7, 30, tzinfo=UTC)


def test_on_call_night_slot_on_the_night_the_clocks_go_back():
    data = [{"days": "sun", "slots": ["00:00-06:00"]}]
    for hour_utc in (0, 1, 2, 3, 4):  # 02:00 CEST ... 05:00 CET; 02:xx happens twice
        assert state(data, dt.datetime(2024, 10, 27, hour_utc, 30, tzinfo=UTC)).open


def test_closing_time_inside_the_repeated_hour_is_after_now():
    data = [{"days": "sun", "slots": ["02:00-02:45"]}]
    for now in (dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC), dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC)):
        s = state(data, now)  # 02:30 summer time, then 02:30 again in winter time
        assert s.open and s.closes_at > now
        assert s.closes_at - now == dt.timedelta(minutes=15)


@override_settings(TIME_ZONE="America/New_York")
def test_rules_stay_in_paris_time_when_the_site_runs_elsewhere():
    from django.utils import timezone

    with timezone.override("America/New_York"):
        now = dt.datetime(2024, 5, 22, 7, 0, tzinfo=UTC)  # 09:00 in Paris, 03:00 in New York
        s = state(OFFICE, now)
        assert s.open and s.closes_at == at(2024, 5, 22, 11, 0)
        ny = now.astimezone(ZoneInfo("America/New_York"))
        assert state(OFFICE, ny) == s
        later = state(OFFICE, dt.datetime(2024, 5, 22, 15, 30, tzinfo=UTC))  # 17:30 Paris
        assert not later.open and later.next_open_at == at(2024, 5, 23, 8, 30)


# --- describe, in French and English -------------------------------------------------------


SEEDLIKE = [
    {"days": "mon-fri", "slots": ["08:30-11:00", "13:30-17:00"]},
    {"days": "sat", "slots": ["08:30-11:00"], "access": "appointment"},
    {"days": "mon,wed", "slots": ["09:00-12:00"], "audience": "non_residents", "access": "appointment",
     "note": "Hors Saint-Nazaire", "note_en": "Outside Saint-Nazaire"},
]


def test_describe_in_english():
    with translation.override("en"):
        assert describe_schedule(parse_schedule(SEEDLIKE)) == [
            "Monday to Friday: 8:30 to 11:00 and 13:30 to 17:00",
            "Saturday: 8:30 to 11:00 (by appointment only)",
            "Monday, Wednesday: 9:00 to 12:00 (non-residents, by appointment only) — Outside Saint-Nazaire",
        ]
        assert describe_schedule(parse_schedule("always")) == ["24 hours a day, 7 days a week"]
        assert describe_schedule(parse_schedule([{"days": "mon-sun", "slots": ["09:00-10:00"]}])) == [
            "Every day: 9:00 to 10:00"
        ]


def test_describe_in_french_uses_french_times_days_and_notes():
    with translation.override("fr"):
        lines = describe_schedule(parse_schedule(SEEDLIKE))
    assert lines[0].startswith("Lundi") and "vendredi" in lines[0]
    assert "8 h 30" in lines[0] and "11 h" in lines[0] and "13 h 30" in lines[0] and "17 h" in lines[0]
    assert lines[1].startswith("Samedi") and "8 h 30" in lines[1]
    assert lines[2].endswith("— Hors Saint-Nazaire")


def test_describe_in_french_reads_as_french():
    with translation.override("fr"):
        lines = describe_schedule(parse_schedule(SEEDLIKE))
        assert lines[0] == "Lundi au vendredi\u00a0: de 8 h 30 à 11 h et de 13 h 30 à 17 h"
        assert "sur rendez-vous" in lines[1]


# --- properties ----------------------------------------------------------------------------


@st.composite
def slots(draw):
    bounds = sorted(draw(st.sets(st.integers(min_value=0, max_value=1440), min_size=2, max_size=8)))
    pairs = list(zip(bounds[::2], bounds[1::2], strict=False))
    assume(pairs)
    return [f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in pairs]


@st.composite
def rules(draw):
    days = draw(st.sets(st.sampled_from(DAY_CODES), min_size=1))
    rule = {"days": sorted(days, key=DAY_CODES.index), "slots": draw(slots())}
    if draw(st.booleans()):
        rule["audience"] = draw(st.sampled_from(["all", "residents", "non_residents"]))
    if draw(st.booleans()):
        rule["access"] = draw(st.sampled_from(["walk_in", "appointment"]))
    if draw(st.booleans()):
        rule["note"] = draw(st.text(max_size=20))
    return rule


@st.composite
def schedules(draw):
    if draw(st.integers(0, 20)) == 0:
        return "always"
    data = {"rules": draw(st.lists(rules(), max_size=4))}
    excs = []
    for day in draw(st.lists(st.dates(dt.date(2024, 1, 1), dt.date(2026, 12, 31)), max_size=3)):
        if draw(st.booleans()):
            excs.append({"date": day.isoformat(), "closed": True})
        else:
            excs.append({"date": day.isoformat(), "slots": draw(slots())})
    if excs:
        data["exceptions"] = excs
    if draw(st.booleans()):
        data["public_holidays"] = draw(st.sampled_from(["open", "closed"]))
    return data


@settings(max_examples=200, deadline=None)
@given(schedules())
def test_stored_form_round_trips(data):
    s = parse_schedule(data)
    stored = schedule_to_data(s)
    assert parse_schedule(stored) == s
    assert schedule_to_data(parse_schedule(stored)) == stored


# Times around the DST changes and ordinary days, as UTC instants.
instants = st.one_of(
    st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2026, 12, 31), timezones=st.just(UTC)),
    st.datetimes(dt.datetime(2024, 10, 26, 20), dt.datetime(2024, 10, 27, 6), timezones=st.just(UTC)),
    st.datetimes(dt.datetime(2025, 3, 29, 20), dt.datetime(2025, 3, 30, 6), timezones=st.just(UTC)),
)


def oracle_open(s, now) -> bool:
    """Independent statement of the rule: inside a slot of that Paris day, unless closed."""
    local = now.astimezone(PARIS)
    minute = local.hour * 60 + local.minute
    day = local.date()
    if s.always:
        return True
    for e in s.exceptions:
        if e.date == day:
            return not e.closed and any(sl.start <= minute < sl.end for sl in e.slots)
    if s.closed_on_public_holidays and day in holidays.France(years=day.year):
        return False
    return any(
        day.weekday() in r.days and sl.start <= minute < sl.end for r in s.rules for sl in r.slots
    )


@settings(max_examples=300, deadline=None)
@given(schedules(), instants)
def test_open_now_iff_inside_a_slot_of_that_day(data, now):
    s = parse_schedule(data)
    assert open_state_at(s, now).open is oracle_open(s, now)


@settings(max_examples=300, deadline=None)
@given(schedules(), instants)
def test_next_opening_is_after_now_and_is_open(data, now):
    s = parse_schedule(data)
    result = open_state_at(s, now)
    if result.open:
        assert result.next_open_at is None
        assert result.closes_at is not None and result.closes_at > now
        return
    if result.next_open_at is not None:
        assert result.next_open_at > now
        assert open_state_at(s, result.next_open_at).open
