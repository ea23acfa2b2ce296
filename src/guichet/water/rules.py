"""Water and sanitation billing rules: plain functions over plain values, no database.

Money is integer cents (``guichet.common.money``). Rounding happens at three documented points
only: each invoice line (quantity × unit price, half up), VAT once per rate per invoice, and each
instalment (a schedule's total split to the cent). Periods are half-open ``[start, end)`` dates.

* **Subscription** (abonnement): a yearly amount per meter diameter, prorated by days. A period
  is cut at each 1 January and each part counts ``days / days in that year``: a whole calendar
  year is exactly the yearly amount, leap year or not.
* **Consumption**: m³ between two index readings, split between dated tariffs in proportion to
  the days of the reading period each tariff covers; each part is priced in bands whose yearly
  thresholds are prorated in the same way ("up to 120 m³ a year").
* **Levies** (water agency: resource preservation, pollution, collection networks) are headings
  priced per m³ like any other.
* **VAT** per heading: 5.5 % (water supply), 10 % (sanitation), or none (outside the scope of
  VAT); computed once per rate on the sum of that rate's lines.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from guichet.common.money import split_evenly, to_cents


class RuleError(ValueError):
    """A tariff definition or an input that the rules cannot price (the message names it)."""


# --- Tariffs ----------------------------------------------------------------------------------

VAT_RATES = (Decimal("5.5"), Decimal("10"), Decimal("20"))


@dataclass(frozen=True)
class Band:
    up_to: Decimal | None  # yearly m³ threshold; None = no upper limit
    price: Decimal  # euros per m³ (up to 4 decimals)


@dataclass(frozen=True)
class Heading:
    code: str
    label: str
    label_en: str
    vat: Decimal | None  # percent; None = outside the scope of VAT
    sanitation: bool  # billed only to contracts connected to the sewer
    subscription: dict[int, Decimal]  # diameter in mm -> euros per year
    bands: tuple[Band, ...]


@dataclass(frozen=True)
class Tariff:
    valid_from: dt.date
    headings: tuple[Heading, ...]


def _decimal(value, where: str, *, places: int = 4) -> Decimal:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise RuleError(f"{where}: {value!r} is not a number") from None
    if not d.is_finite() or d < 0:
        raise RuleError(f"{where}: {value!r} must be a positive number")
    if d != d.quantize(Decimal(1).scaleb(-places)):
        raise RuleError(f"{where}: {value!r} has more than {places} decimals")
    return d


def parse_tariff(valid_from: dt.date, definition: dict) -> Tariff:
    """Read a tariff definition (the JSON stored on ``water.Tariff``); :class:`RuleError` names
    the first wrong field."""
    if not isinstance(definition, dict) or not isinstance(definition.get("headings"), list):
        raise RuleError("tariff: 'headings' must be a list")
    headings: list[Heading] = []
    seen: set[str] = set()
    for i, raw in enumerate(definition["headings"], start=1):
        where = f"heading {i}"
        if not isinstance(raw, dict):
            raise RuleError(f"{where}: must be a mapping")
        code = str(raw.get("code") or "").strip()
        if not code:
            raise RuleError(f"{where}: 'code' is missing")
        where = f"heading {code!r}"
        if code in seen:
            raise RuleError(f"{where}: declared twice")
        seen.add(code)
        label = str(raw.get("label") or "").strip()
        if not label:
            raise RuleError(f"{where}: 'label' is missing")
        vat_raw = raw.get("vat")
        vat = None if vat_raw in (None, "", "none") else _decimal(vat_raw, f"{where} vat", places=2)
        if vat is not None and vat not in VAT_RATES:
            raise RuleError(f"{where}: VAT {vat_raw!r} is not one of 5.5, 10, 20 or none")
        subscription: dict[int, Decimal] = {}
        for diameter, amount in (raw.get("subscription") or {}).items():
            try:
                mm = int(diameter)
            except (TypeError, ValueError):
                raise RuleError(f"{where}: meter diameter {diameter!r} is not a whole number of mm") from None
            subscription[mm] = _decimal(amount, f"{where} subscription {mm} mm", places=2)
        bands: list[Band] = []
        if "price" in raw:
            bands.append(Band(None, _decimal(raw["price"], f"{where} price")))
        for j, b in enumerate(raw.get("bands") or [], start=1):
            up_to = b.get("up_to")
            bands.append(Band(None if up_to is None else _decimal(up_to, f"{where} band {j} up_to", places=0),
                              _decimal(b.get("price"), f"{where} band {j} price")))
        limits = [b.up_to for b in bands[:-1]]
        if None in limits or any(a >= b for a, b in zip(limits, limits[1:], strict=False)):
            raise RuleError(f"{where}: band thresholds must be given and increase; only the last band has none")
        if bands and bands[-1].up_to is not None:
            raise RuleError(f"{where}: the last band must have no upper limit")
        if not bands and not subscription:
            raise RuleError(f"{where}: needs a 'price', 'bands' or a 'subscription'")
        headings.append(Heading(code, label, str(raw.get("label_en") or ""), vat,
                                bool(raw.get("sanitation")), subscription, tuple(bands)))
    if not headings:
        raise RuleError("tariff: no heading")
    return Tariff(valid_from, tuple(headings))


def tariff_segments(tariffs: Sequence[Tariff], start: dt.date, end: dt.date) -> list[tuple[Tariff, dt.date, dt.date]]:
    """The tariffs in force over ``[start, end)``, each with the part of the period it covers."""
    if end <= start:
        return []
    ordered = sorted(tariffs, key=lambda t: t.valid_from)
    segments = []
    for i, t in enumerate(ordered):
        t_end = ordered[i + 1].valid_from if i + 1 < len(ordered) else dt.date.max
        s, e = max(start, t.valid_from), min(end, t_end)
        if s < e:
            segments.append((t, s, e))
    covered = sum((e - s).days for _, s, e in segments)
    if covered != (end - start).days:
        first = ordered[0].valid_from.isoformat() if ordered else "none"
        raise RuleError(f"no tariff in force on {start.isoformat()} (first tariff: {first})")
    return segments


@functools.lru_cache(maxsize=4096)
def year_fraction(start: dt.date, end: dt.date) -> Decimal:
    """Share of a year covered by ``[start, end)``: each calendar year's days / its length."""
    total = Decimal(0)
    cursor = start
    while cursor < end:
        next_jan = dt.date(cursor.year + 1, 1, 1)
        stop = min(end, next_jan)
        days_in_year = 366 if calendar.isleap(cursor.year) else 365
        total += Decimal((stop - cursor).days) / Decimal(days_in_year)
        cursor = stop
    return total


