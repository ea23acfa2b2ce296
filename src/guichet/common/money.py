"""Money: integer cents everywhere, one rounding rule, French display.

Amounts are ``int`` numbers of cents (euro cents). Computations that produce fractions of a cent
(a rate times a quantity, a percentage, VAT) are done in ``Decimal`` and brought back to cents
with :func:`to_cents`, which rounds half away from zero ("arrondi commercial"): 0.005 € -> 0.01 €,
-0.005 € -> -0.01 €. Round only at the points the business rules document (a line, VAT per rate
per invoice, an instalment), never in between.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

_CENT = Decimal(1)


def to_cents(value: Decimal | int | str) -> int:
    """Round an amount expressed in cents (possibly fractional) to whole cents, half up."""
    return int(Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP))


def euros_to_cents(value: Decimal | int | str) -> int:
    """Convert an amount in euros (``Decimal("12.345")``) to whole cents, half up."""
    return to_cents(Decimal(value) * 100)


def split_evenly(total: int, parts: int) -> list[int]:
    """Split ``total`` cents into ``parts`` amounts that differ by at most one cent and add up to
    ``total`` exactly; the first amounts carry the extra cents (a schedule's first instalments)."""
    if parts <= 0:
        raise ValueError("parts must be positive")
    base, extra = divmod(abs(total), parts)
    sign = -1 if total < 0 else 1
    return [sign * (base + (1 if i < extra else 0)) for i in range(parts)]


class MoneyError(ValueError):
    pass


_AMOUNT = re.compile(r"^\s*(-)?\s*(\d{1,3}(?:[ \u00a0\u202f.]\d{3})*|\d+)(?:[,.](\d{1,2}))?\s*(?:€|EUR)?\s*$")


def parse_euros(text: str) -> int:
    """Parse an amount typed by a person ("12,50", "12.5", "1 234,56 €", "-3") into cents.

    Raises :class:`MoneyError` with a French-agnostic message on anything else (the caller words
    it for its form). More than two decimals is an error, not a silent rounding.
    """
    match = _AMOUNT.match(text or "")
    if not match:
        raise MoneyError(f"not an amount in euros: {text!r}")
    sign, units, decimals = match.groups()
    units = re.sub(r"[ \u00a0\u202f.]", "", units)
    try:
        cents = int(units) * 100 + int((decimals or "0").ljust(2, "0"))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits digits only
        raise MoneyError(f"not an amount in euros: {text!r}") from exc
    return -cents if sign else cents


def format_euros(cents: int, *, symbol: bool = True) -> str:
    """French display: ``123456`` -> ``"1 234,56 €"`` (narrow no-break space between thousands,
    no-break space before the symbol); negative amounts keep their minus sign."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(int(cents)), 100)
    grouped = f"{units:,}".replace(",", "\u202f")
    text = f"{sign}{grouped},{rest:02d}"
    return f"{text}\u00a0€" if symbol else text


def format_euros_plain(cents: int) -> str:
    """Machine form for files (CSV, XML): ``123456`` -> ``"1234.56"``."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{units}.{rest:02d}"
