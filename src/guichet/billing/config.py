"""Tariff files: an organisation's childhood tariffs as one YAML document (format
``guichet-billing/1``, documented in ``docs/guide-finance.md``), written by finance as dated
configuration, not code.

A file names its portal and organisation, then gives family-quotient brackets, sibling
reductions, the prices of each activity's units per bracket (and for non-residents) with
optional penalties, and the crèche PSU parameters, each with the date from which it applies.
The file is the whole history: loading it replaces the organisation's tariffs in one
transaction (issued invoices keep the prices they were issued with). Loading the same file
again changes nothing.

``parse_tariffs`` checks the document without a database and reports every problem as
``FILE:LINE: path: message``; ``load_tariffs`` also checks it against the database (activities,
units) and writes it, all or nothing, journaled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import transaction

from guichet.bookings.models import Activity, Unit
from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.common.yamlreader import Map as _Map
from guichet.common.yamlreader import Problem as NoticeProblem
from guichet.common.yamlreader import ProblemsError, Reader, as_date, parse_yaml
from guichet.journal.services import journal_append

from .models import (
    ActivityTariff,
    PsuRate,
    QuotientBracket,
    SiblingReduction,
    TariffFile,
    UnitPrice,
)

FORMAT = "guichet-billing/1"
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
AMOUNT = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
NON_RESIDENT = "non_resident"
TOP_FIELDS = ("format", "portal", "organisation", "brackets", "sibling_reductions", "activities", "creche")
BRACKET_SET_FIELDS = ("valid_from", "default", "brackets")
BRACKET_FIELDS = ("code", "up_to", "label")
REDUCTION_FIELDS = ("valid_from", "activities", "ranks")
ACTIVITY_FIELDS = ("activity", "tariffs")
TARIFF_FIELDS = ("valid_from", "late_cancellation_penalty", "absence_penalty", "prices")
CRECHE_FIELDS = ("activity", "psu")
PSU_FIELDS = ("valid_from", "floor", "ceiling", "effort_rates")
MAX_PRICE = 1_000_00  # 1,000 euros per unit


class TariffError(ProblemsError):
    """A tariff file that cannot be loaded; ``errors`` lists every problem, in line order."""


@dataclass
class Spec:
    source: str
    portal: str = ""
    organisation: str = ""
    organisation_line: int = 1
    brackets: list[dict] = field(default_factory=list)  # {valid_from, default, items: [(code, upper, label)]}
    reductions: list[dict] = field(default_factory=list)  # {valid_from, activities: [(slug, line)], ranks}
    tariffs: list[dict] = field(default_factory=list)  # {activity, line, valid_from, late, absence, prices}
    psu: list[dict] = field(default_factory=list)  # {activity, line, valid_from, floor, ceiling, rates}


@dataclass
class TariffReport:
    brackets: int = 0
    reductions: int = 0
    tariffs: int = 0
    prices: int = 0
    psu: int = 0
    changed: bool = False
    organisation_id: int | None = None

    def __str__(self) -> str:
        what = (f"{self.brackets} brackets, {self.reductions} sibling reductions, {self.tariffs} tariffs "
                f"({self.prices} prices), {self.psu} crèche PSU parameter sets")
        return what if self.changed else f"unchanged ({what})"


class _R(Reader):
    """The tariff file reader: the shared reader of hand-written YAML documents (problems, blocks,
    lists, line numbers; common.yamlreader) with the value readers of a tariff file."""

    def slug(self, block, key, path) -> str:
        value = block.get(key)
        if not isinstance(value, str) or not SLUG.match(value.strip()):
            if value is not None:
                self.problem(self.line(block, key), f"{path}.{key}",
                             f"'{value}' is not a valid identifier (letters, digits, '-' and '_' only)")
            return ""
        return value.strip()

    def date(self, block, key, path) -> dt.date | None:
        value = block.get(key)
        day = as_date(value)
        if day is None and value is not None:
            self.problem(self.line(block, key), f"{path}.{key}", f"'{value}' is not a date (expected YYYY-MM-DD)")
        return day

    def euros(self, value, line, path, *, maximum=MAX_PRICE) -> int | None:
        """An amount in euros: 12, 12.5, 12.50, "12,50", "12,50 €"; at most two decimals. No
        thousands separators (in a tariff file "2.005" is an error, not 2,005 euros)."""
        if isinstance(value, bool) or value is None:
            self.problem(line, path, "expected an amount in euros, e.g. 12.50")
            return None
        text = repr(value) if isinstance(value, float) else str(value)
        plain = text.replace("€", "").replace(",", ".").strip()
        if not AMOUNT.match(plain):
            self.problem(line, path, f"'{value}' is not an amount in euros (e.g. 12.50, at most two decimals)")
            return None
        cents = int(Decimal(plain) * 100)
        if not 0 <= cents <= maximum:
            self.problem(line, path, f"{text} is out of range (0 to {maximum // 100} euros)")
            return None
        return cents

    def percent(self, value, line, path, *, scale: int, what: str) -> int | None:
        """"10%" -> 1000 with scale 100 (basis points); "0.0619%" -> 619 with scale 10000
        (millionths). The result must be whole at that scale."""
        text = str(value).strip()
        if not text.endswith("%"):
            self.problem(line, path, f"expected a percentage like {what}")
            return None
        try:
            number = Decimal(text[:-1].strip().replace(",", ".")) * scale
        except InvalidOperation:
            self.problem(line, path, f"'{value}' is not a percentage like {what}")
            return None
        if number != number.to_integral_value() or not 0 <= number <= 100 * scale:
            self.problem(line, path, f"'{value}': too many decimals or out of range (like {what})")
            return None
        return int(number)


def parse_tariffs(text: str, source: str = "tariffs") -> Spec:
    """Check a tariff document; ``TariffError`` lists every problem with its line."""
    try:
        doc = parse_yaml(text, source)
    except ProblemsError as e:
        raise TariffError(e.errors) from None
    r = _R(source)
    top = r.block(doc, "", 1, TOP_FIELDS, ("format", "portal", "organisation"))
    if top is None:
        raise TariffError(r.problems)
    if top.get("format") not in (None, FORMAT):
        r.problem(r.line(top, "format"), "format", f"'{top.get('format')}' is not supported; expected {FORMAT}")
    spec = Spec(source, r.slug(top, "portal", ""), r.slug(top, "organisation", ""), r.line(top, "organisation"))
    _brackets(r, top, spec)
    _reductions(r, top, spec)
    _activities(r, top, spec)
    _creche(r, top, spec)
    if r.problems:
        raise TariffError(r.problems)
    return spec


def _brackets(r: _R, top, spec: Spec) -> None:
    seen: dict[dt.date, int] = {}
    for value, path, line in r.items(top, "brackets", ""):
        b = r.block(value, path, line, BRACKET_SET_FIELDS, ("valid_from", "brackets"))
        if b is None:
            continue
        valid_from = r.date(b, "valid_from", path)
        if valid_from in seen:
            r.problem(line, f"{path}.valid_from", f"brackets from {valid_from} are given twice (first on line "
                                                  f"{seen[valid_from]})")
        seen[valid_from] = line
        items, codes, last_upper = [], set(), -1
        entries = r.items(b, "brackets", path)
        for i, (iv, ipath, iline) in enumerate(entries):
            ib = r.block(iv, ipath, iline, BRACKET_FIELDS, ("code",))
            if ib is None:
                continue
            code = r.slug(ib, "code", ipath)
            if code in codes:
                r.problem(iline, f"{ipath}.code", f"bracket '{code}' is given twice")
            if code == NON_RESIDENT:
                r.problem(iline, f"{ipath}.code", f"'{NON_RESIDENT}' is reserved for the non-resident grid")
            codes.add(code)
            upper = ib.get("up_to")
            is_last = i == len(entries) - 1
            if upper is None and not is_last:
                r.problem(iline, f"{ipath}.up_to", "required (only the last bracket has no upper bound)")
            elif upper is not None:
                if is_last:
                    r.problem(r.line(ib, "up_to"), f"{ipath}.up_to",
                              "the last bracket has no upper bound: remove up_to")
                if isinstance(upper, bool) or not isinstance(upper, int) or not 0 <= upper <= 100_000:
                    r.problem(r.line(ib, "up_to"), f"{ipath}.up_to",
                              f"expected a whole number of euros from 0 to 100000, not {upper!r}")
                    upper = None
                elif upper <= last_upper:
                    r.problem(r.line(ib, "up_to"), f"{ipath}.up_to",
                              f"{upper} is not above the previous bracket's {last_upper}")
                else:
                    last_upper = upper
            label = str(ib.get("label") or "")[:80]
            items.append((code, upper if not is_last else None, label))
        if not entries:
            r.problem(line, f"{path}.brackets", "give at least one bracket")
        default = b.get("default")
        if default is not None and default not in codes:
            r.problem(r.line(b, "default"), f"{path}.default", f"'{default}' is not one of the brackets")
        spec.brackets.append({"valid_from": valid_from, "default": default or (items[-1][0] if items else ""),
                              "items": items, "line": line})


def _reductions(r: _R, top, spec: Spec) -> None:
    for value, path, line in r.items(top, "sibling_reductions", ""):
        b = r.block(value, path, line, REDUCTION_FIELDS, ("valid_from", "ranks"))
        if b is None:
            continue
        valid_from = r.date(b, "valid_from", path)
        activities = []
        for av, apath, aline in r.items(b, "activities", path):
            if not isinstance(av, str) or not SLUG.match(av):
                r.problem(aline, apath, f"'{av}' is not an activity identifier")
            else:
                activities.append((av, aline))
        ranks = {}
        for i, (rv, rpath, rline) in enumerate(r.items(b, "ranks", path, required=True)):
            bp = r.percent(rv, rline, rpath, scale=100, what="10%")
            if i == 0 and bp:
                r.problem(rline, rpath, "the first child has no sibling reduction: write 0%")
            elif bp is not None and i:
                ranks[i + 1] = bp
        if len(ranks) > 19:
            r.problem(r.line(b, "ranks"), f"{path}.ranks", "at most 20 ranks")
        spec.reductions.append({"valid_from": valid_from, "activities": activities, "ranks": ranks, "line": line})


def _activities(r: _R, top, spec: Spec) -> None:
    seen: dict[tuple, int] = {}
    for value, path, line in r.items(top, "activities", ""):
        b = r.block(value, path, line, ACTIVITY_FIELDS, ("activity", "tariffs"))
        if b is None:
            continue
        slug = r.slug(b, "activity", path)
        for tv, tpath, tline in r.items(b, "tariffs", path, required=True):
            tb = r.block(tv, tpath, tline, TARIFF_FIELDS, ("valid_from", "prices"))
            if tb is None:
                continue
            valid_from = r.date(tb, "valid_from", tpath)
            if (slug, valid_from) in seen:
                r.problem(tline, f"{tpath}.valid_from",
                          f"a tariff of '{slug}' from {valid_from} is given twice (first on line {seen[(slug, valid_from)]})")
            seen[(slug, valid_from)] = tline
            late = r.euros(tb.get("late_cancellation_penalty", 0), r.line(tb, "late_cancellation_penalty"),
                           f"{tpath}.late_cancellation_penalty")
            absence = r.euros(tb.get("absence_penalty", 0), r.line(tb, "absence_penalty"), f"{tpath}.absence_penalty")
            prices: dict[str, dict[str, int]] = {}
            raw = tb.get("prices")
            if not isinstance(raw, _Map):
                r.problem(r.line(tb, "prices"), f"{tpath}.prices", "expected unit codes with their prices")
                raw = _Map()
                raw.key_lines = {}
            for unit in raw:
                upath, uline = f"{tpath}.prices.{unit}", raw.key_lines[unit]
                grid = raw[unit]
                if not isinstance(grid, _Map):
                    r.problem(uline, upath, "expected a price per bracket, e.g. {A: 4.50, B: 8.00, non_resident: 20.00}")
                    continue
                prices[str(unit)] = {}
                for code in grid:
                    cents = r.euros(grid[code], grid.key_lines[code], f"{upath}.{code}")
                    if cents is not None:
                        prices[str(unit)][str(code)] = cents
            spec.tariffs.append({"activity": slug, "line": tline, "path": tpath, "valid_from": valid_from,
                                 "late": late or 0, "absence": absence or 0, "prices": prices,
                                 "price_lines": {str(u): raw.key_lines[u] for u in raw}})
    _check_grids(r, spec)


def _check_grids(r: _R, spec: Spec) -> None:
    """Every price grid gives a price for each bracket in force while the tariff applies, and
    for non-residents; and names no bracket that does not exist then."""
    sets = sorted((b for b in spec.brackets if b["valid_from"]), key=lambda b: b["valid_from"])
    if spec.tariffs and not sets:
        r.problem(1, "brackets", "required: the family-quotient brackets the prices refer to")
        return
    by_activity: dict[str, list] = {}
    for t in spec.tariffs:
        if t["valid_from"]:
            by_activity.setdefault(t["activity"], []).append(t)
    for tariffs in by_activity.values():
        tariffs.sort(key=lambda t: t["valid_from"])
        for i, t in enumerate(tariffs):
            end = tariffs[i + 1]["valid_from"] if i + 1 < len(tariffs) else dt.date.max
            if end <= t["valid_from"]:  # a date given twice: reported once, above
                continue
            live = [s for j, s in enumerate(sets)
                    if s["valid_from"] < end and (j + 1 == len(sets) or sets[j + 1]["valid_from"] > t["valid_from"])]
            if not live or live[0]["valid_from"] > t["valid_from"]:
                r.problem(t["line"], f"{t['path']}.valid_from",
                          f"no family-quotient brackets are in force on {t['valid_from']}")
            codes = {c for s in live for c, _u, _l in s["items"]}
            for unit, grid in t["prices"].items():
                line = t["price_lines"].get(unit, t["line"])
                missing = sorted((codes | {NON_RESIDENT}) - set(grid))
                if missing:
                    r.problem(line, f"{t['path']}.prices.{unit}", f"no price for: {', '.join(missing)}")
                unknown = sorted(set(grid) - codes - {NON_RESIDENT})
                if unknown:
                    r.problem(line, f"{t['path']}.prices.{unit}",
                              f"unknown bracket(s): {', '.join(unknown)} (brackets: {', '.join(sorted(codes))})")


def _creche(r: _R, top, spec: Spec) -> None:
    seen: dict[tuple, int] = {}
    for value, path, line in r.items(top, "creche", ""):
        b = r.block(value, path, line, CRECHE_FIELDS, ("activity", "psu"))
        if b is None:
            continue
        slug = r.slug(b, "activity", path)
        for pv, ppath, pline in r.items(b, "psu", path, required=True):
            pb = r.block(pv, ppath, pline, PSU_FIELDS, ("valid_from", "floor", "ceiling", "effort_rates"))
            if pb is None:
                continue
            valid_from = r.date(pb, "valid_from", ppath)
            if (slug, valid_from) in seen:
                r.problem(pline, f"{ppath}.valid_from", f"PSU parameters of '{slug}' from {valid_from} are given twice")
            seen[(slug, valid_from)] = pline
            floor = r.euros(pb.get("floor"), r.line(pb, "floor"), f"{ppath}.floor", maximum=100_000_00)
            ceiling = r.euros(pb.get("ceiling"), r.line(pb, "ceiling"), f"{ppath}.ceiling", maximum=100_000_00)
            if floor is not None and ceiling is not None and floor > ceiling:
                r.problem(r.line(pb, "ceiling"), f"{ppath}.ceiling", "the ceiling is below the floor")
            rates = {}
            for i, (rv, rpath, rline) in enumerate(r.items(pb, "effort_rates", ppath, required=True)):
                ppm = r.percent(rv, rline, rpath, scale=10_000, what="0.0619%")
                if ppm is not None:
                    rates[i + 1] = ppm
            if len(rates) > 20:
                r.problem(r.line(pb, "effort_rates"), f"{ppath}.effort_rates", "at most 20 rates")
            spec.psu.append({"activity": slug, "line": pline, "path": ppath, "valid_from": valid_from,
                             "floor": floor, "ceiling": ceiling, "rates": rates})


def load_tariffs(text: str, source: str = "tariffs", *, actor: Actor, now: dt.datetime,
                 dry_run: bool = False) -> TariffReport:
    """Check then write a tariff file, replacing the organisation's tariffs (all or nothing).
    ``dry_run`` checks against the database and writes nothing. The same file twice: no change."""
    spec = parse_tariffs(text, source)
    problems: list[NoticeProblem] = []
    org = Organisation.objects.filter(portal__slug=spec.portal, slug=spec.organisation).first()
    if org is None:
        raise TariffError([NoticeProblem(source, spec.organisation_line, "organisation",
                                         f"no organisation '{spec.organisation}' on portal '{spec.portal}'")])
    activities = {a.slug: a for a in Activity.objects.filter(organisation=org)}
    units = {(u.activity_id, u.code): u for u in Unit.objects.filter(organisation=org)}

    def activity(slug, line, path, creche=None):
        a = activities.get(slug)
        if a is None:
            problems.append(NoticeProblem(source, line, path, f"no activity '{slug}' in this organisation "
                                          f"(known: {', '.join(sorted(activities)) or 'none'})"))
        elif creche is True and a.kind != Activity.Kind.CRECHE:
            problems.append(NoticeProblem(source, line, path, f"'{slug}' is not a crèche activity"))
        elif creche is False and a.kind == Activity.Kind.CRECHE:
            problems.append(NoticeProblem(source, line, path,
                                          f"'{slug}' is a crèche: give its PSU parameters under 'creche'"))
        return a

    report = TariffReport(organisation_id=org.pk)
    brackets = [QuotientBracket(organisation=org, valid_from=s["valid_from"], code=code, label=label, upper=upper,
                                position=i, is_default=code == s["default"])
                for s in spec.brackets for i, (code, upper, label) in enumerate(s["items"])]
    reductions = []
    for red in spec.reductions:
        targets = [activity(slug, line, "sibling_reductions.activities") for slug, line in red["activities"]] or [None]
        for a in targets:
            if a is not None or not red["activities"]:
                reductions += [SiblingReduction(organisation=org, activity=a, valid_from=red["valid_from"], rank=k,
                                                percent_bp=v) for k, v in red["ranks"].items()]
    tariffs, prices = [], []
    for t in spec.tariffs:
        a = activity(t["activity"], t["line"], f"{t['path']}", creche=False)
        if a is None or a.kind == Activity.Kind.CRECHE:
            continue
        tariff = ActivityTariff(organisation=org, activity=a, valid_from=t["valid_from"],
                                late_cancellation_penalty_cents=t["late"], absence_penalty_cents=t["absence"])
        tariffs.append(tariff)
        for code, grid in t["prices"].items():
            unit = units.get((a.pk, code))
            if unit is None:
                known = sorted(c for (aid, c) in units if aid == a.pk)
                problems.append(NoticeProblem(source, t["price_lines"].get(code, t["line"]),
                                              f"{t['path']}.prices.{code}",
                                              f"no unit '{code}' in activity '{a.slug}' (units: {', '.join(known)})"))
                continue
            for bracket, cents in grid.items():
                resident = bracket != NON_RESIDENT
                prices.append(UnitPrice(organisation=org, tariff=tariff, unit=unit, resident=resident,
                                        bracket=bracket if resident else "", price_cents=cents))
    psu = []
    for p in spec.psu:
        a = activity(p["activity"], p["line"], p["path"], creche=True)
        if a is not None and a.kind == Activity.Kind.CRECHE:
            psu.append(PsuRate(organisation=org, activity=a, valid_from=p["valid_from"], floor_cents=p["floor"],
                               ceiling_cents=p["ceiling"], effort_rates={str(k): v for k, v in p["rates"].items()}))
    if problems:
        raise TariffError(problems)
    report.brackets, report.reductions, report.tariffs = len(brackets), len(reductions), len(tariffs)
    report.prices, report.psu = len(prices), len(psu)
    digest = hashlib.sha256(text.encode()).hexdigest()
    current = TariffFile.objects.filter(organisation=org).first()
    if current is not None and current.digest == digest:
        return report
    report.changed = True
    if dry_run:
        return report
    with transaction.atomic(durable=True):
        UnitPrice.objects.filter(organisation=org).delete()
        ActivityTariff.objects.filter(organisation=org).delete()
        QuotientBracket.objects.filter(organisation=org).delete()
        SiblingReduction.objects.filter(organisation=org).delete()
        PsuRate.objects.filter(organisation=org).delete()
        QuotientBracket.objects.bulk_create(brackets)
        SiblingReduction.objects.bulk_create(reductions)
        ActivityTariff.objects.bulk_create(tariffs)
        UnitPrice.objects.bulk_create(prices, batch_size=1000)
        PsuRate.objects.bulk_create(psu)
        TariffFile.objects.update_or_create(organisation=org, defaults={
            "source": source[:200], "digest": digest, "text": text, "loaded_at": now})
        journal_append(actor=actor, operation="billing.tariffs.load", objects=[],
                       details={"brackets": report.brackets, "reductions": report.reductions,
                                "tariffs": report.tariffs, "prices": report.prices, "psu": report.psu},
                       payload=text, organisation_id=org.pk, now=now)
    return report


def load_tariff_file(path, **kwargs) -> TariffReport:
    from pathlib import Path

    p = Path(path)
    return load_tariffs(p.read_text(encoding="utf-8"), p.name, **kwargs)


__all__ = ["FORMAT", "TariffError", "TariffReport", "load_tariff_file", "load_tariffs", "parse_tariffs"]