# --- Bills --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Line:
    heading: str
    label: str
    kind: str  # "subscription" | "consumption"
    start: dt.date
    end: dt.date
    quantity: Decimal  # year fraction for a subscription, m³ for consumption
    unit_price: Decimal  # euros per year or per m³
    amount: int  # cents, excluding VAT, rounded half up
    vat: Decimal | None

    def as_dict(self) -> dict:
        return {"heading": self.heading, "label": self.label, "kind": self.kind,
                "start": self.start.isoformat(), "end": self.end.isoformat(),
                "quantity": str(self.quantity), "unit_price": str(self.unit_price),
                "amount": self.amount, "vat": None if self.vat is None else str(self.vat)}


@dataclass(frozen=True)
class Bill:
    lines: tuple[Line, ...]
    vat: dict[str, int]  # rate ("5.5", "10", "none") -> VAT cents, once per rate
    base: dict[str, int]  # rate -> sum of the lines excluding VAT
    total_excl_vat: int
    total_vat: int
    total: int

    def as_dict(self) -> dict:
        return {"lines": [ln.as_dict() for ln in self.lines], "vat": self.vat, "base": self.base,
                "total_excl_vat": self.total_excl_vat, "total_vat": self.total_vat, "total": self.total}


def _rate_key(rate: Decimal | None) -> str:
    return "none" if rate is None else format(rate.normalize(), "f")


