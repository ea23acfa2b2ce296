"""Opening hours: a small declarative schedule, evaluated in Paris time.

Stored as JSON on a contact point and written the same way in notice files::

    hours:
      - days: mon-fri
        slots: ["08:30-11:00", "13:30-17:00"]
      - days: sat
        slots: ["08:30-11:00"]
        access: appointment          # walk_in (default) or appointment
      - days: mon-sat
        slots: ["08:30-17:00"]
        audience: non_residents      # all (default), residents, non_residents
        access: appointment
      - days: mon-sun
        except: [thu]
        slots: ["09:00-12:00"]
    exceptions:                      # optional, dated
      - {date: 2024-05-25, closed: true, note: "Matinée annulée"}
    public_holidays: closed          # closed (default) or open

``hours: always`` means 24 hours a day, every day (on-call lines). Everything here is pure:
``now`` is always passed in.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from django.utils.translation import gettext as _

PARIS = ZoneInfo("Europe/Paris")
DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
AUDIENCES = ("all", "residents", "non_residents")
ACCESSES = ("walk_in", "appointment")
_SLOT_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class HoursError(ValueError):
    """A schedule that cannot be understood; ``path`` names the faulty field."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class Slot:
    start: int  # minutes since midnight
    end: int  # minutes since midnight, up to 1440

    def text(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class Rule:
    days: frozenset[int]  # 0 = Monday
    slots: tuple[Slot, ...]
    audience: str = "all"
    access: str = "walk_in"
    note: str = ""
    note_en: str = ""


@dataclass(frozen=True, slots=True)
class DateException:
    date: dt.date
    closed: bool
    slots: tuple[Slot, ...] = ()
    note: str = ""
    note_en: str = ""


@dataclass(frozen=True, slots=True)
class Schedule:
    rules: tuple[Rule, ...] = ()
    exceptions: tuple[DateException, ...] = ()
    closed_on_public_holidays: bool = True
    always: bool = False

    @property
    def empty(self) -> bool:
        return not self.always and not self.rules


@dataclass(frozen=True, slots=True)
class OpenState:
    open: bool
    closes_at: dt.datetime | None = None
    next_open_at: dt.datetime | None = None
    access: str | None = None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_days(value: Any, path: str) -> set[int]:
    items = value if isinstance(value, list) else [p for p in str(value).replace(" ", "").split(",") if p]
    if not items:
        raise HoursError(path, _("no day given"))
    days: set[int] = set()
    for item in items:
        item = str(item).strip().lower()
        if "-" in item:
            a, _sep, b = item.partition("-")
            if a not in DAY_CODES or b not in DAY_CODES:
                raise HoursError(path, _("'%(value)s' is not a day range like mon-fri") % {"value": item})
            i, j = DAY_CODES.index(a), DAY_CODES.index(b)
            if j < i:
                raise HoursError(path, _("'%(value)s' runs backwards") % {"value": item})
            days.update(range(i, j + 1))
        elif item in DAY_CODES:
            days.add(DAY_CODES.index(item))
        else:
            raise HoursError(path, _("'%(value)s' is not a day (mon, tue, ... sun)") % {"value": item})
    return days


def _parse_slots(value: Any, path: str) -> tuple[Slot, ...]:
    if not isinstance(value, list) or not value:
        raise HoursError(path, _("give a list of time slots like \"08:30-11:00\""))
    slots = []
    for i, raw in enumerate(value):
        m = _SLOT_RE.match(str(raw))
        p = f"{path}[{i}]"
        if not m:
            raise HoursError(p, _("'%(value)s' is not a slot like 08:30-11:00") % {"value": raw})
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise HoursError(p, _("'%(value)s' is not a valid time") % {"value": raw})
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            raise HoursError(p, _("'%(value)s' ends before it starts") % {"value": raw})
        slots.append(Slot(start, end))
    slots.sort(key=lambda s: s.start)
    for a, b in zip(slots, slots[1:], strict=False):
        if b.start < a.end:
            raise HoursError(path, _("slots %(a)s and %(b)s overlap") % {"a": a.text(), "b": b.text()})
    return tuple(slots)


def parse_schedule(data: Any, path: str = "hours") -> Schedule:
    """Validate a schedule written as above; raise ``HoursError`` naming the faulty field."""
    if data in (None, "", {}, []):
        return Schedule()
    if data == "always":
        return Schedule(always=True, closed_on_public_holidays=False)
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict):
        raise HoursError(path, _("expected a list of rules or 'always'"))
    unknown = set(data) - {"rules", "exceptions", "public_holidays", "always"}
    if unknown:
        raise HoursError(path, _("unknown field(s): %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    if data.get("always"):
        return Schedule(always=True, closed_on_public_holidays=False)
    rules = []
    for i, r in enumerate(data.get("rules") or []):
        p = f"{path}[{i}]"
        if not isinstance(r, dict):
            raise HoursError(p, _("expected a rule with days and slots"))
        unknown = set(r) - {"days", "except", "slots", "audience", "access", "note", "note_en"}
        if unknown:
            raise HoursError(p, _("unknown field(s): %(fields)s") % {"fields": ", ".join(sorted(unknown))})
        if "days" not in r:
            raise HoursError(f"{p}.days", _("missing"))
        days = _parse_days(r["days"], f"{p}.days")
        if r.get("except"):
            days -= _parse_days(r["except"], f"{p}.except")
        if not days:
            raise HoursError(f"{p}.days", _("no day left once exceptions are removed"))
        audience = r.get("audience", "all")
        if audience not in AUDIENCES:
            raise HoursError(f"{p}.audience", _("must be one of %(values)s") % {"values": ", ".join(AUDIENCES)})
        access = r.get("access", "walk_in")
        if access not in ACCESSES:
            raise HoursError(f"{p}.access", _("must be one of %(values)s") % {"values": ", ".join(ACCESSES)})
        rules.append(
            Rule(frozenset(days), _parse_slots(r.get("slots"), f"{p}.slots"), audience, access,
                 str(r.get("note", "")), str(r.get("note_en", "")))
        )
    exceptions = []
    for i, e in enumerate(data.get("exceptions") or []):
        p = f"{path}.exceptions[{i}]"
        if not isinstance(e, dict) or "date" not in e:
            raise HoursError(p, _("expected a date and either closed: true or slots"))
        try:
            day = e["date"] if isinstance(e["date"], dt.date) else dt.date.fromisoformat(str(e["date"]))
        except ValueError:
            raise HoursError(f"{p}.date", _("'%(value)s' is not a date (YYYY-MM-DD)") % {"value": e["date"]}) from None
        closed = bool(e.get("closed", False))
        slots = () if closed else _parse_slots(e.get("slots"), f"{p}.slots")
        exceptions.append(DateException(day, closed, slots, str(e.get("note", "")), str(e.get("note_en", ""))))
    ph = data.get("public_holidays", "closed")
    if ph not in ("closed", "open"):
        raise HoursError(f"{path}.public_holidays", _("must be 'closed' or 'open'"))
    return Schedule(tuple(rules), tuple(exceptions), ph == "closed")


def schedule_to_data(s: Schedule) -> Any:
    """The stored (and dumped) form of a schedule; ``parse_schedule`` reads it back unchanged."""
    if s.always:
        return "always"
    if s.empty and not s.exceptions and s.closed_on_public_holidays:
        return []
    rules = []
    for r in s.rules:
        d: dict[str, Any] = {
            "days": ",".join(DAY_CODES[i] for i in sorted(r.days)),
            "slots": [sl.text() for sl in r.slots],
        }
        if r.audience != "all":
            d["audience"] = r.audience
        if r.access != "walk_in":
            d["access"] = r.access
        if r.note:
            d["note"] = r.note
        if r.note_en:
            d["note_en"] = r.note_en
        rules.append(d)
    if not s.exceptions and s.closed_on_public_holidays:
        return rules
    out: dict[str, Any] = {"rules": rules}
    if s.exceptions:
        out["exceptions"] = [
            {"date": e.date.isoformat(), **({"closed": True} if e.closed else {"slots": [x.text() for x in e.slots]}),
             **({"note": e.note} if e.note else {}), **({"note_en": e.note_en} if e.note_en else {})}
            for e in s.exceptions
        ]
    if not s.closed_on_public_holidays:
        out["public_holidays"] = "open"
    return out


@lru_cache(maxsize=32)
def _french_holidays(year: int) -> holidays.HolidayBase:
    return holidays.France(years=year)


def is_public_holiday(day: dt.date) -> bool:
    return day in _french_holidays(day.year)


def _slots_on(s: Schedule, day: dt.date, audience: str | None) -> list[tuple[Slot, str]]:
    if s.always:
        return [(Slot(0, 1440), "walk_in")]
    for e in s.exceptions:
        if e.date == day:
            return [] if e.closed else [(sl, "walk_in") for sl in e.slots]
    if s.closed_on_public_holidays and is_public_holiday(day):
        return []
    out = []
    for r in s.rules:
        if day.weekday() in r.days and (audience is None or r.audience in ("all", audience)):
            out.extend((sl, r.access) for sl in r.slots)
    out.sort(key=lambda x: x[0].start)
    return out


def _at(day: dt.date, minutes: int) -> dt.datetime:
    if minutes >= 1440:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=PARIS)
    return dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=PARIS)


