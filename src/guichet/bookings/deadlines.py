"""Booking and cancellation deadlines: a small declarative rule language, evaluated in Paris time.

A rule is one line of text stored on an activity (``booking_rule``, ``cancellation_rule``)::

    rule     := anchor [ "at" TIME ]                       (default time: 23:59)
    anchor   := WEEKDAY "before"                           the last WEEKDAY strictly before the
                                                           session day
              | WEEKDAY "before" ["the"] "week"            the last WEEKDAY strictly before the
                                                           Monday of the session's week
              | WEEKDAY "of" ["the"] "previous" "week"     that WEEKDAY in the week (Monday to
                                                           Sunday) before the session's week
              | N ("day" | "days") "before"                N calendar days before the session day
              | N "working" ("day" | "days") "before"      N working days before the session day
                                                           (Monday-Friday, French public holidays
                                                           excluded; the session day not counted)
              | "same" "day"                               the session day itself
    WEEKDAY  := monday..sunday | lundi..dimanche
    TIME     := H:MM | HH:MM | HHhMM | HHh                 from 00:00 to 23:59

Case does not matter and extra spaces are ignored. ``parse_rule`` returns a :class:`DeadlineRule`
whose ``text`` is the canonical English spelling (``parse_rule(rule.text) == rule``).

Seed rules: Maisons-Alfort Wednesdays "sunday before at 23:59"; school holidays "tuesday before
week at 23:59"; cancellation "sunday of previous week at 23:59"; Saint-Nazaire "15 days before at
23:59".

Time zone: the deadline is a wall-clock time in Europe/Paris on a date computed from the session
date. A time that does not exist (the clocks jump from 02:00 to 03:00 on the last Sunday of
March) is moved forward by the gap: "at 02:30" gives 03:30 summer time. A time that exists twice
(03:00 becomes 02:00 on the last Sunday of October) is the later one: the deadline is the last
moment the clocks show that time.

A deadline is the first instant of the minute written: "at 23:59" is 23:59:00, and
``is_before_deadline`` is ``now <= deadline``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from guichet.bookings.calendar import is_working_day
from guichet.common.frdates import format_datetime_fr

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.UTC
MAX_LENGTH = 120
MAX_DAYS = 366
MAX_WORKING_DAYS = 100
DEFAULT_HOUR, DEFAULT_MINUTE = 23, 59

WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FRENCH_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_WEEKDAY_NUMBERS = {name: i for i, name in enumerate(WEEKDAY_NAMES)} | {
    name: i for i, name in enumerate(_FRENCH_WEEKDAYS)
}

WEEKDAY_BEFORE = "weekday_before"
WEEKDAY_BEFORE_WEEK = "weekday_before_week"
WEEKDAY_OF_PREVIOUS_WEEK = "weekday_of_previous_week"
DAYS_BEFORE = "days_before"
WORKING_DAYS_BEFORE = "working_days_before"
SAME_DAY = "same_day"
KINDS = (
    WEEKDAY_BEFORE,
    WEEKDAY_BEFORE_WEEK,
    WEEKDAY_OF_PREVIOUS_WEEK,
    DAYS_BEFORE,
    WORKING_DAYS_BEFORE,
    SAME_DAY,
)


class RuleError(ValueError):
    """A rule that cannot be understood. ``message`` says what is wrong, ``position`` is the
    index of the offending character in the text (0-based)."""

    def __init__(self, message: str, position: int = 0):
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True, slots=True)
class DeadlineRule:
    kind: str
    weekday: int | None = None  # 0 = Monday, for the weekday kinds
    count: int | None = None  # for days_before and working_days_before
    hour: int = DEFAULT_HOUR
    minute: int = DEFAULT_MINUTE

    @property
    def text(self) -> str:
        """The canonical spelling of the rule."""
        time = f"at {self.hour:02d}:{self.minute:02d}"
        if self.kind == SAME_DAY:
            return f"same day {time}"
        if self.kind in (DAYS_BEFORE, WORKING_DAYS_BEFORE):
            unit = "day" if self.count == 1 else "days"
            working = "working " if self.kind == WORKING_DAYS_BEFORE else ""
            return f"{self.count} {working}{unit} before {time}"
        name = WEEKDAY_NAMES[self.weekday]
        if self.kind == WEEKDAY_BEFORE:
            return f"{name} before {time}"
        if self.kind == WEEKDAY_BEFORE_WEEK:
            return f"{name} before week {time}"
        return f"{name} of previous week {time}"

    def __str__(self) -> str:
        return self.text

    @property
    def is_before_session(self) -> bool:
        """True when the deadline always falls on a day before the session day."""
        return self.kind != SAME_DAY

    def deadline_date(self, session_date: dt.date) -> dt.date:
        """The calendar day (Paris) of the deadline for a session on ``session_date``."""
        if isinstance(session_date, dt.datetime) or not isinstance(session_date, dt.date):
            raise TypeError("session_date must be a date")
        if self.kind == SAME_DAY:
            return session_date
        if self.kind == DAYS_BEFORE:
            return session_date - dt.timedelta(days=self.count)
        if self.kind == WORKING_DAYS_BEFORE:
            day, left = session_date, self.count
            while left:
                day -= dt.timedelta(days=1)
                if is_working_day(day):
                    left -= 1
            return day
        if self.kind == WEEKDAY_BEFORE:
            back = (session_date.weekday() - self.weekday - 1) % 7 + 1  # 1..7, strictly before
            return session_date - dt.timedelta(days=back)
        # Both week forms: the last WEEKDAY strictly before the Monday of the session's ISO week
        # is always that WEEKDAY of the previous week (weeks run Monday to Sunday).
        monday = session_date - dt.timedelta(days=session_date.weekday())
        return monday - dt.timedelta(days=7) + dt.timedelta(days=self.weekday)

    def deadline(self, session_date: dt.date) -> dt.datetime:
        """The deadline for a session on ``session_date``: an aware datetime in Europe/Paris."""
        return paris_datetime(self.deadline_date(session_date), self.hour, self.minute)


def paris_datetime(day: dt.date, hour: int, minute: int) -> dt.datetime:
    """``day`` at ``hour:minute`` Paris wall-clock time, made valid across DST changes: a time
    in the spring gap moves forward by the gap, a time repeated in autumn is the later one."""
    naive = dt.datetime(day.year, day.month, day.day, hour, minute)  # noqa: DTZ001 - made aware below
    first = naive.replace(tzinfo=PARIS, fold=0)
    second = naive.replace(tzinfo=PARIS, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    round_trip = first.astimezone(UTC).astimezone(PARIS)
    if round_trip.replace(tzinfo=None) != naive:  # in the gap: 02:30 -> 03:30 summer time
        return round_trip
    return second.astimezone(UTC).astimezone(PARIS)  # repeated hour: the later one


def is_before_deadline(rule: DeadlineRule, session_date: dt.date, now: dt.datetime) -> bool:
    """True until the end of the deadline's minute: "jusqu'à 23 h 59" includes 23:59:59."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    # In UTC: wall-clock arithmetic would lose the fold of a time that happens twice in October.
    return now < rule.deadline(session_date).astimezone(dt.UTC) + dt.timedelta(minutes=1)


