"""Template helpers of the journal: a checkpoint shown so that it fits a phone screen."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()
_LONG = re.compile(r"[0-9a-f]{32,}|[A-Za-z0-9+/=]{40,}")


@register.filter
def checkpoint_lines(checkpoint) -> str:
    """The checkpoint's text, one line per ``<br>``; long hashes may wrap (``<wbr>`` every 16
    characters) without changing the text that is copied."""
    def breakable(match):
        token = match.group(0)
        return "<wbr>".join(token[i:i + 16] for i in range(0, len(token), 16))

    lines = [_LONG.sub(breakable, escape(line)) for line in checkpoint.text().splitlines()]
    return mark_safe("<br>".join(lines))  # noqa: S308 (escaped above, only <wbr> and <br> added)
