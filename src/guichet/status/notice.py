"""Notice files: a whole public page written as one YAML (or JSON) document.

The format (``format: guichet-notice/1``, see ``docs/notice-format.md``) is written by a
town's communication team: services carry their procedures, incidents carry their updates and
the services they affect, each affected service carries its availability rows (procedure x
channel) and restoration targets. ``load_notice`` checks the document and turns it into the
flat list of operations of ``guichet.status.operations``; publishing goes through
``services.publish_now`` like any other change. ``dump_notice`` writes a portal's published
state back in the same format.

Every error names ``FILE:LINE`` and the field's path in the document, e.g.::

    saint-nazaire.yaml:42: incidents[0].services[2].availability[1].state: 'broken' is not one of: ...
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from guichet.catalog.hours import DAY_CODES
from guichet.catalog.models import ContactPoint, Organisation, Portal, Service
from guichet.common.actor import Actor
from guichet.common.yamlreader import Map as _Map
from guichet.common.yamlreader import Problem, ProblemsError, Reader, parse_yaml
from guichet.common.yamlreader import Seq as _Seq

from .models import (
    ANY_CHANNEL,
    Advisory,
    AffectedService,
    Availability,
    Incident,
    RestorationTarget,
)
from .operations import SPEC, OperationsInvalid, OpError, validate_operations

FORMAT = "guichet-notice/1"
UNATTACHED_CONTACT = (
    "contact '%s' is attached to no service and named by no availability row: it is shown nowhere "
    "on the page (give it a service, or name it in a row's contacts)"
)
SUPPORTED_FORMATS = (FORMAT,)
PARIS = ZoneInfo("Europe/Paris")


# --- Errors ----------------------------------------------------------------------------------


NoticeProblem = Problem  # the name the rest of Guichet knew first


class NoticeError(ProblemsError):
    """A notice that cannot be loaded; ``errors`` lists every problem found, in document order."""


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return parse_yaml(text, source)
    except ProblemsError as e:
        raise NoticeError(e.errors) from None


# --- The document's shape ----------------------------------------------------------------------

PORTAL_FIELDS = ("slug", "name", "name_en", "not_listed_statement", "not_listed_statement_en", "requires_approval")
ORGANISATION_FIELDS = ("slug", "name", "name_en", "kind", "requires_approval")
CONTACT_FIELDS = ("key", "organisation", "service", "label", "label_en", "kind", "value", "note", "note_en",
                  "hours", "temporary", "valid_until")
SERVICE_FIELDS = ("slug", "organisation", "name", "name_en", "description", "description_en", "procedures")
PROCEDURE_FIELDS = ("slug", "name", "name_en")
INCIDENT_FIELDS = ("slug", "organisation", "title", "title_en", "nature", "summary", "summary_en", "started_at",
                   "ended_at", "updates", "services")
UPDATE_FIELDS = ("key", "published_at", "body", "body_en")
AFFECTED_FIELDS = ("service", "headline", "headline_en", "details", "details_en", "availability", "targets",
                   "remove")
AVAILABILITY_FIELDS = ("remove", "procedure", "channel", "channel_label", "channel_label_en", "state", "explanation",
                       "explanation_en", "instead", "instead_en", "since", "contacts")
TARGET_FIELDS = ("procedure", "precision", "earliest", "latest", "text", "text_en")
ADVISORY_FIELDS = ("key", "organisation", "incident", "kind", "audience", "title", "title_en", "body", "body_en",
                   "published_at", "expires_at")
TOP_FIELDS = ("format", "portal", "organisations", "contacts", "services", "incidents", "advisories")
DATETIME_FIELDS = {"started_at", "ended_at", "published_at", "expires_at"}


@dataclass
class _Origin:
    """Where an operation's fields were written: their document path and line."""

    path: str
    line: int
    fields: dict[str, tuple[str, int, Any]] = field(default_factory=dict)  # op field -> (path, line, raw value)


@dataclass
class Notice:
    portal: str
    operations: list[dict]
    origins: list[_Origin]
    source: str

    def locate(self, errors: list[OpError]) -> list[NoticeProblem]:
        """Translate errors on ``operations[i].field...`` into document lines and paths."""
        return [_locate(self.origins, e, self.source) for e in errors]

    def warnings(self) -> list[NoticeProblem]:
        """What loads but is probably a mistake: a contact attached to no service and named by
        no availability row is shown nowhere on the page."""
        named = {key for op in self.operations if op["op"] == "availability.set" for key in op.get("contacts") or []}
        out = []
        for op, origin in zip(self.operations, self.origins, strict=True):
            if op["op"] == "contact.set" and not op.get("service") and op.get("key") not in named:
                out.append(NoticeProblem(self.source, origin.line, f"{origin.path}.key", UNATTACHED_CONTACT % op["key"]))
        return out


