"""Shared by every Coinbase payload parser: JSON decoding into models, RFC 3339 times, decimal text."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
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


def _identity(product_id: str) -> str:
    return product_id


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

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?\s*"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
# The largest second a Timestamp may carry (9999-12-31T23:59:59Z).
_MAX_SECONDS = 253_402_300_799


def _unix_seconds(text: str, field: str) -> int:
    """Unix seconds from a digit string; ``str.isdigit`` also accepts "²", which ``int`` refuses."""
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) > _MAX_SECONDS:
        raise ParseError(f"{field}: not Unix seconds: {text[:20]!r}", venue=VENUE)
    return int(text)


def timestamp(text: str | None, field: str = "time") -> Timestamp | None:
    """RFC 3339 (any fraction up to ns, ``Z`` or offset) or Unix seconds -> Timestamp; empty/zero -> None."""
    if not text:
        return None
    if text.isdigit():
        return timestamp_of(_unix_seconds(text, field))
    mt = _RFC3339.match(text)
    if mt is None:
        raise ParseError(f"{field}: not an RFC 3339 time: {text[:40]!r}", venue=VENUE)
    y, mo, d, h, mi, s, frac, zone = mt.groups()
    year, month, day, hour, minute, sec = int(y), int(mo), int(d), int(h), int(mi), int(s)
    if year <= 1:
        return None  # Go's zero time "0001-01-01T00:00:00Z" means "not set" on the user channel
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and sec <= 60):
        raise ParseError(f"{field}: time out of range: {text[:40]!r}", venue=VENUE)
    seconds = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0))
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    nanos = int(frac.ljust(9, "0")) if frac else 0
    return timestamp_of(seconds, nanos)


_PLAIN_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_FAST_MAX = 40


def dec_text(value: str | None, field: str) -> str:
    """Validate a decimal string and print it canonically; empty stays empty.

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
    return dec_str(dec(value, field, VENUE))
