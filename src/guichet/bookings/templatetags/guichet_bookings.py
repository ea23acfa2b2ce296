"""Small template helpers of the family portal: state icons (a shape beside the words)."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

register = template.Library()

_PATHS = {
    # check mark
    "booked": "M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z",
    "ok": "M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z",
    # clock
    "waitlisted": "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 11h-5v-2h3V6h2z",
    "received": "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 11h-5v-2h3V6h2z",
    # star
    "offered": "M12 2 15 9h7l-5.6 4.3L18.5 21 12 16.6 5.5 21l2.1-7.7L2 9h7z",
    # plus
    "free": "M11 5h2v6h6v2h-6v6h-2v-6H5v-2h6z",
    # full circle with bar
    "full": "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zM6 11h12v2H6z",
    # cross
    "closed": "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z",
    "refused": "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z",
    "suspended": "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z",
    "cancelled": "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z",
    # arrow: booked at another centre that day
    "booked_elsewhere": "M12 4l-1.4 1.4 5.6 5.6H4v2h12.2l-5.6 5.6L12 20l8-8z",
    # padlock
    "deadline_passed": "M6 10V8a6 6 0 1 1 12 0v2h1v12H5V10zm2 0h8V8a4 4 0 1 0-8 0z",
    "not_open": "M6 10V8a6 6 0 1 1 12 0v2h1v12H5V10zm2 0h8V8a4 4 0 1 0-8 0z",
}


@register.simple_tag
def state_icon(state: str):
    path = _PATHS.get(state)
    if not path:
        return ""
    return format_html(
        '<svg class="icon" aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="16" height="16">'
        '<path d="{}" fill="currentColor"/></svg>',
        mark_safe(path),  # noqa: S308 - constant above
    )


@register.simple_tag
def free_for(free: dict, code: str):
    """Free places for one unit, or None when unknown."""
    if not free:
        return None
    value = free.get(code)
    return value if isinstance(value, int) else None


PART_LABELS = {
    "morning": gettext_lazy("morning"),
    "meal": gettext_lazy("meal"),
    "afternoon": gettext_lazy("afternoon"),
    "day": gettext_lazy("whole day"),
}


@register.filter
def part_label(code: str) -> str:
    """A part of the day as people say it ("matin", "repas"); an unusual code is shown as is."""
    return str(PART_LABELS.get(code, code))