_OP_PATH = re.compile(r"^operations\[(\d+)\](?:\.([A-Za-z_]+))?(.*)$")
_STEP = re.compile(r"\.([A-Za-z_]+)|\[(\d+)\]")


def _locate(origins: list[_Origin], err: OpError, source: str) -> NoticeProblem:
    m = _OP_PATH.match(err.path)
    if not m or int(m.group(1)) >= len(origins):
        return NoticeProblem(source, None, err.path, err.message)
    origin = origins[int(m.group(1))]
    name, rest = m.group(2), m.group(3) or ""
    if not name:
        return NoticeProblem(source, origin.line, origin.path, err.message)
    if name not in origin.fields:
        return NoticeProblem(source, origin.line, f"{origin.path}.{name}", err.message)
    path, line, value = origin.fields[name]
    # Walk deeper into the written value (e.g. hours[1].slots[0]) for a more precise line.
    for step in _STEP.finditer(rest):
        key, index = step.group(1), step.group(2)
        if key is not None and isinstance(value, _Map) and key in value:
            line, value = value.key_lines[key], value[key]
        elif index is not None and isinstance(value, _Seq) and int(index) < len(value):
            line, value = value.item_lines[int(index)], value[int(index)]
        elif index is not None and isinstance(value, _Map) and "rules" in value and isinstance(value["rules"], _Seq):
            rules = value["rules"]
            if int(index) < len(rules):
                line, value = rules.item_lines[int(index)], rules[int(index)]
        else:
            break
    return NoticeProblem(source, line, path + rest, err.message)


class _Reader(Reader):
    """Walks the document, collecting operations and every structural problem."""

    def __init__(self, source: str):
        super().__init__(source)
        self.operations: list[dict] = []
        self.origins: list[_Origin] = []

    mapping = Reader.block

    def declare(self, block: _Map, key: str, seen: dict[str, int], what: str, path: str) -> str | None:
        """Record the line where an identifier is declared; report any second declaration."""
        ident = _slug_text(block.get(key))
        if ident in seen:
            self.problem(block.key_lines[key], f"{path}.{key}", f"{what} '{ident}' is already declared on line {seen[ident]}")
        elif ident:
            seen[ident] = block.key_lines[key]
        return ident

    def emit(self, op: str, block: _Map, path: str, fields: dict[str, Any] | None = None,
             copy: tuple[str, ...] = (), extra: dict[str, Any] | None = None) -> dict:
        """Add an operation: ``copy`` fields are taken as written; ``fields`` are computed."""
        out: dict[str, Any] = {"op": op}
        origin = _Origin(path, block.line)
        for name in copy:
            if name in block and block[name] is not None:
                value = block[name]
                if name in DATETIME_FIELDS:
                    value = _as_datetime(value)
                elif name == "hours":
                    value = _plain(value)
                out[name] = value
                origin.fields[name] = (f"{path}.{name}", block.key_lines[name], block[name])
        for name, (value, doc_key) in (fields or {}).items():
            if value is None:
                continue
            out[name] = value
            if doc_key and doc_key in block:
                origin.fields[name] = (f"{path}.{doc_key}", block.key_lines[doc_key], block[doc_key])
            else:
                origin.fields[name] = (path, block.line, value)
        for name, value in (extra or {}).items():
            out[name] = value
            origin.fields[name] = (path, block.line, value)
        self.operations.append(out)
        self.origins.append(origin)
        return out


def _as_datetime(value: Any) -> Any:
    """A bare date (e.g. ``2022-12-05``) in a date-and-time field means midnight, Paris time."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(0), tzinfo=PARIS)
    return value


def _plain(value: Any) -> Any:
    """Plain JSON values (dates as text), as stored in a changeset."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _slug_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _removal(r: _Reader, block: _Map, path: str) -> bool:
    """``remove: true`` takes a service off an incident, or a row off a service."""
    if "remove" not in block:
        return False
    if block["remove"] is not True:
        r.problem(block.key_lines["remove"], f"{path}.remove", "only 'remove: true' is allowed")
        return False
    return True


