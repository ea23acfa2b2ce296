"""The household's iCalendar feed (RFC 5545), generated with the standard library only.

The feed URL carries a secret token so that a calendar application can subscribe without
logging in. The token is an HMAC of the household's id (keyed by ``SECRET_KEY``): nothing is
stored, and rotating ``SECRET_KEY`` revokes every feed.
"""

from __future__ import annotations

import datetime as dt
import hmac

from django.utils.crypto import salted_hmac

SALT = "guichet.bookings.ical"
PARTS_HOURS = {
    # Shown times of a day part; a feed is informative, the centre's own hours prevail.
    "day": ((8, 30), (17, 30)),
    "morning": ((8, 30), (12, 0)),
    "meal": ((12, 0), (13, 30)),
    "afternoon": ((13, 30), (17, 30)),
}


def household_token(household_id: int) -> str:
    return salted_hmac(SALT, str(household_id)).hexdigest()[:32]


def check_token(household_id: int, token: str) -> bool:
    return hmac.compare_digest(household_token(household_id), token or "")


def _escape(text: str) -> str:
    return (
        str(text).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Lines longer than 75 octets are folded (RFC 5545 §3.1)."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line
    out, current = [], b""
    for ch in line:
        b = ch.encode("utf-8")
        limit = 75 if not out else 74
        if len(current) + len(b) > limit:
            out.append(current.decode("utf-8"))
            current = b""
        current += b
    out.append(current.decode("utf-8"))
    return "\r\n ".join(out)


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def span(parts: list[str]) -> tuple[tuple[int, int], tuple[int, int]] | None:
    hours = [PARTS_HOURS[p] for p in parts if p in PARTS_HOURS]
    if not hours:
        return None
    return min(h[0] for h in hours), max(h[1] for h in hours)


def build_calendar(*, name: str, events: list[dict], now: dt.datetime, host: str = "guichet") -> str:
    """``events``: dicts with uid, date, summary, location, description, parts (list of part
    codes, to choose times; all-day event when unknown)."""
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Guichet//Family portal//FR",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_escape(name)}",
        "X-WR-TIMEZONE:Europe/Paris",
    ]
    stamp = _utc(now)
    for ev in events:
        lines += ["BEGIN:VEVENT", f"UID:{ev['uid']}@{host}", f"DTSTAMP:{stamp}"]
        times = span(ev.get("parts") or [])
        day: dt.date = ev["date"]
        if times:
            start = dt.datetime(day.year, day.month, day.day, *times[0], tzinfo=paris)
            end = dt.datetime(day.year, day.month, day.day, *times[1], tzinfo=paris)
            lines += [f"DTSTART:{_utc(start)}", f"DTEND:{_utc(end)}"]
        else:
            lines += [
                f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
                f"DTEND;VALUE=DATE:{day + dt.timedelta(days=1):%Y%m%d}",
            ]
        lines.append(f"SUMMARY:{_escape(ev['summary'])}")
        if ev.get("location"):
            lines.append(f"LOCATION:{_escape(ev['location'])}")
        if ev.get("description"):
            lines.append(f"DESCRIPTION:{_escape(ev['description'])}")
        lines += ["STATUS:CONFIRMED", "TRANSP:OPAQUE", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
