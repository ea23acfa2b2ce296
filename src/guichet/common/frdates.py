"""One way to write dates and times for people, in French first (English when it is active).

French public-service style (Imprimerie nationale, service-public.fr):

* times: ``8 h 30``, ``9 h`` (never ``09:00``); English: ``8:30``, ``9:00``;
* dates: ``1er mars 2026``, ``2 mars 2026``, weekday in lower case (``lundi 1er mars``);
  English: ``1 March 2026``, ``Monday 1 March``;
* date and time: ``1er mars 2026 à 8 h 30``; English: ``1 March 2026, 8:30``.

Aware datetimes are shown in Paris time, whatever ``TIME_ZONE`` is. The names are written
here rather than taken from the translation catalogue so that a format never depends on a
compiled ``.mo`` file. Templates use the filters of ``{% load frdates %}``
(``date_fr``, ``time_fr``, ``datetime_fr``).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import translation

PARIS = ZoneInfo("Europe/Paris")

_MONTHS_FR = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_DAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _french(lang: str | None) -> bool:
    return not (lang or translation.get_language() or "fr").startswith("en")


def to_paris(value):
    """An aware datetime in Paris time; naive datetimes, dates and times are left as they are."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(PARIS)
    return value


def format_time_fr(value: dt.datetime | dt.time | int, *, lang: str | None = None) -> str:
    """``8 h 30``, ``9 h``, ``0 h 05`` in French; ``8:30`` in English.

    ``value`` is a time, a datetime (aware ones are shown in Paris time) or a number of
    minutes after midnight (how opening hours are stored).
    """
    if isinstance(value, int):
        hour, minute = divmod(value, 60)
    else:
        value = to_paris(value)
        hour, minute = value.hour, value.minute
    if _french(lang):
        return f"{hour} h {minute:02d}" if minute else f"{hour} h"
    return f"{hour}:{minute:02d}"


def format_date_fr(
    value: dt.date | dt.datetime,
    *,
    weekday: bool = False,
    year: bool = True,
    lang: str | None = None,
) -> str:
    """``1er mars 2026`` / ``lundi 1er mars`` in French; ``1 March 2026`` in English."""
    value = to_paris(value)
    if _french(lang):
        day = "1er" if value.day == 1 else str(value.day)
        text = f"{day} {_MONTHS_FR[value.month - 1]}"
        prefix = _DAYS_FR[value.weekday()] + " " if weekday else ""
    else:
        text = f"{value.day} {_MONTHS_EN[value.month - 1]}"
        prefix = _DAYS_EN[value.weekday()] + " " if weekday else ""
    if year:
        text += f" {value.year}"
    return prefix + text


def format_datetime_fr(
    value: dt.datetime, *, weekday: bool = False, year: bool = True, lang: str | None = None
) -> str:
    """``1er mars 2026 à 8 h 30`` in French; ``1 March 2026, 8:30`` in English."""
    date = format_date_fr(value, weekday=weekday, year=year, lang=lang)
    time = format_time_fr(value, lang=lang)
    return f"{date} à {time}" if _french(lang) else f"{date}, {time}"
