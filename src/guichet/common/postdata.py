"""Fields of a POST that a view reads by hand, without a Django form.

``QueryDict.get`` returns the last of a field sent several times and lets any character through:
a NUL then reaches the database (PostgreSQL refuses it, a 500) and a doubled field is silently
half read. ``post_values`` reads each field once and refuses both on the field, in words.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping

from django.http import QueryDict
from django.utils.translation import gettext as _


def post_values(data: QueryDict, labels: Mapping[str, str], errors: dict[str, str], *,
                lines: Collection[str] = ()) -> dict[str, str]:
    """Each field of ``labels`` (name -> label as the form shows it) as one stripped string, ""
    when absent. A field sent several times gets "" and an error naming it in ``errors``; one
    holding a control character (NUL included) gets an error and its value without them, to show
    again. The fields named in ``lines`` (text areas) may hold line breaks (``\n``, ``\r``).
    The first error of a field stays: check the other rules with ``errors.setdefault``."""
    values: dict[str, str] = {}
    for name, label in labels.items():
        sent = data.getlist(name)
        if len(sent) > 1:
            values[name] = ""
            errors.setdefault(name, _("%(field)s: this field was sent more than once; fill it in once and send "
                                      "the form again.") % {"field": label})
            continue
        value = sent[0].strip() if sent else ""
        # Control characters (Unicode category Cc: NUL, tab, line breaks...), but a text area's
        # line breaks.
        allowed = "\r\n" if name in lines else ""
        if any(ch not in allowed and unicodedata.category(ch) == "Cc" for ch in value):
            value = "".join(ch for ch in value if ch in allowed or unicodedata.category(ch) != "Cc")
            errors.setdefault(name, (
                _("%(field)s: remove the control characters (null character, tab or other invisible "
                  "character); line breaks are fine.") if allowed else
                _("%(field)s: remove the control characters (null character, tab, line break or other "
                  "invisible character).")) % {"field": label})
        values[name] = value
    return values