def assemble(lines: Iterable[Line]) -> Bill:
    """Totals of a bill: VAT computed once per rate on the sum of that rate's lines."""
    lines = tuple(lines)
    base: dict[str, int] = {}
    rates: dict[str, Decimal | None] = {}
    for ln in lines:
        key = _rate_key(ln.vat)
        base[key] = base.get(key, 0) + ln.amount
        rates[key] = ln.vat
    vat = {k: (0 if rates[k] is None else to_cents(Decimal(v) * rates[k] / 100)) for k, v in base.items()}
    excl = sum(base.values())
    tax = sum(vat.values())
    return Bill(lines, vat, base, excl, tax, excl + tax)


def _band_quantities(quantity: Decimal, bands: Sequence[Band], fraction: Decimal) -> list[tuple[Band, Decimal]]:
    """Split a positive volume between bands whose yearly thresholds are scaled by ``fraction``."""
    out = []
    floor = Decimal(0)
    for b in bands:
        ceiling = None if b.up_to is None else (b.up_to * fraction).quantize(Decimal("0.001"))
        top = quantity if ceiling is None else min(quantity, ceiling)
        if top - floor > 0:
            out.append((b, top - floor))
        if ceiling is None or quantity <= ceiling:
            break
        floor = ceiling
    return out


def compute_bill(
    *,
    tariffs: Sequence[Tariff],
    diameter: int,
    sanitation: bool,
    subscription_period: tuple[dt.date, dt.date] | None,
    consumption_period: tuple[dt.date, dt.date] | None,
    consumption: int,
) -> Bill:
    """Price one contract over a period. ``consumption`` is the index difference in m³ over
    ``consumption_period`` (negative when an over-estimate is corrected: the lines are then
    credits at the first band's price)."""
    lines: list[Line] = []
    if subscription_period is not None:
        s0, s1 = subscription_period
        for tariff, s, e in tariff_segments(tariffs, s0, s1):
            frac = year_fraction(s, e)
            for h in tariff.headings:
                if h.sanitation and not sanitation or not h.subscription:
                    continue
                if diameter not in h.subscription:
                    raise RuleError(f"heading {h.code!r}: no subscription for a {diameter} mm meter")
                yearly = h.subscription[diameter]
                lines.append(Line(h.code, h.label, "subscription", s, e, frac, yearly,
                                  to_cents(yearly * 100 * frac), h.vat))
    if consumption_period is not None and consumption != 0:
        c0, c1 = consumption_period
        days = (c1 - c0).days
        if days <= 0:
            raise RuleError("the consumption period is empty")
        segments = tariff_segments(tariffs, c0, c1)
        remaining = Decimal(consumption)
        for i, (tariff, s, e) in enumerate(segments):
            # The last segment takes what is left, so the parts add up to the metered volume.
            part = remaining if i == len(segments) - 1 else Decimal(consumption) * (e - s).days / days
            part = part.quantize(Decimal("0.001"))
            remaining -= part
            frac = year_fraction(s, e)
            for h in tariff.headings:
                if h.sanitation and not sanitation or not h.bands:
                    continue
                if part < 0:
                    band_parts = [(h.bands[0], part)]
                else:
                    band_parts = _band_quantities(part, h.bands, frac)
                for band, q in band_parts:
                    lines.append(Line(h.code, h.label, "consumption", s, e, q, band.price,
                                      to_cents(q * band.price * 100), h.vat))
    return assemble(lines)


# --- Readings -----------------------------------------------------------------------------------


def estimate_index(history: Sequence[tuple[dt.date, int]], on: dt.date) -> int | None:
    """Estimate the index on ``on`` from actual readings ``(date, index)``: the average daily
    consumption between the first and the last, carried forward. ``None`` when fewer than two."""
    history = sorted(history)
    if len(history) < 2:
        return None
    (d0, i0), (d1, i1) = history[0], history[-1]
    if d1 <= d0 or on <= d1:
        return i1 if on >= d1 else None
    per_day = Decimal(i1 - i0) / (d1 - d0).days
    return i1 + int(to_cents(per_day * (on - d1).days))


