"""Activity configuration files: a town's bookable activities written as one YAML document, by
service managers, as configuration and not code (format ``guichet-bookings/1``, documented in
``docs/guide-service-managers.md``).

A file names its portal and organisation, then lists sites, activities (kind, parts of the day,
units, booking and cancellation rules in the deadline language, justification days, waiting-list
mode, offer hours, capacities per site and part, a calendar of sessions, closures, registration
windows) and, optionally, demo households with their children and guardian accounts.

``parse_config`` checks the whole document without a database and reports every problem as
``FILE:LINE: path: message``; ``load_config`` writes it (create or update; loading the same file
twice changes nothing) in one transaction, journaled. Sessions that the calendar no longer
generates are kept (they may hold bookings) and counted in the report.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction

from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.common.yamlreader import Map as _Map
from guichet.common.yamlreader import Problem as NoticeProblem
from guichet.common.yamlreader import ProblemsError as _ProblemsError
from guichet.common.yamlreader import Reader, parse_yaml
from guichet.common.yamlreader import Seq as _Seq
from guichet.journal.services import journal_append

from . import calendar as school
from .deadlines import RuleError, parse_rule
from .households import HouseholdError, postal_address_clean
from .models import (
    Activity,
    Child,
    Guardian,
    Household,
    RegistrationWindow,
    Session,
    SessionPart,
    Site,
    Unit,
)

FORMAT = "guichet-bookings/1"
WEEKDAYS = {name: i for i, name in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))} | {
    name: i for i, name in enumerate(("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"))}
USERNAME = re.compile(r"^[\w.@+-]{1,150}$")
MAX_SESSIONS = 20_000

TOP_FIELDS = ("format", "portal", "organisation", "sites", "activities", "households")
SITE_FIELDS = ("slug", "name", "address")
ACTIVITY_FIELDS = ("slug", "name", "name_en", "kind", "parts", "units", "booking_rule", "cancellation_rule",
                   "justification_days", "waitlist_mode", "offer_hours", "position", "sites", "calendar",
                   "closures", "windows")
UNIT_FIELDS = ("code", "name", "name_en", "parts")
CAPACITY_FIELDS = ("site", "capacity")
CALENDAR_FIELDS = ("every", "in", "zone", "from", "to", "dates")
WINDOW_FIELDS = ("first_date", "last_date", "opens_at", "residents_open_at", "closes_at")
HOUSEHOLD_FIELDS = ("reference", "name", "resident", "email", "postal_address", "guardians", "children")
CHILD_FIELDS = ("first_name", "birth_date", "school")


class ConfigError(_ProblemsError):
    """A configuration that cannot be loaded; ``errors`` lists every problem, in line order."""


# --- the checked document ------------------------------------------------------------------------


@dataclass
class ActivitySpec:
    line: int
    path: str
    values: dict
    units: list[dict]
    capacities: list[tuple[str, dict[str, int], int, str]]  # site, {part: n}, line, path
    dates: list[dt.date]
    windows: list[dict]
    closures: list[dt.date] = field(default_factory=list)


@dataclass
class HouseholdSpec:
    values: dict
    guardians: list[str]
    children: list[dict]


@dataclass
class Config:
    source: str
    portal: str
    organisation: str
    organisation_line: int
    sites: list[dict] = field(default_factory=list)
    activities: list[ActivitySpec] = field(default_factory=list)
    households: list[HouseholdSpec] = field(default_factory=list)


@dataclass
class LoadReport:
    created: dict = field(default_factory=dict)
    updated: dict = field(default_factory=dict)
    kept_sessions: int = 0
    organisation_id: int | None = None

    def add(self, what: str, created: bool, changed: bool = True) -> None:
        if created:
            self.created[what] = self.created.get(what, 0) + 1
        elif changed:
            self.updated[what] = self.updated.get(what, 0) + 1

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def __str__(self) -> str:
        def fmt(d):
            return ", ".join(f"{n} {k}" for k, n in sorted(d.items())) or "nothing"

        text = f"created: {fmt(self.created)}; updated: {fmt(self.updated)}"
        if self.kept_sessions:
            text += f"; {self.kept_sessions} existing sessions no longer in the calendar were kept"
        return text


def parse_config(text: str, source: str = "config") -> Config:
    """Check a configuration document; ``ConfigError`` lists every problem with its line."""
    try:
        doc = parse_yaml(text, source)
    except _ProblemsError as e:
        raise ConfigError(e.errors) from None
    r = Reader(source)
    top = r.block(doc, "", 1, TOP_FIELDS, ("format", "portal", "organisation"))
    if top is None:
        raise ConfigError(r.problems)
    if top.get("format") not in (None, FORMAT):
        r.problem(r.line(top, "format"), "format", f"'{top.get('format')}' is not supported; expected {FORMAT}")
    config = Config(source, r.text(top, "portal", "", slug=True), r.text(top, "organisation", "", slug=True),
                    r.line(top, "organisation"))
    site_slugs: set[str] = set()
    for value, path, line in r.items(top, "sites", ""):
        b = r.block(value, path, line, SITE_FIELDS, ("slug", "name"))
        if b is None:
            continue
        slug = r.text(b, "slug", path, slug=True, max_length=50)
        if slug in site_slugs:
            r.problem(line, f"{path}.slug", f"site '{slug}' is given twice")
        site_slugs.add(slug)
        config.sites.append({"slug": slug, "name": r.text(b, "name", path),
                             "address": r.text(b, "address", path, max_length=300)})
    slugs: set[str] = set()
    for value, path, line in r.items(top, "activities", ""):
        spec = _activity(r, value, path, line, site_slugs)
        if spec is not None:
            if spec.values["slug"] in slugs:
                r.problem(line, f"{path}.slug", f"activity '{spec.values['slug']}' is given twice")
            slugs.add(spec.values["slug"])
            config.activities.append(spec)
    references: set[str] = set()
    for value, path, line in r.items(top, "households", ""):
        b = r.block(value, path, line, HOUSEHOLD_FIELDS, ("reference", "name"))
        if b is None:
            continue
        ref = r.text(b, "reference", path, max_length=30)
        if ref in references:
            r.problem(line, f"{path}.reference", f"household '{ref}' is given twice")
        references.add(ref)
        resident = b.get("resident", True)
        if not isinstance(resident, bool):
            r.problem(r.line(b, "resident"), f"{path}.resident", "expected true or false")
        guardians = r.names(b, "guardians", path, required=False, pattern=USERNAME, example="[parent.dupont]")
        children = []
        for cv, cpath, cline in r.items(b, "children", path):
            cb = r.block(cv, cpath, cline, CHILD_FIELDS, ("first_name", "birth_date"))
            if cb is None:
                continue
            birth = r.date(cb.get("birth_date"), r.line(cb, "birth_date"), f"{cpath}.birth_date")
            children.append({"first_name": r.text(cb, "first_name", cpath, max_length=80), "birth_date": birth,
                             "school": r.text(cb, "school", cpath, max_length=120)})
        values = {"reference": ref, "display_name": r.text(b, "name", path, max_length=120),
                  "resident": resident is True, "email": r.text(b, "email", path, max_length=254)}
        if "postal_address" in b:  # only when given: reloading a file keeps an address the family typed
            try:
                values["postal_address"] = postal_address_clean(r.text(b, "postal_address", path, max_length=300))
            except HouseholdError as exc:
                r.problem(r.line(b, "postal_address"), f"{path}.postal_address", exc.message)
        config.households.append(HouseholdSpec(values, guardians, children))
    if r.problems:
        raise ConfigError(r.problems)
    return config


def _activity(r: Reader, value, path, line, site_slugs) -> ActivitySpec | None:
    b = r.block(value, path, line, ACTIVITY_FIELDS,
                ("slug", "name", "kind", "parts", "units", "booking_rule", "cancellation_rule"))
    if b is None:
        return None
    values = {
        "slug": r.text(b, "slug", path, slug=True, max_length=50),
        "name": r.text(b, "name", path),
        "name_en": r.text(b, "name_en", path),
        "kind": r.text(b, "kind", path),
        "justification_days": r.integer(b, "justification_days", path, 8, maximum=366),
        "waitlist_mode": r.text(b, "waitlist_mode", path) or Activity.WaitlistMode.AUTOMATIC,
        "offer_hours": r.integer(b, "offer_hours", path, 48, minimum=1, maximum=24 * 31),
        "position": r.integer(b, "position", path, 0),
    }
    if values["kind"] and values["kind"] not in Activity.Kind.values:
        r.problem(r.line(b, "kind"), f"{path}.kind",
                  f"'{values['kind']}' is not one of: {', '.join(Activity.Kind.values)}")
    if values["waitlist_mode"] not in Activity.WaitlistMode.values:
        r.problem(r.line(b, "waitlist_mode"), f"{path}.waitlist_mode",
                  f"'{values['waitlist_mode']}' is not one of: {', '.join(Activity.WaitlistMode.values)}")
    for key in ("booking_rule", "cancellation_rule"):
        text = r.text(b, key, path, max_length=120)
        if text:
            try:
                values[key] = parse_rule(text).text
            except RuleError as e:
                r.problem(r.line(b, key), f"{path}.{key}", f"'{text}': {e.message}")
    parts = r.names(b, "parts", path)
    values["parts"] = parts
    units = []
    codes: set[str] = set()
    for uv, upath, uline in r.items(b, "units", path):
        ub = r.block(uv, upath, uline, UNIT_FIELDS, ("code", "name", "parts"))
        if ub is None:
            continue
        code = r.text(ub, "code", upath, slug=True, max_length=50)
        if code in codes:
            r.problem(uline, f"{upath}.code", f"unit '{code}' is given twice")
        codes.add(code)
        uparts = r.names(ub, "parts", upath)
        for p in uparts:
            if parts and p not in parts:
                r.problem(r.line(ub, "parts"), f"{upath}.parts",
                          f"'{p}' is not a part of the activity (its parts: {', '.join(parts)})")
        units.append({"code": code, "name": r.text(ub, "name", upath, max_length=120),
                      "name_en": r.text(ub, "name_en", upath, max_length=120), "parts": uparts,
                      "position": len(units)})
    capacities = []
    for cv, cpath, cline in r.items(b, "sites", path):
        cb = r.block(cv, cpath, cline, CAPACITY_FIELDS, ("site", "capacity"))
        if cb is None:
            continue
        site = r.text(cb, "site", cpath, slug=True, max_length=50)
        if site and site not in site_slugs:
            r.problem(r.line(cb, "site"), f"{cpath}.site", f"unknown site '{site}' (not in the file's sites)")
        cap = cb.get("capacity")
        cline2 = r.line(cb, "capacity")
        per_part: dict[str, int] = {}
        if isinstance(cap, int) and not isinstance(cap, bool) and 0 <= cap <= 10_000:
            per_part = dict.fromkeys(parts, cap)
        elif isinstance(cap, _Map):
            for p, n in cap.items():
                if p not in parts:
                    r.problem(cap.key_lines[p], f"{cpath}.capacity.{p}",
                              f"'{p}' is not a part of the activity (its parts: {', '.join(parts)})")
                elif isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 10_000:
                    r.problem(cap.key_lines[p], f"{cpath}.capacity.{p}", f"expected a number of places, not {n!r}")
                else:
                    per_part[p] = n
            for p in parts:
                if p not in cap:
                    r.problem(cline2, f"{cpath}.capacity", f"no capacity for part '{p}'")
        else:
            r.problem(cline2, f"{cpath}.capacity",
                      "expected a number of places, or one per part (e.g. {morning: 60, meal: 60})")
        capacities.append((site, per_part, cline2, cpath))
    closures = []
    if b.get("closures") is not None:
        if not isinstance(b["closures"], _Seq):
            r.problem(r.line(b, "closures"), f"{path}.closures", "expected a list of dates")
        else:
            for i, v in enumerate(b["closures"]):
                d = r.date(v, b["closures"].item_lines[i], f"{path}.closures[{i}]")
                if d:
                    closures.append(d)
    dates: set[dt.date] = set()
    for cv, cpath, cline in r.items(b, "calendar", path):
        dates.update(_calendar_rule(r, cv, cpath, cline, closures))
    if len(dates) > MAX_SESSIONS:
        r.problem(r.line(b, "calendar"), f"{path}.calendar", f"too many days ({len(dates)}, at most {MAX_SESSIONS})")
    windows = []
    for wv, wpath, wline in r.items(b, "windows", path):
        wb = r.block(wv, wpath, wline, WINDOW_FIELDS, ("first_date", "last_date", "opens_at"))
        if wb is None:
            continue
        w = {
            "first_date": r.date(wb.get("first_date"), r.line(wb, "first_date"), f"{wpath}.first_date"),
            "last_date": r.date(wb.get("last_date"), r.line(wb, "last_date"), f"{wpath}.last_date"),
            "opens_at": r.moment(wb.get("opens_at"), r.line(wb, "opens_at"), f"{wpath}.opens_at"),
            "residents_open_at": None, "closes_at": None,
        }
        for key in ("residents_open_at", "closes_at"):
            if wb.get(key) is not None:
                w[key] = r.moment(wb[key], r.line(wb, key), f"{wpath}.{key}")
        if w["first_date"] and w["last_date"] and w["last_date"] < w["first_date"]:
            r.problem(r.line(wb, "last_date"), f"{wpath}.last_date", "the period ends before it starts")
        if w["closes_at"] and w["opens_at"] and w["closes_at"] <= w["opens_at"]:
            r.problem(r.line(wb, "closes_at"), f"{wpath}.closes_at", "the window closes before it opens")
        windows.append(w)
    return ActivitySpec(line, path, values, units, capacities, sorted(dates), windows, closures)


def _calendar_rule(r: Reader, value, path, line, closures) -> list[dt.date]:
    b = r.block(value, path, line, CALENDAR_FIELDS)
    if b is None:
        return []
    if "dates" in b:
        if any(k in b for k in ("every", "in", "from", "to")):
            r.problem(line, path, "write either 'dates' or 'every ... from ... to ...', not both")
        seq = b["dates"]
        if not isinstance(seq, _Seq):
            r.problem(r.line(b, "dates"), f"{path}.dates", "expected a list of dates")
            return []
        found = [r.date(v, seq.item_lines[i], f"{path}.dates[{i}]") for i, v in enumerate(seq)]
        return [d for d in found if d and d not in closures]
    for key in ("every", "from", "to"):
        if key not in b:
            r.problem(line, f"{path}.{key}", "required (or give explicit 'dates')")
    if r.problems and any(p.path.startswith(path) for p in r.problems):
        return []
    every = str(b["every"]).strip().lower()
    where = str(b.get("in", "any")).strip().lower()
    first = r.date(b["from"], r.line(b, "from"), f"{path}.from")
    last = r.date(b["to"], r.line(b, "to"), f"{path}.to")
    if every != "weekday" and every not in WEEKDAYS:
        r.problem(r.line(b, "every"), f"{path}.every", f"'{b['every']}' is not a weekday name or 'weekday'")
        return []
    if where not in ("term", "holidays", "any"):
        r.problem(r.line(b, "in"), f"{path}.in", f"'{b['in']}' is not one of: term, holidays, any")
        return []
    if where != "any" and "zone" not in b:
        r.problem(line, f"{path}.zone", "required for term or holiday days (A, B or C)")
        return []
    if not first or not last:
        return []
    if last < first:
        r.problem(r.line(b, "to"), f"{path}.to", "the period ends before it starts")
        return []
    weekdays = range(5) if every == "weekday" else [WEEKDAYS[every]]
    try:
        if where == "term":
            days = sorted({d for w in weekdays for d in school.term_weekdays(str(b["zone"]), w, first, last,
                                                                              closures=closures)})
        elif where == "holidays":
            days = [d for d in school.holiday_weekdays(str(b["zone"]), first, last, closures=closures)
                    if d.weekday() in weekdays]
        else:
            days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
            days = [d for d in days if d.weekday() in weekdays and not school.is_public_holiday(d)
                    and d not in closures]
    except school.CalendarError as e:
        key = e.field.replace("date_from", "from").replace("date_to", "to")
        r.problem(r.line(b, key) if key in b else line, f"{path}.{key}" if key else path, e.message)
        return []
    return days


# --- writing -------------------------------------------------------------------------------------


def _set(obj, values: dict) -> bool:
    changed = False
    for k, v in values.items():
        if getattr(obj, k) != v:
            setattr(obj, k, v)
            changed = True
    return changed


def load_config(
    text: str,
    source: str = "config",
    *,
    actor: Actor,
    now: dt.datetime,
    dry_run: bool = False,
    demo_password: str | None = None,
) -> LoadReport:
    """Check then write a configuration (create or update). ``dry_run`` checks against the
    database and writes nothing. ``demo_password`` sets the password of guardian accounts this
    load creates (demo only); otherwise new accounts get no usable password."""
    config = parse_config(text, source)
    report = LoadReport()

    class _Rollback(Exception):
        pass

    try:
        with transaction.atomic(durable=True):
            _write(config, report, now=now, demo_password=demo_password)
            if report.changed:
                journal_append(
                    actor=actor, operation="bookings.config.load", objects=[],
                    details={"created": report.created, "updated": report.updated},
                    organisation_id=report.organisation_id, payload=text, now=now,
                )
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    return report


def _write(config: Config, report: LoadReport, *, now, demo_password) -> None:
    problems: list[NoticeProblem] = []
    org = Organisation.objects.filter(portal__slug=config.portal, slug=config.organisation).first()
    if org is None:
        raise ConfigError([NoticeProblem(
            config.source, config.organisation_line, "organisation",
            f"no organisation '{config.organisation}' on portal '{config.portal}' (load the town's notice first, "
            "e.g. with 'guichet demo')")])
    report.organisation_id = org.pk
    sites = {}
    for s in config.sites:
        site = Site.objects.filter(organisation=org, slug=s["slug"]).first()
        created = site is None
        site = site or Site(organisation=org, slug=s["slug"])
        if _set(site, {"name": s["name"], "address": s["address"]}) or created:
            site.save()
            report.add("sites", created)
        sites[s["slug"]] = site
    for spec in config.activities:
        _write_activity(spec, org, sites, report, problems, config.source)
    User = get_user_model()
    for h in config.households:
        household = Household.objects.filter(organisation=org, reference=h.values["reference"]).first()
        created = household is None
        household = household or Household(organisation=org, created_at=now, **h.values)
        if _set(household, h.values) or created:
            household.save()
            report.add("households", created)
        for c in h.children:
            child, created = Child.objects.get_or_create(
                organisation=org, household=household, first_name=c["first_name"], birth_date=c["birth_date"],
                defaults={"school": c["school"]},
            )
            if not created and child.school != c["school"]:
                child.school = c["school"]
                child.save(update_fields=["school"])
                report.add("children", False)
            elif created:
                report.add("children", True)
        for username in h.guardians:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(username=username, email=h.values["email"])
                if demo_password:
                    user.set_password(demo_password)
                else:
                    user.set_unusable_password()
                user.save()
                report.add("accounts", True)
            _g, created = Guardian.objects.get_or_create(organisation=org, household=household, user=user)
            if created:
                report.add("guardians", True)
    if problems:
        raise ConfigError(problems)


def _write_activity(spec: ActivitySpec, org, sites, report: LoadReport, problems, source) -> None:
    v = spec.values
    activity = Activity.objects.filter(organisation=org, slug=v["slug"]).first()
    created = activity is None
    activity = activity or Activity(organisation=org, slug=v["slug"])
    if _set(activity, {k: v[k] for k in v if k != "slug"}) or created:
        activity.save()
        report.add("activities", created)
    for u in spec.units:
        unit = Unit.objects.filter(activity=activity, code=u["code"]).first()
        created = unit is None
        unit = unit or Unit(organisation=org, activity=activity, code=u["code"])
        if _set(unit, {k: u[k] for k in ("name", "name_en", "parts", "position")}) or created:
            unit.save()
            report.add("units", created)
    for site_slug, per_part, line, path in spec.capacities:
        site = sites.get(site_slug) or Site.objects.filter(organisation=org, slug=site_slug).first()
        if site is None:
            problems.append(NoticeProblem(source, line, f"{path}.site", f"unknown site '{site_slug}'"))
            continue
        existing = {s.date: s for s in Session.objects.filter(activity=activity, site=site)}
        wanted = set(spec.dates)
        report.kept_sessions += sum(1 for d in existing if d not in wanted)
        new = [Session(organisation=org, activity=activity, site=site, date=d) for d in spec.dates if d not in existing]
        if new:
            Session.objects.bulk_create(new, batch_size=500)
            report.created["sessions"] = report.created.get("sessions", 0) + len(new)
            existing = {s.date: s for s in Session.objects.filter(activity=activity, site=site)}
        session_ids = [existing[d].pk for d in spec.dates]
        parts = {(p.session_id, p.part): p for p in SessionPart.objects.filter(session_id__in=session_ids)}
        to_create, to_update = [], []
        for d in spec.dates:
            session = existing[d]
            for part, capacity in per_part.items():
                p = parts.get((session.pk, part))
                if p is None:
                    to_create.append(SessionPart(organisation=org, session=session, part=part, capacity=capacity))
                elif p.capacity != capacity:
                    if capacity < p.booked:
                        problems.append(NoticeProblem(
                            source, line, f"{path}.capacity",
                            f"{d.isoformat()} {part}: {capacity} places is fewer than the {p.booked} already taken"))
                        continue
                    p.capacity = capacity
                    to_update.append(p)
        if to_create:
            SessionPart.objects.bulk_create(to_create, batch_size=500)
            report.created["session parts"] = report.created.get("session parts", 0) + len(to_create)
        if to_update:
            SessionPart.objects.bulk_update(to_update, ["capacity"], batch_size=500)
            report.updated["session parts"] = report.updated.get("session parts", 0) + len(to_update)
    if spec.closures:
        closed = Session.objects.filter(activity=activity, date__in=spec.closures, closed=False).update(closed=True)
        if closed:
            report.updated["sessions closed"] = closed
    for w in spec.windows:
        window = RegistrationWindow.objects.filter(
            activity=activity, first_date=w["first_date"], last_date=w["last_date"]).first()
        created = window is None
        window = window or RegistrationWindow(organisation=org, activity=activity, first_date=w["first_date"],
                                              last_date=w["last_date"])
        if _set(window, {k: w[k] for k in ("opens_at", "residents_open_at", "closes_at")}) or created:
            window.save()
            report.add("registration windows", created)


def load_file(path, **kwargs) -> LoadReport:
    from pathlib import Path

    p = Path(path)
    return load_config(p.read_text(encoding="utf-8"), p.name, **kwargs)


__all__ = ["ConfigError", "FORMAT", "LoadReport", "load_config", "load_file", "parse_config"]
