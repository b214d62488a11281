"""Exact money. A cost is a `Decimal` of US dollars in Python and a whole number of
nano-dollars (1e-9 USD) in the ledger, so that sums on either engine are integer sums:
three runs of $0.10 add up to $0.3, never 0.30000000000000004.

Costs are rounded to the nano-dollar once, when a call is priced or a record is read; every sum
after that is exact. JSON carries them as plain numbers with their exact digits (`dumps`).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

NANOS_PER_USD = 10**9
NANO = Decimal(1).scaleb(-9)
ZERO = Decimal(0)
# The most one call may cost. With it, SQLite's 64-bit integer sums of nano-dollars overflow
# only past 900,000 such calls (and then say so in one line); no real call comes near it.
MAX_CALL_USD = Decimal(10_000)


def usd(value: Any) -> Decimal:
    """`value` (int, float, str or Decimal dollars) as a Decimal rounded to the nano-dollar.
    Floats go through their shortest text, so 0.1 is 0.1, not 0.1000000000000000055."""
    if isinstance(value, float):
        value = repr(value)
    try:
        exact = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"not an amount of money: {value!r:.60}") from None
    if not exact.is_finite():
        raise ValueError(f"not a finite amount of money: {value!r:.60}")
    try:
        amount = exact.quantize(NANO, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:  # more digits than Decimal's 28
        raise ValueError("amount of money too large") from None
    return amount.copy_abs() if amount.is_zero() else amount  # -0 is 0: never "$-0.0000"


def to_nanos(amount: Decimal | None) -> int | None:
    """Dollars (already rounded by `usd`) as whole nano-dollars, for the ledger."""
    return None if amount is None else int(amount.scaleb(9))


def from_nanos(nanos: int | None) -> Decimal | None:
    """Nano-dollars from the ledger as dollars."""
    return None if nanos is None else Decimal(int(nanos)).scaleb(-9).quantize(NANO)


def known_cost(priced: Decimal, calls: int, unpriced: int) -> tuple[Decimal | None, bool]:
    """What calls are known to cost, and whether that is a lower bound: None when nobody could
    price any of them (unknown is not zero), a lower bound when some were not priced."""
    if unpriced and unpriced == calls:
        return None, False
    return priced, bool(unpriced)


def ratio(part: Decimal, whole: Decimal) -> Decimal:
    """part / whole to nine places (shares, budget ratios): 0.88, never 0.8800000000000001."""
    return (part / whole).quantize(NANO, rounding=ROUND_HALF_EVEN)


def plain(amount: Decimal) -> str:
    """The shortest exact text of an amount: 0.3, 15.81, 2 (no exponent, no trailing zeros)."""
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def dumps(value: Any, indent: int | None = None, ensure_ascii: bool = True, fallback: Any = None,
          allow_nan: bool = False) -> str:
    """json.dumps that writes Decimals as exact numbers and datetimes as ISO text, and refuses
    NaN and infinities (they are not JSON) unless `allow_nan` (a workflow's own outputs may hold
    them). `fallback` turns any other object into JSON (str, say); without it such an object is
    a TypeError."""
    marker = f"decimal-{uuid.uuid4().hex}-"
    amounts: list[str] = []

    def default(item: Any) -> Any:
        if isinstance(item, Decimal):
            amounts.append(plain(item))
            return f"{marker}{len(amounts) - 1}"
        if isinstance(item, datetime):
            return item.isoformat()
        if fallback is not None:
            return fallback(item)
        raise TypeError(f"cannot serialize {type(item).__name__}")

    text = json.dumps(value, indent=indent, default=default, allow_nan=allow_nan, ensure_ascii=ensure_ascii)
    if not amounts:
        return text
    return re.sub(f'"{marker}(\\d+)"', lambda match: amounts[int(match.group(1))], text)
