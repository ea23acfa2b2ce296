"""The tariffs of an organisation as plain values (a ``TariffBook``), read once per run, and the
pricing of one group of billable items with them. Pure once loaded: ``price_group`` and
``creche_line`` take and return plain values."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from . import rules
from .models import ActivityTariff, PsuRate, QuotientBracket, SiblingReduction, UnitPrice


@dataclass
class TariffBook:
    # activity -> sorted tariff dates; (activity, date) -> (late penalty, absence penalty)
    tariff_dates: dict[int, list[dt.date]] = field(default_factory=dict)
    penalties: dict[tuple[int, dt.date], tuple[int, int]] = field(default_factory=dict)
    # (activity, tariff date, unit, resident, bracket) -> cents ("" bracket for non-residents)
    prices: dict[tuple[int, dt.date, int, bool, str], int] = field(default_factory=dict)
    bracket_dates: list[dt.date] = field(default_factory=list)
    brackets: dict[dt.date, list[rules.Bracket]] = field(default_factory=dict)
    # activity (None: every activity without its own) -> sorted dates, and date -> {rank: bp}
    reduction_dates: dict[int | None, list[dt.date]] = field(default_factory=dict)
    reductions: dict[tuple[int | None, dt.date], dict[int, int]] = field(default_factory=dict)
    psu_dates: dict[int, list[dt.date]] = field(default_factory=dict)
    psu: dict[tuple[int, dt.date], rules.Psu] = field(default_factory=dict)

    def boundaries(self, activity_id: int) -> list[dt.date]:
        """Every date from which something that prices this activity changes (its tariffs,
        the brackets, the sibling reductions that apply to it), sorted."""
        red_key = activity_id if activity_id in self.reduction_dates else None
        dates = set(self.tariff_dates.get(activity_id, ()))
        if dates:
            first = min(dates)
            dates |= {d for d in self.bracket_dates if d > first}
            dates |= {d for d in self.reduction_dates.get(red_key, ()) if d > first}
        return sorted(dates)


def load_book(organisation_id: int) -> TariffBook:
    book = TariffBook()
    dates: dict[int, set] = defaultdict(set)
    for t in ActivityTariff.objects.filter(organisation_id=organisation_id):
        dates[t.activity_id].add(t.valid_from)
        book.penalties[(t.activity_id, t.valid_from)] = (t.late_cancellation_penalty_cents, t.absence_penalty_cents)
    book.tariff_dates = {a: sorted(d) for a, d in dates.items()}
    for p in UnitPrice.objects.filter(organisation_id=organisation_id).select_related("tariff"):
        book.prices[(p.tariff.activity_id, p.tariff.valid_from, p.unit_id, p.resident, p.bracket)] = p.price_cents
    by_date: dict[dt.date, list] = defaultdict(list)
    for b in QuotientBracket.objects.filter(organisation_id=organisation_id).order_by("valid_from", "position"):
        by_date[b.valid_from].append(rules.Bracket(b.code, b.upper, b.is_default))
    book.brackets = dict(by_date)
    book.bracket_dates = sorted(by_date)
    red_dates: dict[int | None, set] = defaultdict(set)
    for r in SiblingReduction.objects.filter(organisation_id=organisation_id):
        red_dates[r.activity_id].add(r.valid_from)
        book.reductions.setdefault((r.activity_id, r.valid_from), {})[r.rank] = r.percent_bp
    book.reduction_dates = {a: sorted(d) for a, d in red_dates.items()}
    psu_dates: dict[int, set] = defaultdict(set)
    for p in PsuRate.objects.filter(organisation_id=organisation_id):
        psu_dates[p.activity_id].add(p.valid_from)
        book.psu[(p.activity_id, p.valid_from)] = rules.Psu(
            p.floor_cents, p.ceiling_cents, {int(k): int(v) for k, v in p.effort_rates.items()})
    book.psu_dates = {a: sorted(d) for a, d in psu_dates.items()}
    return book


@dataclass(frozen=True)
class Priced:
    unit_price_cents: int  # after the sibling reduction
    bracket: str
    defaulted: bool  # no quotient: the default bracket was used
    penalty_cents: int  # per item, for late cancellations / unjustified absences (0: none)
    tariff_date: dt.date


def price_group(
    book: TariffBook, *, activity_id: int, unit_id: int, day: dt.date, kind: str, resident: bool,
    quotient: int | None, rank: int,
) -> Priced | None:
    """The price of one item of ``unit`` on ``day`` for a household (resident or not, with its
    frozen quotient) and a child of sibling rank ``rank``. None: no tariff in force."""
    tariff_date = rules.in_force(book.tariff_dates.get(activity_id, []), day)
    if tariff_date is None:
        return None
    if resident:
        bracket_date = rules.in_force(book.bracket_dates, day)
        if bracket_date is None:
            return None
        bracket, defaulted = rules.bracket_for(quotient, book.brackets[bracket_date])
    else:
        bracket, defaulted = "", False
    base = book.prices.get((activity_id, tariff_date, unit_id, resident, bracket))
    if base is None:
        return None
    red_key = activity_id if activity_id in book.reduction_dates else None
    red_date = rules.in_force(book.reduction_dates.get(red_key, []), day)
    bp = rules.sibling_reduction_bp(rank, book.reductions.get((red_key, red_date), {})) if red_date else 0
    late, absence = book.penalties.get((activity_id, tariff_date), (0, 0))
    penalty = late if kind == rules.LATE_CANCELLATION else absence if kind == rules.UNJUSTIFIED_ABSENCE else 0
    return Priced(rules.reduced_price(base, bp), bracket, defaulted and resident, penalty, tariff_date)


def psu_for(book: TariffBook, activity_id: int, month: dt.date) -> tuple[dt.date, rules.Psu] | None:
    d = rules.in_force(book.psu_dates.get(activity_id, []), month)
    return (d, book.psu[(activity_id, d)]) if d else None


# --- the price grid: every price ``price_group`` can give, for pricing in SQL ------------------------

PRICED_KINDS = (rules.BOOKED, rules.LATE_CANCELLATION, rules.UNJUSTIFIED_ABSENCE)
NO_QUOTIENT = -1  # the quotient class of a household without a quotient
MAX_QUOTIENT = 2_147_483_647  # a quotient is a PositiveIntegerField


def quotient_classes(book: TariffBook) -> list[tuple[int, int, int | None]]:
    """Integer quotient ranges ``(lo, hi, representative)`` inside which every bracket list of the
    book gives the same bracket (their bounds are the union of all ``upper`` values; a bracket
    includes its upper bound), plus ``(-1, -1, None)`` for a household without a quotient."""
    out: list[tuple[int, int, int | None]] = [(NO_QUOTIENT, NO_QUOTIENT, None)]
    lo = 0
    for upper in sorted({b.upper for brackets in book.brackets.values() for b in brackets if b.upper is not None}):
        out.append((lo, upper, lo))
        lo = upper + 1
    out.append((lo, MAX_QUOTIENT, lo))
    return out


def max_rank(book: TariffBook) -> int:
    """Sibling ranks above this one are priced like it (``rules.sibling_reduction_bp`` takes the
    highest configured rank <= the child's)."""
    return max([1, *(rank for reductions in book.reductions.values() for rank in reductions)])


def price_grid(book: TariffBook, units: dict[int, list[int]]) -> list[tuple]:
    """``price_group`` evaluated over its whole finite domain, for the given activities and their
    units: one row ``(activity, segment, unit, kind, resident, quotient lo, quotient hi, rank,
    unit price, bracket, defaulted, penalty)`` per combination that has a price. A segment is a
    pricing boundary of the activity (``TariffBook.boundaries``): every date from one boundary to
    the next prices alike. The SQL path of a run joins its groups to these rows, so the prices
    in SQL are the Python rules' own (tests/billing/test_sql_pricing.py checks the join)."""
    rows = []
    classes = quotient_classes(book)
    ranks = range(1, max_rank(book) + 1)
    for activity_id, unit_ids in units.items():
        for segment in book.boundaries(activity_id):
            for unit_id in unit_ids:
                for kind in PRICED_KINDS:
                    for resident in (True, False):
                        for lo, hi, quotient in classes:
                            for rank in ranks:
                                p = price_group(book, activity_id=activity_id, unit_id=unit_id, day=segment,
                                                kind=kind, resident=resident, quotient=quotient, rank=rank)
                                if p is not None:
                                    rows.append((activity_id, segment, unit_id, kind, resident, lo, hi, rank,
                                                 p.unit_price_cents, p.bracket, p.defaulted, p.penalty_cents))
    return rows
