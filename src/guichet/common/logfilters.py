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


class WithholdDatabaseValues(logging.Filter):
    """An integrity or data error quotes the values the database refused (PostgreSQL: ``DETAIL:
    Key (email)=(...) already exists``): a logged traceback keeps its frames and the error's
    class, not its text. Other errors, operational ones included, keep their message.
    Sets ``exc_text``, which formatters print instead of formatting ``exc_info`` again."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            try:
                record.exc_text = _withheld_traceback(record.exc_info[1])
            except Exception:  # noqa: BLE001 - never lose a log record over redaction
                record.exc_text = "(traceback withheld)"
        return True


def _withheld_traceback(exc: BaseException) -> str | None:
    """The traceback with its messages withheld when an integrity or data error is in its chain,
    or None (format as usual) otherwise."""
    import traceback

    chain, seen = [], set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    # Integrity and data errors (Django's, psycopg's, sqlite3's) quote values; an operational
    # error ("database is locked", "connection refused") keeps its message: it is what to fix.
    if not any(c.__name__ in ("IntegrityError", "DataError") for x in chain for c in type(x).__mro__):
        return None
    parts = []
    for x in reversed(chain):
        name = f"{type(x).__module__}.{type(x).__qualname__}"
        parts.append("Traceback (most recent call last):\n" + "".join(traceback.format_tb(x.__traceback__))
                     + f"{name}: (message withheld: a database error can quote the values it refused)\n")
    return "\nDuring handling of the above exception, another exception occurred:\n\n".join(parts).rstrip("\n")