def update_key(published_at: Any) -> str | None:
    """The default key of an update: its publication time in Paris, e.g. ``2022-12-05-0900``."""
    value = _as_datetime(published_at)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        return None
    return value.astimezone(PARIS).strftime("%Y-%m-%d-%H%M")


def parse_notice(text: str, source: str = "notice") -> Notice:
    """Check a notice document and turn it into operations; ``NoticeError`` lists every problem."""
    data = _parse_yaml(text, source)
    r = _Reader(source)
    if data is None:
        raise NoticeError([NoticeProblem(source, None, "", "the file is empty")])
    doc = r.mapping(data, "(document)", 1, TOP_FIELDS, ("format", "portal"))
    if doc is None:
        raise NoticeError(r.problems)
    fmt = doc.get("format")
    if fmt not in (None, "") and fmt not in SUPPORTED_FORMATS:
        r.problem(doc.key_lines["format"], "format",
                  f"'{fmt}' is not a format this version reads (expected {FORMAT})")
        raise NoticeError(r.problems)

    # portal
    portal_slug = ""
    portal = doc.get("portal")
    if portal is not None:
        p = r.mapping(portal, "portal", doc.key_lines["portal"], PORTAL_FIELDS, ("slug", "name"))
        if p is not None:
            portal_slug = p.get("slug") if isinstance(p.get("slug"), str) else ""
            if portal_slug and not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", portal_slug):
                r.problem(p.key_lines["slug"], "portal.slug",
                          f"'{portal_slug}' is not an identifier (lower-case letters, digits and dashes)")
            r.emit("portal.set", p, "portal", copy=tuple(f for f in PORTAL_FIELDS if f != "slug"))

    # organisations
    orgs = r.items(doc, "organisations", "")
    org_slugs: dict[str, int] = {}
    for i, (o, path, line) in enumerate(orgs):
        o = r.mapping(o, path, line, ORGANISATION_FIELDS, ("slug", "name"))
        if o is None:
            continue
        r.declare(o, "slug", org_slugs, "organisation", path)
        r.emit("organisation.set", o, path, copy=ORGANISATION_FIELDS, fields={"position": (i, None)})
    if not orgs and "organisations" not in doc:
        r.problem(1, "organisations", "required: at least one organisation")
    single_org = next(iter(org_slugs)) if len(org_slugs) == 1 else None

    def org_of(block: _Map, path: str) -> tuple[str | None, str | None]:
        value = block.get("organisation")
        if value in (None, ""):
            if single_org:
                return single_org, None
            if org_slugs:  # with none at all, "at least one organisation" is already reported
                r.problem(block.line, f"{path}.organisation", "required when the notice has several organisations")
            return None, None
        if isinstance(value, str) and value not in org_slugs:
            r.problem(block.key_lines["organisation"], f"{path}.organisation",
                      f"no organisation '{value}' in this notice (declared: {', '.join(org_slugs) or 'none'})")
        return value, "organisation"

    # services and procedures (read before contacts, which may name a service)
    service_procs: dict[str, dict[str, int]] = {}
    service_lines: dict[str, int] = {}
    service_ops: list[tuple[_Map, str, int]] = []
    for item, path, line in r.items(doc, "services", ""):
        s = r.mapping(item, path, line, SERVICE_FIELDS, ("slug", "name"))
        if s is None:
            continue
        slug = r.declare(s, "slug", service_lines, "service", path)
        if slug:
            service_procs.setdefault(slug, {})
        service_ops.append((s, path, line))

    # contacts
    contact_lines: dict[str, int] = {}
    contact_blocks = []
    for item, path, line in r.items(doc, "contacts", ""):
        c = r.mapping(item, path, line, CONTACT_FIELDS, ("key", "label", "kind", "value"))
        if c is None:
            continue
        r.declare(c, "key", contact_lines, "contact", path)
        contact_blocks.append((c, path))

    for i, (s, path, _line) in enumerate(service_ops):
        org, org_key = org_of(s, path)
        r.emit("service.set", s, path, copy=tuple(f for f in SERVICE_FIELDS if f not in ("organisation", "procedures")),
               fields={"organisation": (org, org_key), "position": (i, None)})
        slug = _slug_text(s.get("slug"))
        for j, (pitem, ppath, pline) in enumerate(r.items(s, "procedures", path)):
            pr = r.mapping(pitem, ppath, pline, PROCEDURE_FIELDS, ("slug", "name"))
            if pr is None:
                continue
            pslug = _slug_text(pr.get("slug"))
            known = service_procs.get(slug, {})
            if pslug in known:
                r.problem(pr.key_lines["slug"], f"{ppath}.slug", f"procedure '{pslug}' is already declared on line {known[pslug]}")
            elif pslug and slug in service_procs:
                known[pslug] = pr.key_lines["slug"]
            r.emit("procedure.set", pr, ppath, copy=PROCEDURE_FIELDS, extra={"service": slug},
                   fields={"position": (j, None)})

    for i, (c, path) in enumerate(contact_blocks):
        org, org_key = org_of(c, path)
        svc = c.get("service")
        if isinstance(svc, str) and svc and svc not in service_lines:
            r.problem(c.key_lines["service"], f"{path}.service", f"no service '{svc}' in this notice")
        r.emit("contact.set", c, path, copy=tuple(f for f in CONTACT_FIELDS if f != "organisation"),
               fields={"organisation": (org, org_key), "position": (i, None)})

    # incidents
    incident_slugs: dict[str, int] = {}
    for item, path, line in r.items(doc, "incidents", ""):
        inc = r.mapping(item, path, line, INCIDENT_FIELDS, ("slug", "title", "started_at"))
        if inc is None:
            continue
        islug = r.declare(inc, "slug", incident_slugs, "incident", path)
        org, org_key = org_of(inc, path)
        r.emit("incident.set", inc, path,
               copy=tuple(f for f in INCIDENT_FIELDS if f not in ("organisation", "updates", "services")),
               fields={"organisation": (org, org_key)})
        update_keys: dict[str, int] = {}
        for uitem, upath, uline in r.items(inc, "updates", path):
            u = r.mapping(uitem, upath, uline, UPDATE_FIELDS, ("published_at", "body"))
            if u is None:
                continue
            key = u.get("key") or update_key(u.get("published_at"))
            if isinstance(key, str) and key in update_keys:
                r.problem(u.line, f"{upath}.key", f"update '{key}' is already given on line {update_keys[key]}"
                          " (give each update of the same minute its own key)")
            elif isinstance(key, str):
                update_keys[key] = u.line
            r.emit("update.post", u, upath, copy=("published_at", "body", "body_en"),
                   fields={"key": (key, "key" if "key" in u else "published_at")}, extra={"incident": islug})
        affected_seen: dict[str, int] = {}
        for k, (aitem, apath, aline) in enumerate(r.items(inc, "services", path)):
            a = r.mapping(aitem, apath, aline, AFFECTED_FIELDS, ("service",))
            if a is None:
                continue
            sslug = _slug_text(a.get("service"))
            if sslug and sslug not in service_lines:
                r.problem(a.key_lines["service"], f"{apath}.service", f"no service '{sslug}' in this notice")
            if sslug in affected_seen:
                r.problem(a.key_lines["service"], f"{apath}.service",
                          f"service '{sslug}' is already listed for this incident on line {affected_seen[sslug]}")
            elif sslug:
                affected_seen[sslug] = a.key_lines["service"]
            if _removal(r, a, apath):
                for extra_key in ("availability", "targets", "headline", "details"):
                    if extra_key in a:
                        r.problem(a.key_lines[extra_key], f"{apath}.{extra_key}",
                                  "a service being removed from the incident takes no other field")
                r.emit("affected.remove", a, apath, copy=("service",), extra={"incident": islug})
                continue
            r.emit("affected.set", a, apath, copy=("service", "headline", "headline_en", "details", "details_en"),
                   fields={"position": (k, None)}, extra={"incident": islug})
            procs = service_procs.get(sslug, {}) if sslug else {}
            rows_seen: dict[tuple, int] = {}
            for m, (vitem, vpath, vline) in enumerate(r.items(a, "availability", apath)):
                v = r.mapping(vitem, vpath, vline, AVAILABILITY_FIELDS, ("procedure",))
                if v is None:
                    continue
                if _removal(r, v, vpath):
                    r.emit("availability.remove", v, vpath, copy=("procedure", "channel"),
                           extra={"incident": islug, "service": sslug})
                    continue
                if v.get("state") in (None, ""):
                    r.problem(v.line, f"{vpath}.state", "required")
                proc = v.get("procedure")
                if isinstance(proc, str) and proc and sslug in service_procs and proc not in procs:
                    r.problem(v.key_lines["procedure"], f"{vpath}.procedure",
                              f"no procedure '{proc}' in service '{sslug}' (declared: {', '.join(procs) or 'none'})")
                ident = (proc, v.get("channel") or ANY_CHANNEL)
                if ident in rows_seen:
                    r.problem(v.line, vpath, f"procedure '{proc}' through channel '{ident[1]}' is already given on line {rows_seen[ident]}")
                else:
                    rows_seen[ident] = v.line
                contacts = v.get("contacts")
                if isinstance(contacts, _Seq):
                    for n, ckey in enumerate(contacts):
                        if isinstance(ckey, str) and ckey not in contact_lines:
                            r.problem(contacts.item_lines[n], f"{vpath}.contacts[{n}]", f"no contact '{ckey}' in this notice")
                elif contacts is not None:
                    r.problem(v.key_lines["contacts"], f"{vpath}.contacts", "expected a list of contact keys")
                r.emit("availability.set", v, vpath,
                       copy=tuple(f for f in AVAILABILITY_FIELDS if f != "contacts"),
                       fields={"contacts": (list(contacts) if isinstance(contacts, _Seq) else None, "contacts"),
                               "position": (m, None)},
                       extra={"incident": islug, "service": sslug})
            targets_seen: dict[Any, int] = {}
            for titem, tpath, tline in r.items(a, "targets", apath):
                t = r.mapping(titem, tpath, tline, TARGET_FIELDS, ("precision",))
                if t is None:
                    continue
                proc = t.get("procedure")
                if isinstance(proc, str) and proc and sslug in service_procs and proc not in procs:
                    r.problem(t.key_lines["procedure"], f"{tpath}.procedure", f"no procedure '{proc}' in service '{sslug}'")
                if proc in targets_seen:
                    what = f"procedure '{proc}'" if proc else "the service as a whole"
                    r.problem(t.line, tpath, f"a target for {what} is already given on line {targets_seen[proc]}")
                else:
                    targets_seen[proc] = t.line
                r.emit("target.set", t, tpath, copy=TARGET_FIELDS, extra={"incident": islug, "service": sslug})

    # advisories
    advisory_keys: dict[str, int] = {}
    for item, path, line in r.items(doc, "advisories", ""):
        adv = r.mapping(item, path, line, ADVISORY_FIELDS, ("key", "kind", "title", "body", "published_at"))
        if adv is None:
            continue
        r.declare(adv, "key", advisory_keys, "advisory", path)
        inc = adv.get("incident")
        if isinstance(inc, str) and inc and inc not in incident_slugs:
            r.problem(adv.key_lines["incident"], f"{path}.incident", f"no incident '{inc}' in this notice")
        org, org_key = org_of(adv, path)
        r.emit("advisory.set", adv, path, copy=tuple(f for f in ADVISORY_FIELDS if f != "organisation"),
               fields={"organisation": (org, org_key)})

    # Field-level checks (types, allowed values, hours...) are those of the operations themselves.
    _cleaned, op_errors = validate_operations(r.operations, editorial=True)
    problems = list(dict.fromkeys(r.problems + [_locate(r.origins, e, source) for e in op_errors]))
    if problems:
        raise NoticeError(problems)
    return Notice(portal_slug, r.operations, r.origins, source)