# --- Schedules ------------------------------------------------------------------------------------


def schedule_due_dates(year: int, count: int, *, day: int = 10, first_month: int = 1) -> list[dt.date]:
    """Due dates of ``count`` monthly instalments from ``first_month`` of ``year``."""
    if not 1 <= count <= 12 or not 1 <= first_month <= 12 or first_month + count - 1 > 12:
        raise RuleError(f"{count} monthly instalments from month {first_month} do not fit in one year")
    if not 1 <= day <= 28:
        raise RuleError("the instalment day must be between 1 and 28")
    return [dt.date(year, first_month + i, day) for i in range(count)]


FULL_YEAR_DAYS = 300


def schedule_basis(bill_total: int, period_days: int) -> int:
    """The next schedule's yearly basis from a bill over ``period_days``: the bill itself when it
    covers most of a year, else the bill brought to 365 days (a customer who moved in during the
    autumn must not get a schedule of a few weeks' water). Never negative."""
    if bill_total <= 0 or period_days <= 0:
        return 0
    if period_days >= FULL_YEAR_DAYS:
        return bill_total
    return to_cents(Decimal(bill_total) * 365 / period_days)


def schedule_amounts(total: int, count: int) -> list[int]:
    """The instalments of a schedule: ``total`` split to the cent, never negative."""
    return split_evenly(max(total, 0), count)


@dataclass(frozen=True)
class Regularisation:
    bill_total: int
    collected: int
    balance: int  # > 0: the customer owes it; < 0: a credit

    @property
    def is_credit(self) -> bool:
        return self.balance < 0


INSTALMENT_STATES = ("planned", "collected", "not_collected", "rejected", "cancelled")


def regularise(bill_total: int, instalments: Iterable[tuple[str, int]]) -> Regularisation:
    """Actual bill − instalments actually collected. ``instalments`` are ``(state, amount)``;
    only ``collected`` counts: skipped (outage), rejected, cancelled or still planned ones are
    not money received."""
    collected = 0
    for state, amount in instalments:
        if state not in INSTALMENT_STATES:
            raise RuleError(f"unknown instalment state {state!r}")
        if state == "collected":
            collected += amount
    return Regularisation(bill_total, collected, bill_total - collected)


def plan_amounts(total: int, count: int) -> list[int]:
    """An instalment plan for a large balance: ``count`` monthly parts to the cent."""
    if total <= 0:
        raise RuleError("only an amount due can be spread")
    if not 2 <= count <= 12:
        raise RuleError("an instalment plan has between 2 and 12 instalments")
    return split_evenly(total, count)


def add_months(day: dt.date, months: int) -> dt.date:
    m = day.month - 1 + months
    year, month = day.year + m // 12, m % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- SEPA ----------------------------------------------------------------------------------------


def sequence_type(*, one_off: bool, used_before: bool, last: bool) -> str:
    """SEPA sequence type of a debit under a mandate: OOFF for a one-off mandate, FRST for the
    first debit of a recurrent mandate, FNAL for its last, RCUR otherwise."""
    if one_off:
        return "OOFF"
    if not used_before:
        return "FRST"
    return "FNAL" if last else "RCUR"


def mask_iban(iban: str) -> str:
    """``FR7630006000011234567890189`` -> ``FR76 •••• 0189`` (country, check digits, last four)."""
    compact = "".join(iban.split()).upper()
    if len(compact) < 8:
        return "••••"
    return f"{compact[:4]} •••• {compact[-4:]}"


@dataclass
class RunSummary:
    """What a long operation did, for the console and the screens."""

    count: int = 0
    amounts: dict[str, int] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)

    def add(self, key: str, cents: int) -> None:
        self.amounts[key] = self.amounts.get(key, 0) + cents
