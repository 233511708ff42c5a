"""Decimal handling at the edges: parse venue numbers, print canonical decimal strings, round safely.

Money is never a float.  Venue payloads carry numbers as strings (or, for a few venues, JSON
numbers); both become :class:`~decimal.Decimal` here and leave as canonical strings (no exponent,
``.`` separator, no trailing zeros after the point).  Rounding to tick and lot truncates toward the
safe side: a quantity is never rounded up, a buy price never up, a sell price never down.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from cqvx.errors import ParseError

__all__ = ["ZERO", "dec", "dec_or_none", "dec_str", "floor_to", "round_price", "round_quantity"]

ZERO = Decimal(0)
_CTX = decimal.Context(prec=50, traps=[decimal.InvalidOperation])


def dec(value: object, field: str = "value", venue: str = "") -> Decimal:
    """Parse a venue number into a finite Decimal, or raise :class:`ParseError` naming the field."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):  # bool is an int subclass; a venue never means True as 1
        raise ParseError(f"{field}: expected a number, got a boolean", venue=venue)
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        # repr() gives the shortest string that round-trips, i.e. what the venue sent in JSON.
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = _CTX.create_decimal(value.strip())
        except (decimal.InvalidOperation, ValueError):
            raise ParseError(f"{field}: not a decimal number: {value[:40]!r}", venue=venue) from None
    else:
        raise ParseError(f"{field}: expected a number, got {type(value).__name__}", venue=venue)
    if not result.is_finite():
        raise ParseError(f"{field}: not a finite number", venue=venue)
    return result


def dec_or_none(value: object, field: str = "value", venue: str = "") -> Decimal | None:
    """Like :func:`dec`, but ``None`` and ``""`` mean "not given"."""
    if value is None or value == "":
        return None
    return dec(value, field, venue)


def dec_str(value: Decimal | int | str | None) -> str:
    """Canonical decimal string: no exponent, no trailing fractional zeros; ``None`` -> ``""``."""
    if value is None or value == "":
        return ""
    d = value if isinstance(value, Decimal) else dec(value)
    if d == 0:
        return "0"
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``value`` (``step`` <= 0 means no rounding)."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def _ceil_to(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def round_quantity(quantity: Decimal, lot_size: Decimal) -> Decimal:
    """Round a quantity DOWN to the lot size: never trade more than asked for."""
    return floor_to(quantity, lot_size).normalize() if quantity else ZERO


def round_price(price: Decimal, tick_size: Decimal, *, is_buy: bool) -> Decimal:
    """Round a limit price to the tick on the safe side: buys down, sells up (never a worse price)."""
    rounded = floor_to(price, tick_size) if is_buy else _ceil_to(price, tick_size)
    return rounded.normalize() if rounded else ZERO