def load_notice(text: str, source: str = "notice") -> tuple[str, list[dict]]:
    """The portal slug and the operations of a notice; ``NoticeError`` if anything is wrong."""
    notice = parse_notice(text, source)
    return notice.portal, notice.operations


def notice_date(operations: list[dict], now: dt.datetime | None = None) -> dt.datetime | None:
    """When a notice's information was given: its latest incident update that is not in the future.

    The public pages say "updated on" that date for what the notice changes, not the time of the
    import (which they show only as "last checked"). None when the notice has no dated update.
    """
    now = now or dt.datetime.now(dt.UTC)
    dates = []
    for op in operations:
        if op.get("op") == "update.post" and op.get("published_at"):
            value = op["published_at"]
            try:
                value = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
            except ValueError:  # reported by the validation that follows
                continue
            if value.tzinfo is None:
                value = value.replace(tzinfo=PARIS)
            if value <= now:
                dates.append(value)
    return max(dates) if dates else None


def import_notice(text: str, source: str, *, actor: Actor | None = None, now: dt.datetime | None = None):
    """Load and publish a notice in one transaction; return the published ``ChangeSet``.

    A problem found while applying (e.g. a service slug already used by another organisation of
    the page) is reported with the document's line, and nothing is changed.
    """
    from .services import publish_now

    notice = parse_notice(text, source)
    try:
        return publish_now(portal_slug=notice.portal, operations=notice.operations, actor=actor or Actor.cli(),
                           title=f"Import {source}"[:200], now=now, as_of=notice_date(notice.operations, now))
    except OperationsInvalid as e:
        raise NoticeError(notice.locate(e.errors)) from None


