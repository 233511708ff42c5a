"""Shared by every Coinbase payload parser: JSON decoding into models, RFC 3339 times, decimal text."""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
from google.protobuf.timestamp_pb2 import Timestamp

from cqvx.errors import ParseError
from cqvx.num import dec, dec_str
from cqvx.timeutil import timestamp_of
from cqvx.venues.coinbase.errors import VENUE

T = TypeVar("T")
# Product id -> canonical symbol (spot product ids already are canonical: identity by default).
ToCanonical = Callable[[str], str]


# Product id -> the product's quote (= fee and settlement) currency, from the products table; "" when
# unknown.  Futures (``BIP-20DEC30-CDE``) and INTX perpetuals (``BTC-PERP-INTX``) cannot be split.
QuoteOf = Callable[[str], str | None]


def _identity(product_id: str) -> str:
    return product_id


def _spot_quote(product_id: str) -> str:
    """The default without a products table: a spot id ``BASE-QUOTE`` names its quote currency;
    any other id (futures, perpetuals) is unknown (""), never a piece of the id."""
    parts = product_id.split("-")
    if len(parts) == 2 and all(p.isascii() and p.isalnum() and p.isupper() for p in parts):
        return parts[1]
    return ""


# --- decoding ---------------------------------------------------------------------------------

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode(data: bytes | str, type_: type[T]) -> T:
    """Decode JSON into a model; any malformed input is a :class:`ParseError`."""
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        result: T = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(f"{type_.__name__}: {str(exc)[:160]}", venue=VENUE) from None
    return result


def _decode_list(data: bytes, type_: type[T]) -> list[T]:
    key = ("list", type_)
    decoder = _decoders.get(key)
    if decoder is None:
        decoder = _decoders[key] = msgspec.json.Decoder(list[type_])  # type: ignore[valid-type]
    try:
        result: list[T] = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(f"{type_.__name__} events: {str(exc)[:160]}", venue=VENUE) from None
    return result


# --- scalars ----------------------------------------------------------------------------------

# RFC 3339 as Coinbase sends it: ``T`` (or a space, Go's format) between date and time, an optional
# fraction of at most nine digits (nanoseconds: Timestamp cannot hold more), and a zone, which is
# required: a time without one is not a moment.  The whole text must match (no trailing garbage).
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})"
)
# The largest second a Timestamp may carry (9999-12-31T23:59:59Z).
_MAX_SECONDS = 253_402_300_799
_MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z, the smallest a Timestamp may carry


def _unix_seconds(text: str, field: str) -> int:
    """Unix seconds from a digit string; ``str.isdigit`` also accepts "²", which ``int`` refuses."""
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) > _MAX_SECONDS:
        raise ParseError(f"{field}: not Unix seconds: {text[:20]!r}", venue=VENUE)
    return int(text)


@functools.lru_cache(maxsize=256)
def _minute_start(prefix: str) -> int | None:
    """Epoch seconds of ``YYYY-MM-DD?HH:MM`` (already matched by _RFC3339); None for year <= 1
    (Go's zero time).  ValueError (not cached) when that date or time does not exist.
    """
    year, month, day = int(prefix[0:4]), int(prefix[5:7]), int(prefix[8:10])
    hour, minute = int(prefix[11:13]), int(prefix[14:16])
    if year <= 1:
        return None
    if not (
        1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and hour < 24 and minute < 60
    ):
        raise ValueError(prefix)
    return calendar.timegm((year, month, day, hour, minute, 0, 0, 0, 0))


def timestamp(text: str | None, field: str = "time") -> Timestamp | None:
    """RFC 3339 (any fraction up to ns, ``Z`` or offset) or Unix seconds -> Timestamp; empty/zero -> None.

    Anything not fully valid raises :class:`ParseError`: trailing text, a 10th fractional digit, a day
    the month does not have (2023-02-29), second 60 (a Timestamp has no leap seconds), an offset
    beyond 23:59, or no zone at all.
    """
    if not text:
        return None
    if text.isdigit():
        return timestamp_of(_unix_seconds(text, field))
    mt = _RFC3339.fullmatch(text)
    if mt is None:
        raise ParseError(f"{field}: not an RFC 3339 time: {text[:40]!r}", venue=VENUE)
    s, frac, zone = mt.group(6, 7, 8)
    # The regex fixed the layout, so text[:16] is "YYYY-MM-DD?HH:MM": a stream's messages share it
    # for a minute, and its validation and epoch are remembered (_minute_start).
    try:
        minute_start = _minute_start(text[:16])
    except ValueError:
        raise ParseError(f"{field}: time out of range: {text[:40]!r}", venue=VENUE) from None
    if minute_start is None:
        return None  # Go's zero time "0001-01-01T00:00:00Z" means "not set" on the user channel
    sec = int(s)
    if sec >= 60:
        raise ParseError(f"{field}: time out of range: {text[:40]!r}", venue=VENUE)
    seconds = minute_start + sec
    if zone != "Z":
        digits = zone[1:].replace(":", "")
        off_h, off_m = int(digits[:2]), int(digits[2:])
        if off_h > 23 or off_m > 59:
            raise ParseError(f"{field}: offset out of range: {text[:40]!r}", venue=VENUE)
        seconds -= (1 if zone[0] == "+" else -1) * (off_h * 3600 + off_m * 60)
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise ParseError(f"{field}: time out of range: {text[:40]!r}", venue=VENUE)
    nanos = int(frac.ljust(9, "0")) if frac else 0
    return timestamp_of(seconds, nanos)


_PLAIN_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_FAST_MAX = 40


def dec_text(value: str | None, field: str, *, signed: bool = False) -> str:
    """Validate a decimal string and print it canonically; empty stays empty.

    Negative values are refused unless ``signed`` (PnL, funding rates, signed position sizes): a
    negative price, size, fee or balance is impossible on Advanced Trade.  Magnitudes are bounded by
    :func:`cqvx.num.dec` (1e+/-40) on both paths.

    Venue numbers are almost always plain non-negative decimals ("68923.660"), which are validated by
    a regular expression and canonicalised by trimming the fraction: same result as
    ``dec_str(dec(value))``, several times faster.  Anything else takes the Decimal path.
    """
    if not value:
        return ""
    # At most 40 characters: the fast path then stays inside dec()'s magnitude bound (1e+/-40).
    if len(value) <= _FAST_MAX and _PLAIN_DECIMAL.fullmatch(value):
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        return value
    number = dec(value, field, VENUE)
    if number < 0 and not signed:
        raise ParseError(f"{field}: negative value {value[:40]!r}", venue=VENUE)
    return dec_str(number) if number else "0"


def non_negative(value: str | None, field: str, default: Decimal | None = None) -> Decimal:
    """A required non-negative decimal (``default`` when absent and one is given)."""
    if not value:
        if default is None:
            raise ParseError(f"{field}: missing", venue=VENUE)
        return default
    number = dec(value, field, VENUE)
    if number < 0:
        raise ParseError(f"{field}: negative value {value[:40]!r}", venue=VENUE)
    return number