def open_state(s: Schedule, now: dt.datetime, audience: str | None = None, horizon_days: int = 31) -> OpenState:
    """Whether the place is open at ``now`` (Paris time), until when, and when it next opens."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if s.empty:
        return OpenState(open=False)
    local = now.astimezone(PARIS)
    today = local.date()
    minute = local.hour * 60 + local.minute
    for slot, access in _slots_on(s, today, audience):
        if slot.start <= minute < slot.end:
            closes = _at(today, slot.end)
            if closes <= now:  # inside the hour that repeats when the clocks go back
                closes = closes.replace(fold=1)
            return OpenState(open=True, closes_at=closes, access=access)
    for offset in range(horizon_days + 1):
        day = today + dt.timedelta(days=offset)
        for slot, access in _slots_on(s, day, audience):
            if offset > 0 or slot.start > minute:
                return OpenState(open=False, next_open_at=_at(day, slot.start), access=access)
    return OpenState(open=False)


# --- Human-readable, in the active language -------------------------------------------------

def _day_names() -> list[str]:
    return [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday")]


def format_time(minutes: int) -> str:
    """8 h 30 in French, 8:30 in English (the one format of ``guichet.common.frdates``)."""
    from guichet.common.frdates import format_time_fr

    return format_time_fr(minutes)


def _describe_days(days: frozenset[int]) -> str:
    names = _day_names()
    ordered = sorted(days)
    if len(ordered) == 7:
        return _("every day")
    if len(ordered) >= 3 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return _("%(first)s to %(last)s") % {"first": names[ordered[0]], "last": names[ordered[-1]]}
    return ", ".join(names[d] for d in ordered)


def describe_slots(slots: tuple[Slot, ...]) -> str:
    parts = [_("%(start)s to %(end)s") % {"start": format_time(sl.start), "end": format_time(sl.end)} for sl in slots]
    return _(" and ").join(parts) if len(parts) > 1 else parts[0]


def describe(s: Schedule) -> list[str]:
    """One line per rule, e.g. "Lundi au vendredi : 8 h 30 à 11 h et 13 h 30 à 17 h"."""
    if s.always:
        return [_("24 hours a day, 7 days a week")]
    lines = []
    for r in s.rules:
        line = _("%(days)s: %(slots)s") % {"days": _describe_days(r.days), "slots": describe_slots(r.slots)}
        qualifiers = []
        if r.audience == "residents":
            qualifiers.append(_("residents"))
        elif r.audience == "non_residents":
            qualifiers.append(_("non-residents"))
        if r.access == "appointment":
            qualifiers.append(_("by appointment only"))
        if qualifiers:
            line += " (" + ", ".join(qualifiers) + ")"
        from guichet.common.i18n import pick

        note = pick(r.note, r.note_en)
        if note:
            line += " — " + note
        lines.append(line[0].upper() + line[1:])
    return lines
