"""Billing rules as plain functions over plain values (no database): what is billable, which
tariff and bracket apply, sibling ranks and reductions, the crèche PSU hourly rate, line
amounts and invoice totals.

Rounding happens at two documented points only (``guichet.common.money.to_cents``, half up):
the unit price after a sibling reduction, and a line's amount (quantity x unit price). The PSU
hourly rate is rounded to the cent before it is multiplied by the hours, as families see it on
their contract. An invoice total is the exact sum of its lines (no rounding).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from guichet.common.money import to_cents

# What a booking is billed as (``None``: not billed). Names match InvoiceLine.Kind.
BOOKED = "booked"
LATE_CANCELLATION = "late_cancellation"
UNJUSTIFIED_ABSENCE = "unjustified_absence"
LATE_PENALTY = "late_penalty"
ABSENCE_PENALTY = "absence_penalty"
CRECHE_CONTRACT = "creche_contract"
PENALTY_OF = {LATE_CANCELLATION: LATE_PENALTY, UNJUSTIFIED_ABSENCE: ABSENCE_PENALTY}


def classify(*, status: str, late: bool, present: bool | None, justified: bool, closed: bool = False) -> str | None:
    """What a booking is billed as.

    - a session closed by the organiser (strike, works) is never billed;
    - booked, attended or not recorded: billed (``booked``);
    - booked, recorded absent: billed (``unjustified_absence``) unless a justification was given;
    - cancelled after the deadline (``late``): billed (``late_cancellation``) unless justified;
    - cancelled in time: not billed.
    """
    if closed:
        return None
    if status == "booked":
        if present is False:
            return None if justified else UNJUSTIFIED_ABSENCE
        return BOOKED
    if status == "cancelled" and late:
        return None if justified else LATE_CANCELLATION
    return None


def needs_justification_window(kind: str | None) -> bool:
    """Items that a justification could still remove: billed only once the window closed."""
    return kind in (LATE_CANCELLATION, UNJUSTIFIED_ABSENCE)


# --- months -------------------------------------------------------------------------------


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def months(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every first-of-month from ``first`` to ``last`` included."""
    out, m = [], month_start(first)
    while m <= last:
        out.append(m)
        m = next_month(m)
    return out


def parse_month(text: str) -> dt.date:
    """``"2024-09"`` -> 2024-09-01; ``ValueError`` with a clear message otherwise."""
    try:
        year, month = str(text).strip().split("-")
        return dt.date(int(year), int(month), 1)
    except (ValueError, TypeError):
        raise ValueError(f"'{text}' is not a month (expected YYYY-MM, e.g. 2024-09)") from None


# --- dated values -----------------------------------------------------------------------------


def in_force(valid_froms: Sequence[dt.date], day: dt.date) -> dt.date | None:
    """The latest ``valid_from`` on or before ``day`` (``valid_froms`` sorted), or None."""
    i = bisect.bisect_right(valid_froms, day)
    return valid_froms[i - 1] if i else None


@dataclass(frozen=True)
class Bracket:
    code: str
    upper: int | None  # highest quotient (euros) in the bracket; None: no upper bound
    is_default: bool = False


def bracket_for(quotient: int | None, brackets: Sequence[Bracket]) -> tuple[str, bool]:
    """The bracket code for a family quotient, and whether the default was used (no quotient).
    ``brackets`` are in order; the first with ``quotient <= upper`` wins, the open one last."""
    if not brackets:
        raise ValueError("no brackets")
    if quotient is None:
        default = next((b for b in brackets if b.is_default), brackets[-1])
        return default.code, True
    for b in brackets:
        if b.upper is None or quotient <= b.upper:
            return b.code, False
    return brackets[-1].code, False


def sibling_ranks(children: Iterable[tuple[int, dt.date]]) -> dict[int, int]:
    """Rank of each child (id, birth date) among siblings: eldest first (1), ties by id."""
    ordered = sorted(children, key=lambda c: (c[1], c[0]))
    return {child_id: i + 1 for i, (child_id, _birth) in enumerate(ordered)}


def sibling_reduction_bp(rank: int, reductions: Mapping[int, int]) -> int:
    """Basis points off for a rank: the reduction of the highest configured rank <= ``rank``."""
    eligible = [r for r in reductions if r <= rank]
    return reductions[max(eligible)] if eligible else 0


def reduced_price(price_cents: int, reduction_bp: int) -> int:
    """A unit price after a reduction in basis points (rounded half up to the cent)."""
    if not 0 <= reduction_bp <= 10_000:
        raise ValueError("reduction out of range")
    return to_cents(Decimal(price_cents) * (10_000 - reduction_bp) / 10_000)


def line_amount(quantity: Decimal | int, unit_price_cents: int) -> int:
    """A line's amount: quantity x unit price, rounded half up to the cent."""
    return to_cents(Decimal(quantity) * unit_price_cents)


def invoice_total(amounts: Iterable[int]) -> int:
    """An invoice's total is the exact sum of its lines' amounts."""
    return sum(int(a) for a in amounts)


# --- crèche (PSU) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Psu:
    floor_cents: int
    ceiling_cents: int
    effort_rates: Mapping[int, int]  # children -> millionths (0.0619 % -> 619)


def effort_rate(children: int, rates: Mapping[int, int]) -> int:
    """The effort rate for a number of dependent children: the highest configured count <=
    ``children`` (at least 1)."""
    n = max(1, int(children))
    eligible = [k for k in rates if k <= n]
    if not eligible:
        raise ValueError("no effort rate for one child")
    return rates[max(eligible)]


def psu_hourly_rate(resources_cents: int | None, children: int | None, psu: Psu) -> tuple[int, bool]:
    """Hourly rate in cents = resources clamped to [floor, ceiling] x effort rate, half up.
    No resources known: the ceiling applies (CNAF rule) and the second value says so."""
    missing = resources_cents is None
    resources = psu.ceiling_cents if missing else min(max(resources_cents, psu.floor_cents), psu.ceiling_cents)
    rate = effort_rate(children or 1, psu.effort_rates)
    return to_cents(Decimal(resources) * rate / 1_000_000), missing


def hours_quantity(hours: Decimal | int | str) -> Decimal:
    return Decimal(hours).quantize(Decimal("0.01"))


# --- credit ---------------------------------------------------------------------------------------


def allocate_oldest_first(credits: Sequence[tuple[object, int]], debts: Sequence[tuple[object, int]]):
    """Apply credits (source, available cents) to debts (target, due cents), both oldest first.
    Returns ``[(source, target, amount)]``; never more than a source has nor a target owes."""
    out = []
    credits = [[s, a] for s, a in credits if a > 0]
    i = 0
    for target, due in debts:
        while due > 0 and i < len(credits):
            source, available = credits[i]
            take = min(available, due)
            out.append((source, target, take))
            due -= take
            credits[i][1] -= take
            if credits[i][1] == 0:
                i += 1
    return out
