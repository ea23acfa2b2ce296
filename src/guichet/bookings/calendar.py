"""School calendars: holidays by zone, term days, holiday days and French public holidays.

Pure functions over dates; no database. School holidays come from the data shipped in the
``vacances-scolaires-france`` package (pinned in pyproject.toml), public holidays from the
``holidays`` package (metropolitan France). Zones are the national school zones A, B and C
(Saint-Nazaire is in zone B, Maisons-Alfort in zone C).

A holiday period is given as the package gives it: from the first day without school (often
the Saturday after the last class) to the last day before classes resume (a Sunday), weekends
included. The package also lists the "Pont de l'Ascension" (the Friday after Ascension
Thursday and the weekend, in the years the ministry grants it) as a holiday period.

The package only knows the school years the ministry has published. Asking about a date outside
that range raises :class:`CalendarError` instead of silently answering "term time".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import holidays
from django.utils.translation import gettext as _

ZONES = ("A", "B", "C")


class CalendarError(ValueError):
    """A zone, weekday or date range the calendars cannot answer for; ``message`` says why."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Holiday:
    """One school holiday period of one zone (both days included)."""

    name: str  # French name as published, e.g. "Vacances de la Toussaint"
    first_day: dt.date
    last_day: dt.date

    def __contains__(self, day: dt.date) -> bool:
        return self.first_day <= day <= self.last_day

    def days(self) -> list[dt.date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + dt.timedelta(days=i) for i in range(count)]


# --- public holidays ------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _public_holidays_of_year(year: int) -> dict[dt.date, str]:
    return dict(holidays.country_holidays("FR", years=year).items())


def public_holidays(date_from: dt.date, date_to: dt.date) -> dict[dt.date, str]:
    """French public holidays (metropolitan France) between two dates included, by date."""
    _check_range(date_from, date_to)
    found: dict[dt.date, str] = {}
    for year in range(date_from.year, date_to.year + 1):
        for day, name in _public_holidays_of_year(year).items():
            if date_from <= day <= date_to:
                found[day] = name
    return dict(sorted(found.items()))


def is_public_holiday(day: dt.date) -> bool:
    return day in _public_holidays_of_year(day.year)


def is_working_day(day: dt.date) -> bool:
    """Monday to Friday and not a French public holiday ("jour ouvré")."""
    return day.weekday() < 5 and not is_public_holiday(day)


# --- school holidays ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _school_data() -> tuple[dict[str, tuple[Holiday, ...]], dt.date, dt.date]:
    """Holiday periods per zone, and the first and last day the package's data covers."""
    from vacances_scolaires_france import SchoolHolidayDates

    data = SchoolHolidayDates().data  # {date: row} for every day on holiday in some zone
    days = sorted(data)
    periods: dict[str, list[Holiday]] = {zone: [] for zone in ZONES}
    for zone in ZONES:
        key = f"vacances_zone_{zone.lower()}"
        current: list = []  # [name, first, last]
        for day in days:
            row = data[day]
            if not row[key]:
                continue
            name = row["nom_vacances"]
            if current and current[0] == name and day == current[2] + dt.timedelta(days=1):
                current[2] = day
            else:
                if current:
                    periods[zone].append(Holiday(*current))
                current = [name, day, day]
        if current:
            periods[zone].append(Holiday(*current))
    first_covered = dt.date(min(days).year, 1, 1)
    # The data runs until the last published holiday: after it, nothing is known.
    last_covered = max(days)
    return {zone: tuple(p) for zone, p in periods.items()}, first_covered, last_covered


def coverage() -> tuple[dt.date, dt.date]:
    """First and last day for which the school holiday data is known."""
    _, first, last = _school_data()
    return first, last


def _zone(zone: str) -> str:
    value = str(zone).strip().upper()
    if value.startswith("ZONE "):
        value = value[5:].strip()
    if value not in ZONES:
        raise CalendarError(
            _("unknown school zone '%(zone)s'; expected A, B or C") % {"zone": zone}, field="zone"
        )
    return value


def _check_range(date_from: dt.date, date_to: dt.date) -> None:
    for field, value in (("date_from", date_from), ("date_to", date_to)):
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise CalendarError(_("%(field)s must be a date") % {"field": field}, field=field)
    if date_to < date_from:
        raise CalendarError(
            _("the period ends (%(end)s) before it starts (%(start)s)")
            % {"start": date_from.isoformat(), "end": date_to.isoformat()},
            field="date_to",
        )


def _check_covered(date_from: dt.date, date_to: dt.date) -> None:
    first, last = coverage()
    if date_from < first or date_to > last:
        raise CalendarError(
            _(
                "no school holiday data for %(start)s to %(end)s: the installed calendar covers "
                "%(first)s to %(last)s; update the vacances-scolaires-france package"
            )
            % {
                "start": date_from.isoformat(),
                "end": date_to.isoformat(),
                "first": first.isoformat(),
                "last": last.isoformat(),
            },
            field="date_to" if date_to > last else "date_from",
        )


def school_holidays(zone: str, date_from: dt.date, date_to: dt.date) -> list[Holiday]:
    """The holiday periods of ``zone`` that overlap the period (whole periods, not clipped)."""
    zone = _zone(zone)
    _check_range(date_from, date_to)
    _check_covered(date_from, date_to)
    periods, _first, _last = _school_data()
    return [h for h in periods[zone] if h.last_day >= date_from and h.first_day <= date_to]


def is_school_holiday(zone: str, day: dt.date) -> bool:
    return bool(school_holidays(zone, day, day))


def _days(date_from: dt.date, date_to: dt.date) -> Iterable[dt.date]:
    for i in range((date_to - date_from).days + 1):
        yield date_from + dt.timedelta(days=i)


def _holiday_days(zone: str, date_from: dt.date, date_to: dt.date) -> set[dt.date]:
    days: set[dt.date] = set()
    for period in school_holidays(zone, date_from, date_to):
        days.update(period.days())
    return days


def term_weekdays(
    zone: str,
    weekday: int,
    date_from: dt.date,
    date_to: dt.date,
    *,
    closures: Iterable[dt.date] = (),
) -> list[dt.date]:
    """Every ``weekday`` (0 = Monday ... 2 = Wednesday ... 6 = Sunday) in term time between the
    two dates included: not in a school holiday of ``zone``, not a public holiday, not closed."""
    if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
        raise CalendarError(
            _("weekday must be a number from 0 (Monday) to 6 (Sunday), not '%(weekday)s'")
            % {"weekday": weekday},
            field="weekday",
        )
    on_holiday = _holiday_days(zone, date_from, date_to)
    closed = set(closures)
    return [
        day
        for day in _days(date_from, date_to)
        if day.weekday() == weekday
        and day not in on_holiday
        and not is_public_holiday(day)
        and day not in closed
    ]


def holiday_weekdays(
    zone: str,
    date_from: dt.date,
    date_to: dt.date,
    *,
    closures: Iterable[dt.date] = (),
) -> list[dt.date]:
    """Mondays to Fridays in a school holiday of ``zone`` between the two dates included,
    except public holidays (14 July, 15 August, 1 and 11 November...) and closure dates."""
    on_holiday = _holiday_days(zone, date_from, date_to)
    closed = set(closures)
    return [
        day
        for day in _days(date_from, date_to)
        if day.weekday() < 5
        and day in on_holiday
        and not is_public_holiday(day)
        and day not in closed
    ]


def holiday_of(zone: str, day: dt.date) -> Holiday | None:
    """The holiday period ``day`` falls in, if any."""
    found = school_holidays(zone, day, day)
    return found[0] if found else None
