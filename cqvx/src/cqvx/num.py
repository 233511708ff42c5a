"""Decimal handling at the edges: parse venue numbers, print canonical decimal strings, round safely.

Money is never a float.  Venue payloads carry numbers as strings (or, for a few venues, JSON
numbers); both become :class:`~decimal.Decimal` here and leave as canonical strings (no exponent,
``.`` separator, no trailing zeros after the point).  Rounding to tick and lot truncates toward the
safe side: a quantity is never rounded up, a buy price never up, a sell price never down.

:func:`dec` is THE parser for every decimal entering from outside (config, gRPC, venue payloads,
replay files).  A string is accepted only if it is a plain ASCII decimal (the grammar below, checked
with ``fullmatch``), so everything Python's ``Decimal()`` would also take is refused:

    [+-]? ( digits [ "." digits? ] | "." digits ) [ ("e"|"E") [+-]? 1-2 digits ]     digits = [0-9]+

* no surrounding whitespace, no non-ASCII digits (``Decimal("\u0661")`` is 1: an order for 1 BTC was
  once placed from ``"\u0661"``), no underscores (``Decimal("1_000")`` is 1000), no NaN/Infinity;
* an exponent is allowed, because venues send ``"1E-8"`` and ``str(Decimal)`` prints one, but only
  with at most two digits, and the value's magnitude must stay within ``1e-40 .. 1e+40``
  (``MAX_EXPONENT``; zero is always fine): no price, size or fee comes near either end, and printing
  ``1e400`` without an exponent (:func:`dec_str`) would build a 400-digit string;
* at most ``MAX_LENGTH`` characters.

A refusal is :class:`~cqvx.errors.ParseError` naming the field and quoting at most the first 32
characters of the input (``repr``); callers re-raise it as their own kind (the connector as
``InvalidRequest`` naming the request field, the config loader as a ``ConfigError`` naming the key).
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

from cqvx.errors import ParseError

__all__ = [
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "ZERO",
    "dec",
    "dec_or_none",
    "dec_str",
    "dec_text",
    "excerpt",
    "floor_to",
    "from_steps",
    "round_price",
    "round_quantity",
    "steps",
]

ZERO = Decimal(0)
# Venue numbers beyond this magnitude are garbage, and printing one without an exponent (dec_str)
# would build a string of that many digits.
MAX_EXPONENT = 40
MAX_LENGTH = 100  # "0." + 60 nines is a real (token) quantity; 100 leaves room, a megabyte does not
_GRAMMAR = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?")
_BIG_EXPONENT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+")
# Plain decimal text already inside every limit of the grammar: no sign, no exponent, no leading
# zero, integer part below 1e40, at most 40 fraction digits (so >= 1e-40 unless zero).  Such text is
# its own canonical form once trailing fraction zeros go (:func:`dec_text`'s fast path).
_PLAIN = re.compile(r"(?:0|[1-9][0-9]{0,39})(?:\.[0-9]{1,40})?")
_NON_FINITE = frozenset({"nan", "snan", "inf", "infinity"})
_EXCERPT = 32


def excerpt(value: str) -> str:
    """A bounded, quoted excerpt of untrusted input for an error message."""
    return repr(value[:_EXCERPT]) + ("..." if len(value) > _EXCERPT else "")


def _refuse_text(value: str) -> str:
    if value != value.strip():
        return "surrounding whitespace"
    if not value.isascii():
        return "non-ASCII characters"
    if "_" in value:
        return "underscores"
    if len(value) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    if _BIG_EXPONENT.fullmatch(value):
        return f"exponent out of range (beyond 1e+/-{MAX_EXPONENT})"
    if value.lstrip("+-").lower() in _NON_FINITE:
        return "not a finite number"
    return "not a decimal number"


def dec(value: object, field: str = "value", venue: str = "") -> Decimal:
    """Parse an external number into a finite Decimal, or raise :class:`ParseError` naming the field.

    Strings must match the module's grammar; ints and Decimals are taken as they are and floats by
    their shortest repr; all must be finite and within ``MAX_EXPONENT``.
    """
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
        # The constructor is exact (a context's create_decimal would round past its precision, which
        # can turn "0.99...9" into 1: a quantity rounded up).  The grammar runs first: the constructor
        # also takes whitespace, underscores, non-ASCII digits, NaN and Infinity.
        if len(value) > MAX_LENGTH or _GRAMMAR.fullmatch(value) is None:
            raise ParseError(f"{field}: {_refuse_text(value)}: {excerpt(value)}", venue=venue)
        result = Decimal(value)
    else:
        raise ParseError(f"{field}: expected a number, got {type(value).__name__}", venue=venue)
    if not result.is_finite():
        raise ParseError(f"{field}: not a finite number", venue=venue)
    if result and abs(result.adjusted()) > MAX_EXPONENT:
        raise ParseError(f"{field}: magnitude out of range (beyond 1e+/-{MAX_EXPONENT})", venue=venue)
    return result


def dec_or_none(value: object, field: str = "value", venue: str = "") -> Decimal | None:
    """Like :func:`dec`, but ``None`` and ``""`` mean "not given"."""
    if value is None or value == "":
        return None
    return dec(value, field, venue)


def dec_text(value: object, field: str = "value", venue: str = "") -> str:
    """``dec_str(dec_or_none(value))``: the canonical string of an external number (``""`` for
    ``None``/``""``), as strict as :func:`dec`.

    The per-message path of the venue parsers: plain decimal text (and a float's shortest ``repr``)
    is canonicalized as text, without building a Decimal; anything else goes through :func:`dec`.
    """
    if type(value) is str:
        if _PLAIN.fullmatch(value) is not None:
            return value.rstrip("0").rstrip(".") if "." in value else value
    elif type(value) is float:
        # In this range a float's shortest repr (what dec() reads) is plain digits with a point.
        if 1e-4 <= value < 1e16:
            return repr(value).rstrip("0").rstrip(".")
        if value == 0:
            return "0"
    if value is None or value == "":
        return ""
    return dec_str(dec(value, field, venue))


def dec_str(value: Decimal | int | str | None) -> str:
    """Canonical decimal string: no exponent, no trailing fractional zeros; ``None`` -> ``""``."""
    if type(value) is Decimal:
        # The common case first: ``Decimal == ""`` (below) costs an ABC isinstance check inside
        # the decimal module, ten times the rest of this function's compares.
        d = value
    elif value is None or value == "":
        return ""
    else:
        d = value if isinstance(value, Decimal) else dec(value)
    if d.is_finite():
        if d.is_zero():
            return "0"
        # str() is plain notation unless it shows an exponent, and then equals format(d, "f"),
        # which costs several times more (it parses a format spec): the common case skips it.
        text = str(d)
        if "E" in text:
            text = format(d, "f")
    else:
        d == 0  # noqa: B015  (a signalling NaN raises InvalidOperation here, as it always did)
        text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _exact_context(value: Decimal, step: Decimal) -> decimal.Context:
    """A context wide enough that ``value // step`` and ``q * step`` are exact.

    The thread's default context (28 digits) would round ``value / step`` when the quotient has more
    digits than that, and rounding it up then yields a multiple of ``step`` ABOVE ``value``.  Inexact is
    trapped so that a precision mistake raises instead of silently rounding.
    """
    quotient_digits = max(value.adjusted() - step.adjusted(), 0) + 2
    prec = max(28, quotient_digits + len(step.as_tuple().digits) + 2, len(value.as_tuple().digits) + 2)
    ctx = _EXACT_CONTEXTS.get(prec)
    if ctx is None:
        # One per precision, shared: only prec and traps decide a result (flags just accumulate).
        ctx = decimal.Context(
            prec=prec,
            Emax=decimal.MAX_EMAX,
            Emin=decimal.MIN_EMIN,
            traps=[decimal.InvalidOperation, decimal.Inexact, decimal.DivisionByZero],
        )
        if len(_EXACT_CONTEXTS) < 256:
            _EXACT_CONTEXTS[prec] = ctx
    return ctx


_EXACT_CONTEXTS: dict[int, decimal.Context] = {}


def _to_step(value: Decimal, step: Decimal, *, up: bool) -> Decimal:
    if step <= 0 or not value or not value.is_finite():
        return value
    ctx = _exact_context(value, step)
    quotient = ctx.divide_int(value, step)  # truncates toward zero, exactly
    product = ctx.multiply(quotient, step)
    if up and product < value:
        product = ctx.add(product, step)
    elif not up and product > value:  # negative values: truncation went up
        product = ctx.subtract(product, step)
    return product


def steps(value: Decimal, step: Decimal) -> tuple[int, bool]:
    """``(floor(value / step), exact)`` for a positive ``step``: a price in ticks or a quantity in lots.

    Exact at any size (the integer grid the simulated venue matches on); ``exact`` says whether
    ``value`` is on the grid.
    """
    if not value:
        return 0, True
    ctx = _exact_context(value, step)
    quotient = ctx.divide_int(value, step)  # truncates toward zero, exactly
    exact = ctx.multiply(quotient, step) == value
    n = int(quotient)
    return (n - 1 if value < 0 and not exact else n), exact


def from_steps(n: int, step: Decimal) -> Decimal:
    """``n * step`` exactly, in the canonical form :func:`dec` gives for :func:`dec_str`'s text.

    The inverse of :func:`steps` on the grid: ``steps(from_steps(n, s), s) == (n, True)``.  Built
    from the digits (no context, so nothing rounds at any size); the result is the Decimal a caller
    sending the canonical string would get (``from_steps(5900000, Decimal("0.01"))`` is
    ``Decimal("59000")``, not ``Decimal("59000.00")``).
    """
    if type(n) is not int:
        raise TypeError(f"from_steps: n must be an int, got {type(n).__name__}")
    _, digits, exponent = step.as_tuple()
    if not step.is_finite() or step <= 0:
        raise ValueError(f"from_steps: step must be a positive finite decimal, got {step}")
    assert isinstance(exponent, int)
    coefficient = n * int("".join(map(str, digits)))
    exact = Decimal((1 if coefficient < 0 else 0, tuple(map(int, str(abs(coefficient)))), exponent))
    return Decimal(dec_str(exact))


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``value`` (``step`` <= 0 means no rounding); exact."""
    return _to_step(value, step, up=False)


def _ceil_to(value: Decimal, step: Decimal) -> Decimal:
    return _to_step(value, step, up=True)


def _normalized(value: Decimal) -> Decimal:
    # Decimal.normalize() rounds to the context precision; this must not.
    if not value:
        return ZERO
    return value.normalize(
        decimal.Context(prec=len(value.as_tuple().digits) + 1, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
    )


def round_quantity(quantity: Decimal, lot_size: Decimal) -> Decimal:
    """Round a quantity DOWN to the lot size: never trade more than asked for."""
    return _normalized(floor_to(quantity, lot_size)) if quantity else ZERO


def round_price(price: Decimal, tick_size: Decimal, *, is_buy: bool) -> Decimal:
    """Round a limit price to the tick on the safe side: buys down, sells up (never a worse price)."""
    rounded = floor_to(price, tick_size) if is_buy else _ceil_to(price, tick_size)
    return _normalized(rounded)