# --- Dump ---------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False):  # lists indented under keys
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str):
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _represent_datetime(dumper: yaml.SafeDumper, value: dt.datetime):
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", value.astimezone(PARIS).isoformat())


class _Flow(list):
    """A short list written on one line: ``slots: ["08:30-11:00", "13:30-17:00"]``."""


def _represent_flow(dumper: yaml.SafeDumper, value: _Flow):
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(value), flow_style=True)


_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(dt.datetime, _represent_datetime)


def _compact_days(days: str) -> str:
    """``mon,tue,wed,thu,fri`` -> ``mon-fri`` (the stored form lists every day)."""
    idx = sorted(DAY_CODES.index(d) for d in days.split(","))
    runs, start = [], None
    for n, i in enumerate(idx):
        if start is None:
            start = i
        if n + 1 == len(idx) or idx[n + 1] != i + 1:
            runs.append(DAY_CODES[start] if start == i else
                        f"{DAY_CODES[start]},{DAY_CODES[i]}" if i == start + 1 else f"{DAY_CODES[start]}-{DAY_CODES[i]}")
            start = None
    return ",".join(runs)


def _hours_out(hours: Any) -> Any:
    if hours in (None, [], {}, ""):
        return None
    if isinstance(hours, list):
        return [{**r, "days": _compact_days(r["days"]), "slots": _Flow(r["slots"])} for r in hours]
    if isinstance(hours, dict) and "rules" in hours:
        return {**hours, "rules": _hours_out(hours["rules"]) or []}
    return hours