# --- parsing ----------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<time>[0-9]{1,2}\s*[:h]\s*[0-9]{2}(?![0-9:])|[0-9]{1,2}\s*h(?![^\W\d_]))"
    r"|(?P<number>[0-9]+)"
    r"|(?P<word>[^\W\d_]+)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # time, number, word
    value: str  # casefolded
    raw: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if not match:
            raise RuleError(
                _("unexpected character '%(char)s' at position %(position)s")
                % {"char": text[position], "position": position},
                position,
            )
        kind = match.lastgroup
        if kind != "space":
            raw = match.group(0)
            tokens.append(_Token(kind, raw.casefold(), raw, position))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def next(self) -> _Token | None:
        token = self.peek()
        self.index += 1
        return token

    def end_position(self) -> int:
        return len(self.text.rstrip())

    def expect(self, *words: str) -> _Token:
        token = self.next()
        if token is not None and token.kind == "word" and token.value in words:
            return token
        expected = " or ".join(f"'{w}'" for w in words)
        if token is None:
            raise RuleError(
                _("expected %(expected)s at position %(position)s, found the end of the rule")
                % {"expected": expected, "position": self.end_position()},
                self.end_position(),
            )
        raise RuleError(
            _("expected %(expected)s at position %(position)s, found '%(found)s'")
            % {"expected": expected, "position": token.position, "found": token.raw},
            token.position,
        )

    def accept(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.value == word:
            self.index += 1
            return True
        return False

    def parse(self) -> DeadlineRule:
        first = self.peek()
        if first is None:
            raise RuleError(_("the rule is empty; write for example 'sunday before at 23:59'"), 0)
        if first.kind == "number":
            rule = self.days()
        elif first.kind == "word" and first.value == "same":
            self.next()
            self.expect("day")
            rule = DeadlineRule(SAME_DAY)
        elif first.kind == "word":
            rule = self.weekday()
        else:
            raise RuleError(
                _(
                    "expected a weekday, a number of days or 'same day' at position %(position)s, "
                    "found '%(found)s'"
                )
                % {"position": first.position, "found": first.raw},
                first.position,
            )
        hour, minute = self.time()
        extra = self.peek()
        if extra is not None and extra.kind == "time":
            raise RuleError(
                _("expected 'at' before the time at position %(position)s")
                % {"position": extra.position},
                extra.position,
            )
        if extra is not None:
            raise RuleError(
                _("unexpected '%(found)s' at position %(position)s after the end of the rule")
                % {"found": extra.raw, "position": extra.position},
                extra.position,
            )
        return DeadlineRule(rule.kind, rule.weekday, rule.count, hour, minute)

    def weekday(self) -> DeadlineRule:
        token = self.next()
        number = _WEEKDAY_NUMBERS.get(token.value)
        if number is None:
            raise RuleError(
                _(
                    "unknown weekday '%(word)s' at position %(position)s; "
                    "expected monday..sunday or lundi..dimanche"
                )
                % {"word": token.raw, "position": token.position},
                token.position,
            )
        keyword = self.expect("before", "of")
        if keyword.value == "before":
            if self.accept("the"):
                self.expect("week")
                return DeadlineRule(WEEKDAY_BEFORE_WEEK, weekday=number)
            if self.accept("week"):
                return DeadlineRule(WEEKDAY_BEFORE_WEEK, weekday=number)
            return DeadlineRule(WEEKDAY_BEFORE, weekday=number)
        self.accept("the")
        self.expect("previous")
        self.expect("week")
        return DeadlineRule(WEEKDAY_OF_PREVIOUS_WEEK, weekday=number)

    def days(self) -> DeadlineRule:
        token = self.next()
        count = int(token.value)
        working = self.accept("working")
        limit = MAX_WORKING_DAYS if working else MAX_DAYS
        if not 1 <= count <= limit:
            raise RuleError(
                _(
                    "number of days %(number)s at position %(position)s is out of range; "
                    "expected 1 to %(max)s (use 'same day' for the session day)"
                )
                % {"number": token.raw, "position": token.position, "max": limit},
                token.position,
            )
        self.expect("days", "day")
        self.expect("before")
        return DeadlineRule(WORKING_DAYS_BEFORE if working else DAYS_BEFORE, count=count)

    def time(self) -> tuple[int, int]:
        if not self.accept("at"):
            return DEFAULT_HOUR, DEFAULT_MINUTE
        token = self.next()
        if token is None:
            raise RuleError(
                _("expected a time (HH:MM) at position %(position)s, found the end of the rule")
                % {"position": self.end_position()},
                self.end_position(),
            )
        if token.kind != "time":
            position, found = token.position, token.raw
            raise RuleError(
                _(
                    "invalid time '%(time)s' at position %(position)s; expected HH:MM from 00:00 to 23:59"
                )
                % {"time": found, "position": position},
                position,
            )
        hour, _sep, minute = re.split(r"\s*([:h])\s*", token.value, maxsplit=1)
        hour, minute = int(hour), int(minute or 0)
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise RuleError(
                _(
                    "invalid time '%(time)s' at position %(position)s; expected HH:MM from 00:00 to 23:59"
                )
                % {"time": token.raw, "position": token.position},
                token.position,
            )
        return hour, minute


def parse_rule(text: str) -> DeadlineRule:
    """Parse a deadline rule; raises :class:`RuleError` naming what is wrong and where."""
    if not isinstance(text, str):
        raise RuleError(_("the rule must be text"), 0)
    if len(text) > MAX_LENGTH:
        raise RuleError(
            _("the rule is too long (%(length)s characters, at most %(max)s)")
            % {"length": len(text), "max": MAX_LENGTH},
            MAX_LENGTH,
        )
    return _Parser(text).parse()


# --- plain-language description -----------------------------------------------------------------


def format_deadline(deadline: dt.datetime, *, with_year: bool = False) -> str:
    """'dimanche 3 décembre à 23 h 59' ('Sunday 3 December, 23:59' in English), in Paris time.

    Written by ``guichet.common.frdates`` like every other date and time of the site ("1er",
    "8 h 30"), so a deadline reads the same on the calendar, in an e-mail and in an error."""
    if deadline.tzinfo is None:
        raise ValueError("deadline must be an aware datetime")
    return format_datetime_fr(deadline, weekday=True, year=with_year)


def describe_deadline(
    deadline: dt.datetime,
    action: str,
    *,
    session_date: dt.date | None = None,
    now: dt.datetime | None = None,
) -> str:
    """A deadline in plain words: "bookable until Sunday 3 December at 23:59" (French:
    "réservable jusqu'au dimanche 3 décembre à 23 h 59"). ``action`` is "book" or "cancel".

    The year is added when it differs from the session's year or from ``now``'s year (so a
    deadline in late December for a January session is never ambiguous)."""
    if deadline.tzinfo is None:
        raise ValueError("deadline must be an aware datetime")
    year = deadline.astimezone(PARIS).year
    with_year = (session_date is not None and session_date.year != year) or (
        now is not None and now.astimezone(PARIS).year != year
    )
    when = format_deadline(deadline, with_year=with_year)
    if action == "book":
        return _("bookable until %(when)s") % {"when": when}
    if action == "cancel":
        return _("cancellable until %(when)s") % {"when": when}
    raise ValueError(f"unknown action {action!r}; expected 'book' or 'cancel'")
