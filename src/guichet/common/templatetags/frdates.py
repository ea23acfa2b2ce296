"""``{% load frdates %}``: ``{{ value|date_fr }}``, ``{{ value|time_fr }}``, ``{{ value|datetime_fr }}``.

See :mod:`guichet.common.frdates`. ``date_fr`` takes an optional argument: ``"weekday"``
(``lundi 1er mars 2026``), ``"noyear"`` (``1er mars``) or both (``"weekday noyear"``).
"""

from __future__ import annotations

from django import template

from guichet.common.frdates import format_date_fr, format_datetime_fr, format_time_fr

register = template.Library()


def _options(arg: str | None) -> dict:
    words = (arg or "").split()
    return {"weekday": "weekday" in words, "year": "noyear" not in words}


@register.filter
def date_fr(value, arg: str | None = None) -> str:
    if value in (None, ""):
        return ""
    return format_date_fr(value, **_options(arg))


@register.filter
def time_fr(value) -> str:
    if value in (None, ""):
        return ""
    return format_time_fr(value)


@register.filter
def datetime_fr(value, arg: str | None = None) -> str:
    if value in (None, ""):
        return ""
    return format_datetime_fr(value, **_options(arg))