def _put(out: dict, name: str, value: Any, default: Any = None) -> None:
    if value in (None, "", [], {}) or value == default:
        return
    out[name] = value


def _texts(out: dict, obj: Any, *names: str) -> None:
    for n in names:
        _put(out, n, getattr(obj, n))
        _put(out, f"{n}_en", getattr(obj, f"{n}_en", ""))


def dump_notice(portal: Portal) -> str:
    """The portal's published state as a notice document (``load_notice`` reads it back)."""
    orgs = list(Organisation.objects.filter(portal=portal).order_by("position", "pk"))
    single = len(orgs) == 1
    doc: dict[str, Any] = {"format": FORMAT}
    p: dict[str, Any] = {"slug": portal.slug}
    _texts(p, portal, "name", "not_listed_statement")
    _put(p, "requires_approval", portal.requires_approval, False)
    p = {k: p[k] for k in ("slug", "name", "name_en", "not_listed_statement", "not_listed_statement_en", "requires_approval") if k in p}
    doc["portal"] = p
    doc["organisations"] = []
    for o in orgs:
        d: dict[str, Any] = {"slug": o.slug}
        _texts(d, o, "name")
        d["kind"] = o.kind
        _put(d, "requires_approval", o.requires_approval, False)
        doc["organisations"].append(d)

    def with_org(d: dict, org: Organisation) -> dict:
        return d if single else {**{k: d[k] for k in list(d)[:1]}, "organisation": org.slug, **{k: d[k] for k in list(d)[1:]}}

    contacts = []
    for c in ContactPoint.objects.filter(organisation__portal=portal).select_related("organisation", "service").order_by(
        "organisation__position", "organisation_id", "position", "pk"
    ):
        d = {"key": c.key}
        _put(d, "service", c.service.slug if c.service else None)
        _texts(d, c, "label")
        d["kind"] = c.kind
        d["value"] = c.value
        _texts(d, c, "note")
        _put(d, "hours", _hours_out(c.hours))
        _put(d, "temporary", c.temporary, False)
        _put(d, "valid_until", c.valid_until)
        contacts.append(with_org(d, c.organisation))
    services = []
    for s in Service.objects.filter(organisation__portal=portal).select_related("organisation").prefetch_related(
        "procedures"
    ).order_by("organisation__position", "organisation_id", "position", "pk"):
        d = {"slug": s.slug}
        _texts(d, s, "name", "description")
        procs = []
        for pr in sorted(s.procedures.all(), key=lambda x: (x.position, x.pk)):
            pd = {"slug": pr.slug}
            _texts(pd, pr, "name")
            procs.append(pd)
        _put(d, "procedures", procs)
        services.append(with_org(d, s.organisation))
    _put(doc, "contacts", contacts)
    _put(doc, "services", services)

    incidents = []
    for inc in Incident.objects.filter(organisation__portal=portal).select_related("organisation").order_by("started_at", "pk"):
        d = {"slug": inc.slug}
        if not single:
            d["organisation"] = inc.organisation.slug
        _texts(d, inc, "title")
        d["nature"] = inc.nature
        _texts(d, inc, "summary")
        d["started_at"] = inc.started_at
        _put(d, "ended_at", inc.ended_at)
        updates = []
        for u in inc.updates.order_by("published_at", "pk"):
            ud: dict[str, Any] = {}
            if u.key != update_key(u.published_at):
                ud["key"] = u.key
            ud["published_at"] = u.published_at
            _texts(ud, u, "body")
            updates.append(ud)
        _put(d, "updates", updates)
        affected = []
        rows = list(Availability.objects.filter(incident=inc).select_related("procedure__service")
                    .prefetch_related("contacts").order_by("position", "pk"))
        targets: dict[tuple[int, int | None], RestorationTarget] = {}
        for t in RestorationTarget.objects.filter(incident=inc).select_related("procedure").order_by("recorded_at", "pk"):
            targets[(t.service_id, t.procedure_id)] = t  # the latest one wins: the current target
        for a in AffectedService.objects.filter(incident=inc).select_related("service").order_by("position", "pk"):
            ad: dict[str, Any] = {"service": a.service.slug}
            _texts(ad, a, "headline", "details")
            avail = []
            for v in (v for v in rows if v.procedure.service_id == a.service_id):
                vd: dict[str, Any] = {"procedure": v.procedure.slug}
                _put(vd, "channel", v.channel, ANY_CHANNEL)
                _texts(vd, v, "channel_label")
                vd["state"] = v.state
                _texts(vd, v, "explanation", "instead")
                _put(vd, "since", v.since)
                _put(vd, "contacts", _Flow(c.key for c in sorted(v.contacts.all(), key=lambda c: (c.organisation_id, c.position, c.pk))))
                avail.append(vd)
            _put(ad, "availability", avail)
            tl = []
            for (sid, _pid), t in sorted(targets.items(), key=lambda kv: (kv[1].procedure is not None,
                                                                            kv[1].procedure.position if kv[1].procedure else 0,
                                                                            kv[1].procedure_id or 0)):
                if sid != a.service_id:
                    continue
                td: dict[str, Any] = {}
                _put(td, "procedure", t.procedure.slug if t.procedure else None)
                td["precision"] = t.precision
                _put(td, "earliest", t.earliest)
                _put(td, "latest", t.latest)
                _texts(td, t, "text")
                tl.append(td)
            _put(ad, "targets", tl)
            affected.append(ad)
        _put(d, "services", affected)
        incidents.append(d)
    _put(doc, "incidents", incidents)

    advisories = []
    for adv in Advisory.objects.filter(organisation__portal=portal).select_related("organisation", "incident").order_by(
        "published_at", "pk"
    ):
        d = {"key": adv.key}
        if not single:
            d["organisation"] = adv.organisation.slug
        _put(d, "incident", adv.incident.slug if adv.incident else None)
        d["kind"] = adv.kind
        _put(d, "audience", adv.audience, Advisory.Audience.EVERYONE)
        _texts(d, adv, "title", "body")
        d["published_at"] = adv.published_at
        _put(d, "expires_at", adv.expires_at)
        advisories.append(d)
    _put(doc, "advisories", advisories)
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


# The operations vocabulary is the contract: keep the document's fields in step with it.
assert set(PORTAL_FIELDS) - {"slug"} <= set(SPEC["portal.set"])
assert set(AVAILABILITY_FIELDS) - {"remove"} <= set(SPEC["availability.set"])
assert set(TARGET_FIELDS) <= set(SPEC["target.set"])
