"""The vocabulary of changes to a public page.

A notice file, an editor's form and an API call are all turned into a list of *operations*
(plain dicts). ``validate_operations`` checks them without touching the database and reports
every problem with the path of the faulty field; ``apply_operations`` (in ``services``) runs
them in one transaction through the catalogue and status service functions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from guichet.catalog.hours import HoursError, parse_schedule
from guichet.catalog.models import Channel, ContactPoint, Organisation

from .models import ANY_CHANNEL, Advisory, Incident, RestorationTarget, State


@dataclass(frozen=True, slots=True)
class OpError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class OperationsInvalid(ValueError):
    def __init__(self, errors: list[OpError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


# field kinds: str (one line), text (multi-line), slug, int, bool, date, datetime, hours, keys
# (list of slugs), or a tuple of allowed values.
CHANNELS = (ANY_CHANNEL, *Channel.values)
SPEC: dict[str, dict[str, tuple[Any, bool]]] = {
    "portal.set": {
        "name": ("str", True), "name_en": ("str", False),
        "not_listed_statement": ("text", False), "not_listed_statement_en": ("text", False),
        "requires_approval": ("bool", False), "last_checked_at": ("datetime", False),
    },
    "organisation.set": {
        "slug": ("slug", True), "name": ("str", True), "name_en": ("str", False),
        "kind": (tuple(Organisation.Kind.values), False), "position": ("int", False),
        "requires_approval": ("bool", False),
    },
    "service.set": {
        "organisation": ("slug", True), "slug": ("slug", True), "name": ("str", True),
        "name_en": ("str", False), "description": ("text", False), "description_en": ("text", False),
        "position": ("int", False),
    },
    "procedure.set": {
        "service": ("slug", True), "slug": ("slug", True), "name": ("str", True),
        "name_en": ("str", False), "position": ("int", False),
    },
    "contact.set": {
        "organisation": ("slug", True), "key": ("slug", True), "service": ("slug", False),
        "label": ("str", True), "label_en": ("str", False),
        "kind": (tuple(ContactPoint.Kind.values), True), "value": ("str", True),
        "note": ("text", False), "note_en": ("text", False), "hours": ("hours", False),
        "temporary": ("bool", False), "valid_until": ("date", False), "position": ("int", False),
    },
    "incident.set": {
        "organisation": ("slug", True), "slug": ("slug", True), "title": ("str", True),
        "title_en": ("str", False), "nature": (tuple(Incident.Nature.values), False),
        "summary": ("text", False), "summary_en": ("text", False),
        "started_at": ("datetime", True), "ended_at": ("datetime", False),
    },
    "incident.close": {"incident": ("slug", True), "ended_at": ("datetime", True)},
    "update.post": {
        "incident": ("slug", True), "key": ("slug", True), "published_at": ("datetime", True),
        "body": ("text", True), "body_en": ("text", False),
    },
    "affected.set": {
        "incident": ("slug", True), "service": ("slug", True), "headline": ("str", False),
        "headline_en": ("str", False), "details": ("text", False), "details_en": ("text", False),
        "position": ("int", False),
    },
    "affected.remove": {"incident": ("slug", True), "service": ("slug", True)},
    "availability.set": {
        "incident": ("slug", True), "service": ("slug", True), "procedure": ("slug", True),
        "channel": (CHANNELS, False), "channel_label": ("str", False), "channel_label_en": ("str", False),
        "state": (tuple(State.values), True), "explanation": ("text", False),
        "explanation_en": ("text", False), "instead": ("text", False), "instead_en": ("text", False),
        "since": ("date", False), "contacts": ("keys", False), "position": ("int", False),
    },
    "availability.remove": {
        "incident": ("slug", True), "service": ("slug", True), "procedure": ("slug", True),
        "channel": (CHANNELS, False),
    },
    "target.set": {
        "incident": ("slug", True), "service": ("slug", True), "procedure": ("slug", False),
        "precision": (tuple(RestorationTarget.Precision.values), True),
        "earliest": ("date", False), "latest": ("date", False),
        "text": ("str", False), "text_en": ("str", False),
    },
    "advisory.set": {
        "organisation": ("slug", True), "key": ("slug", True), "incident": ("slug", False),
        "kind": (tuple(Advisory.Kind.values), True), "audience": (tuple(Advisory.Audience.values), False),
        "title": ("str", True), "title_en": ("str", False), "body": ("text", True),
        "body_en": ("text", False), "published_at": ("datetime", True), "expires_at": ("datetime", False),
    },
}

# A procedure that is suspended or degraded must tell the public what to do instead.
NEEDS_INSTEAD = (State.DEGRADED, State.SUSPENDED)
INSTEAD_REQUIRED = (
    "required when the state is degraded or suspended: say what people can do instead "
    "(another channel, whom to call, where to go), or that there is no alternative for now"
)

MAX_STR = 300
MAX_TEXT = 5000


def _clean_value(kind: Any, value: Any, path: str, errors: list[OpError]) -> Any:
    def bad(msg: str) -> None:
        errors.append(OpError(path, msg))

    if isinstance(kind, tuple):
        if value not in kind:
            bad(f"'{value}' is not one of: {', '.join(kind)}")
        return value
    if kind in ("str", "text", "slug"):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            bad("expected text")
            return None
        value = str(value).strip()
        limit = MAX_TEXT if kind == "text" else (50 if kind == "slug" else MAX_STR)
        if kind == "str" and "\n" in value:
            bad("must fit on one line")
        if len(value) > limit:
            bad(f"too long ({len(value)} characters, at most {limit})")
        if kind == "slug":
            import re

            if not re.fullmatch(r"[a-z0-9]+(?:[-_][a-z0-9]+)*", value):
                bad(f"'{value}' is not an identifier (lower-case letters, digits and dashes)")
        return value
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 100000:
            bad("expected a whole number between 0 and 100000")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            bad("expected true or false")
        return value
    if kind == "date":
        if isinstance(value, dt.datetime):
            bad("expected a date (YYYY-MM-DD), not a date and time")
            return None
        if isinstance(value, dt.date):
            return value.isoformat()
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            bad(f"'{value}' is not a date (YYYY-MM-DD)")
            return None
    if kind == "datetime":
        if isinstance(value, dt.datetime):
            parsed = value
        elif isinstance(value, dt.date):
            bad("expected a date and time with its offset, e.g. 2024-05-22T09:00:00+02:00")
            return None
        else:
            try:
                parsed = dt.datetime.fromisoformat(str(value))
            except ValueError:
                bad(f"'{value}' is not a date and time (e.g. 2024-05-22T09:00:00+02:00)")
                return None
        if parsed.tzinfo is None:
            bad("give the offset from UTC, e.g. +02:00 (Paris in summer) or Z")
            return None
        return parsed.isoformat()
    if kind == "hours":
        try:
            parse_schedule(value, path)
        except HoursError as e:
            errors.append(OpError(e.path, e.message))
        return value
    if kind == "keys":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            bad("expected a list of contact keys")
        return value
    raise AssertionError(kind)


def validate_operations(operations: Any, *, editorial: bool = False) -> tuple[list[dict], list[OpError]]:
    """Check every operation's shape; return the cleaned operations and every error found.

    ``editorial``: also apply the rules for what an editor submits (a draft, through the editor or
    the API, or a notice file): a degraded or suspended row says what to do instead. They are
    not applied again when a saved draft is published, so a draft saved before a rule existed
    still publishes.
    """
    errors: list[OpError] = []
    if not isinstance(operations, list):
        return [], [OpError("operations", "expected a list of operations")]
    cleaned = []
    for i, op in enumerate(operations):
        path = f"operations[{i}]"
        if not isinstance(op, dict) or "op" not in op:
            errors.append(OpError(path, "expected an object with an 'op' field"))
            continue
        name = op["op"]
        spec = SPEC.get(name) if isinstance(name, str) else None
        if spec is None:
            errors.append(OpError(f"{path}.op", f"unknown operation '{name}'"))
            continue
        out = {"op": name}
        for field in sorted(set(op) - set(spec) - {"op"}):
            errors.append(OpError(f"{path}.{field}", f"unknown field for {name}"))
        for field, (kind, required) in spec.items():
            if field not in op or op[field] is None or op[field] == "":
                if required:
                    errors.append(OpError(f"{path}.{field}", "required"))
                continue
            out[field] = _clean_value(kind, op[field], f"{path}.{field}", errors)
        if editorial and name == "availability.set" and out.get("state") in NEEDS_INSTEAD and not out.get("instead"):
            errors.append(OpError(f"{path}.instead", INSTEAD_REQUIRED))
        if name == "target.set" and not errors:
            if out["precision"] == "exact" and not out.get("earliest"):
                errors.append(OpError(f"{path}.earliest", "an exact target needs its date"))
            if out.get("earliest") and out.get("latest") and out["latest"] < out["earliest"]:
                errors.append(OpError(f"{path}.latest", "ends before it starts"))
        if (
            name == "incident.set" and out.get("ended_at") and out.get("started_at")
            and dt.datetime.fromisoformat(out["ended_at"]) < dt.datetime.fromisoformat(out["started_at"])
        ):
            errors.append(OpError(f"{path}.ended_at", "ends before it starts"))
        cleaned.append(out)
    return cleaned, errors
