"""Presentation helpers for the public status pages (live and static export)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _

from guichet.catalog.hours import parse_schedule
from guichet.catalog.models import Channel
from guichet.common.frdates import format_date_fr, format_datetime_fr, format_time_fr
from guichet.common.i18n import pick

from ..models import ANY_CHANNEL, State

register = template.Library()
PARIS = ZoneInfo("Europe/Paris")

STATE_CLASS = {"normal": "normal", "degraded": "degraded", "suspended": "suspended"}


def _paris(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(PARIS) if value.tzinfo else value
    return value


def format_datetime(value) -> str:
    """"5 décembre 2022 à 14 h 30" / "5 December 2022, 14:30", in Paris time."""
    if not value:
        return ""
    value = _paris(value)
    if not isinstance(value, dt.datetime):
        return format_date(value)
    if (value.hour, value.minute, value.second) == (0, 0, 0):
        # A notice that gives only a date ("mis à jour le 05/12/2022") is stored at midnight,
        # Paris time: show the date alone rather than a made-up "à 0 h".
        return format_date(value)
    return format_datetime_fr(value)


def format_date(value) -> str:
    """"1er mars 2026" / "1 March 2026", in Paris time (one format: common.frdates)."""
    if not value:
        return ""
    return format_date_fr(value)


@register.filter
def paris_datetime(value) -> str:
    return format_datetime(value)


@register.filter
def paris_date(value) -> str:
    return format_date(value)


@register.simple_tag
def when(value, date_only=False):
    """A ``<time>`` element with a machine-readable datetime and a human one (Paris time)."""
    if not value:
        return ""
    value = _paris(value)
    text = format_date(value) if date_only or not isinstance(value, dt.datetime) else format_datetime(value)
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), text)


@register.filter
def state_label(state: str) -> str:
    try:
        return str(State(state).label)
    except ValueError:
        return state


@register.filter
def channel_name(value: str) -> str:
    if value == ANY_CHANNEL:
        return _("All channels")
    try:
        return str(Channel(value).label)
    except ValueError:
        return value


@register.filter
def tel_href(number: str) -> str:
    """``02 44 73 43 00`` -> ``tel:+33244734300``."""
    digits = re.sub(r"[^\d+]", "", number or "")
    if digits.startswith("+"):
        return "tel:" + digits
    if len(digits) == 10 and digits.startswith("0"):
        return "tel:+33" + digits[1:]
    return "tel:" + digits


def _when_relative(moment: dt.datetime, now: dt.datetime) -> str:
    moment, today = moment.astimezone(PARIS), now.astimezone(PARIS).date()
    time = format_time_fr(moment)
    if moment.date() == today:
        return _("today at %(time)s") % {"time": time}
    if moment.date() == today + dt.timedelta(days=1):
        return _("tomorrow at %(time)s") % {"time": time}
    return _("%(day)s at %(time)s") % {"day": format_date_fr(moment, weekday=True, year=False), "time": time}


def open_label(cv, now: dt.datetime) -> dict | None:
    """What the "open now" indicator says for a contact, or None when it has no hours."""
    st = cv.state
    if st is None:
        return None
    if st.open:
        if parse_schedule(cv.contact.hours).always:
            text = _("Open now (24 hours a day)")
        else:
            closes = st.closes_at.astimezone(PARIS)
            values = {"time": format_time_fr(closes)}
            if st.access == "appointment":
                text = _("Open now by appointment, until %(time)s") % values
            else:
                text = _("Open now, until %(time)s") % values
        return {"open": True, "text": text}
    if st.next_open_at:
        values = {"when": _when_relative(st.next_open_at, now)}
        if st.access == "appointment":
            text = _("Closed — opens %(when)s (by appointment)") % values
        else:
            text = _("Closed — opens %(when)s") % values
        return {"open": False, "text": text}
    return {"open": False, "text": _("Closed")}


@register.simple_tag
def open_indicator(cv, now):
    return open_label(cv, now)


def target_text(t) -> str:
    """A restoration target in words: its own text first, else its dates."""
    text = pick(t.text, t.text_en)
    if t.precision == "exact" and t.earliest:
        dates = _("on %(date)s") % {"date": format_date(t.earliest)}
    elif t.earliest and t.latest:
        dates = _("between %(start)s and %(end)s") % {"start": format_date(t.earliest), "end": format_date(t.latest)}
    elif t.earliest:
        dates = _("from %(date)s") % {"date": format_date(t.earliest)}
    elif t.latest:
        dates = _("by %(date)s") % {"date": format_date(t.latest)}
    else:
        dates = ""
    if text and dates:
        return f"{text} ({dates})"
    if text or dates:
        return text or dates
    return _("No date yet")


@register.filter(name="target_text")
def target_text_filter(t) -> str:
    return target_text(t)


@register.simple_tag
def service_url(links, slug):
    return links.service(slug)


@register.filter
def org_names(organisations) -> str:
    return ", ".join(pick(o.name, o.name_en) for o in organisations)


@register.simple_tag
def new_seen():
    """A fresh set, to remember which contacts a service has already shown in full."""
    return set()


@register.simple_tag
def contact_groups(contacts, seen=None):
    """Contacts sharing a label, kind and hours shown as one box with several numbers.

    A group already shown in full earlier in the same service (``seen``) is marked ``repeat``:
    the template then leaves out its hours, which the reader has just read.
    """
    groups: list[dict] = []
    index: dict[tuple, dict] = {}
    for cv in contacts:
        c = cv.contact
        key = (c.kind, c.label, c.label_en, c.note, c.note_en, repr(c.hours), c.valid_until, c.temporary)
        if key in index:
            index[key]["values"].append(c)
            continue
        group = {"cv": cv, "contact": c, "values": [c], "repeat": False, "key": key}
        index[key] = group
        groups.append(group)
    for g in groups:
        marker = (g["key"], tuple(c.pk for c in g["values"]))
        if seen is not None:
            g["repeat"] = marker in seen
            seen.add(marker)
    return groups
