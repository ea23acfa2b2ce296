"""Logging filters that keep personal data out of the logs.

Django logs every refused or failed request with its path ("Not Found: /...", "Forbidden (CSRF
token missing.): /...", "Internal Server Error: /..."), and the development server logs each
request line. A path can carry personal data or secrets: a family file number, a signed link
(whose payload holds an e-mail address), or whatever someone typed. ``WithholdPaths`` replaces
the path by the route it matched (``accounts/verify/<str:token>/``), or by ``<unmatched path>``,
so that the log still says which page answered what, and nothing about whom.
"""

from __future__ import annotations

import logging
import re

from django.urls import Resolver404, resolve

UNMATCHED = "<unmatched path>"
_REQUEST_LINE = re.compile(r"^(?P<method>[A-Z]+) (?P<target>\S+)(?P<rest> HTTP/[\d.]+)?$")


def route_of(path: str) -> str:
    """The URL pattern that ``path`` matches (no value from the path), or ``UNMATCHED``."""
    try:
        match = resolve(path.split("?", 1)[0])
    except (Resolver404, ValueError, TypeError):
        return UNMATCHED
    except Exception:  # noqa: BLE001 - a log line must never fail on a strange path
        return UNMATCHED
    return "/" + match.route if match.route else UNMATCHED


class WithholdPaths(logging.Filter):
    """On ``django.request``, ``django.security.*`` and ``django.server`` records: the path in
    the message becomes its route. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._withhold(record)
        except Exception:  # noqa: BLE001 - never lose a log record over redaction
            record.msg, record.args = "%s", (f"{record.levelname} (message withheld)",)
        return True

    @staticmethod
    def _withhold(record: logging.LogRecord) -> None:
        request = getattr(record, "request", None)
        path = getattr(request, "path", None) if request is not None else None
        args = record.args if isinstance(record.args, tuple) else ()
        if path and args:
            route = route_of(path)
            record.args = tuple(route if a == path or a == getattr(request, "path_info", None) else a for a in args)
        elif record.name == "django.server" and args:
            # The development server: '"%s" %s %s' % ('GET /path?query HTTP/1.1', '404', '179').
            m = _REQUEST_LINE.match(str(args[0]))
            first = f'{m["method"]} {route_of(m["target"])}{m["rest"] or ""}' if m else "<request withheld>"
            record.args = (first, *args[1:])
        if isinstance(record.msg, str) and path and path in record.msg:
            record.msg = record.msg.replace(path, route_of(path))
