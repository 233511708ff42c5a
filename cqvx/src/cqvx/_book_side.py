"""The storage under :class:`cqvx.book.OrderBookL2`: exact level numbers, integer price keys, one
sorted side, and the hand-rolled protobuf encoding of its levels.

The rules and the reasons are in the :mod:`cqvx.book` docstring.
"""

from __future__ import annotations

import decimal
from bisect import bisect_left
from collections.abc import Callable
from decimal import Decimal
from operator import itemgetter
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from cqc.markets.v1 import orderbook_pb2
from cqvx.errors import ParseError
from cqvx.num import dec

Level = tuple[Decimal, Decimal]
_DEC = Decimal


def _to_dec(value: object, field: str) -> Decimal:
    """Parse one number exactly; anything that is not a finite decimal is a :class:`ParseError`."""
    if type(value) is not Decimal:
        # Wire text (the strict grammar of cqvx.num: no whitespace, non-ASCII digits or "_"), ints and
        # the odd venue's JSON numbers.
        return dec(value, f"book {field}")
    d = value
    if not d.is_finite():
        raise ParseError(f"book {field}: not a finite number")
    return d


def _level(price: object, size: object) -> Level:
    """One ``(price, size)`` pair, validated: finite numbers, size >= 0 (the slow, explaining path)."""
    p = _to_dec(price, "price")
    q = _to_dec(size, "size")
    if q < 0:
        raise ParseError(f"book size: negative size {q} at price {p}")
    # "1E+500000" is a valid Decimal, and turning it into an int key takes seconds: refuse it.
    if (p and p.adjusted() >= _MAX_MAGNITUDE) or (q and q.adjusted() >= _MAX_MAGNITUDE):
        raise ParseError(f"book level: number out of range (>= 1e{_MAX_MAGNITUDE})")
    return p, q


def _canon(d: Decimal) -> str:
    """Canonical decimal string (what :func:`cqvx.num.dec_str` prints), inlined for the hot path."""
    text = str(d)
    # str() is already canonical for the common wire forms ("50012.34", "1.5", "3"); fall back for
    # exponents ("1E+2", "1E-7") and trailing fractional zeros ("0.0100").
    if "E" not in text and not ("." in text and text[-1] == "0"):
        return "0" if text == "-0" else text
    if not d:
        return "0"
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _is_plain(text: str) -> bool:
    """ASCII digits with at most one ``.`` and a digit somewhere: what venues send for a size.

    Anything else (signs, exponents, spaces, ``_``, non-ASCII digits) goes the Decimal way.
    """
    return text.isascii() and text.replace(".", "", 1).isdigit()


def _canon_plain(text: str) -> str:
    """Canonical form of a string that passed :func:`_is_plain`, with str operations only."""
    whole, _, frac = text.partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def _canon_any(value: Decimal | str) -> str:
    if type(value) is str and _is_plain(value):
        return _canon_plain(value)
    return _canon(value if type(value) is Decimal else Decimal(value))


_MAX_MAGNITUDE = 40  # no price or size reaches 1e40


_Scaler = tuple[Decimal, Callable[[Decimal, Decimal], Decimal], Callable[[Decimal], Decimal]]


def _scaler(exp: int) -> _Scaler:
    """``(10**exp, multiply, to_integral_exact)`` of a context where any rounding traps.

    ``int(exact(mul(price, scale)))`` is then the exact key, or Inexact when the price is finer
    than the scale.  Emax makes a price >= 1e40 overflow (also a trap) instead of becoming a huge
    int (``1E+500000`` would take seconds); such a price then takes the slow path, which refuses it.
    """
    ctx = decimal.Context(
        prec=100,
        Emax=_MAX_MAGNITUDE - 1 + exp,
        traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow],
    )
    return Decimal(1).scaleb(exp), ctx.multiply, ctx.to_integral_exact


_DEFAULT_EXP = 8
_MAX_EXP = 30  # a price step finer than 1e-30 is not a price
_KEY_MEMO_MAX = 4096  # distinct price spellings remembered per book and per side; cleared beyond
_INF = float("inf")
_NEG_INF = float("-inf")

# A level is a list ``[price, size, level memo, encoding memo, key]``: price and size as the caller
# gave them (validated; a size string is kept only when plain), the ``(Decimal, Decimal)`` tuple and
# the encoded ``OrderBookLevel`` field, both filled on first read, and the level's key on its side.
# An update rewrites the list in place and clears both memos; keeping the object lets each side hold
# its levels in price order too, and lets the side's price-string memo point straight at it.  A
# removed level gets size None ("dead"), so a memo entry still naming it is ignored.
_Lvl = list[Any]
Keyed = tuple[int, Any, Any]  # (key, price, size); size None = remove the level
_EMPTY: list[Keyed] = []  # shared, never mutated: a side the update does not touch


# Encoding the cqc messages by hand (protobuf wire format: a varint tag ``field << 3 | wire type``,
# then a varint or a length-delimited payload; https://protobuf.dev/programming-guides/encoding/):
# a snapshot is then one join of cached bytes and one parse in C, instead of ~40 message objects.
# Field numbers come from the generated descriptors; tests compare against protobuf's own encoder.
_BYTE = [bytes((i,)) for i in range(128)]
_U64 = (1 << 64) - 1


def _varint(n: int) -> bytes:
    """Unsigned varint; negative int32/int64 values are sign-extended to 64 bits, as protobuf does."""
    if 0 <= n < 128:
        return _BYTE[n]
    n &= _U64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field (wire type 2): tag, length, bytes."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


_LF = orderbook_pb2.OrderBookLevel.DESCRIPTOR.fields_by_name
_BF = orderbook_pb2.OrderBook.DESCRIPTOR.fields_by_name
_TF = Timestamp.DESCRIPTOR.fields_by_name
_PRICE_TAG = _varint(_LF["price"].number << 3 | 2)
_QTY_TAG = _varint(_LF["quantity"].number << 3 | 2)
_BIDS_FIELD = _BF["bids"].number
_ASKS_FIELD = _BF["asks"].number
_VENUE_FIELD = _BF["venue"].number
_SYMBOL_FIELD = _BF["symbol"].number
_TS_FIELD = _BF["timestamp"].number
_SEQ_TAG = _varint(_BF["sequence"].number << 3)  # wire type 0: varint
_SECONDS_TAG = _varint(_TF["seconds"].number << 3)
_NANOS_TAG = _varint(_TF["nanos"].number << 3)
_BOOK_FROM_BYTES = orderbook_pb2.OrderBook.FromString


def _encode_level(field: int, price: str, size: str) -> bytes:
    """``OrderBookLevel(price=..., quantity=...)`` as field ``field`` of an OrderBook."""
    p = price.encode()
    q = size.encode()
    inner = _PRICE_TAG + _varint(len(p)) + p + _QTY_TAG + _varint(len(q)) + q
    return _field(field, inner)


def _encode_timestamp(seconds: int, nanos: int) -> bytes:
    inner = b""
    if seconds:
        inner += _SECONDS_TAG + _varint(seconds)
    if nanos:
        inner += _NANOS_TAG + _varint(nanos)
    return _field(_TS_FIELD, inner)  # present even when empty: the epoch is a time


def _level_tuple(lv: _Lvl) -> Level:
    price, size = lv[0], lv[1]
    out = (
        price if type(price) is _DEC else _DEC(price),
        size if type(size) is _DEC else _DEC(size),
    )
    lv[2] = out
    return out


class _Side:
    """One side of the book: ``key -> level``, the keys in ascending order (best first), top-N caches."""

    __slots__ = (
        "bound",
        "depth",
        "eblank",
        "enc",
        "field",
        "full",
        "joined",
        "keys",
        "levels",
        "memo",
        "tblank",
        "top",
        "vals",
    )

    def __init__(self, field: int) -> None:
        self.levels: dict[int, _Lvl] = {}
        self.keys: list[int] = []
        self.vals: list[_Lvl] = []  # the levels in ``keys`` order: the top N is a slice
        # Price string as the venue spelled it -> its level (live or dead): the one-level fast path
        # of OrderBookL2.apply_levels reaches an existing level with one str lookup and no key
        # arithmetic.  Only ``str`` prices are entered; levels, not keys, so a rescale keeps it.
        self.memo: dict[str, _Lvl] = {}
        self.field = field  # the OrderBook field number this side encodes into
        # Caches of the top ``depth`` levels: their tuples, their encodings, and the encodings
        # joined for one depth (``(depth, bytes)``).  Valid while no update touched a key <= ``bound``
        # (the depth-th key; +inf when the side holds fewer levels, since then any new level joins
        # the top; -inf when nothing is cached, so that updates skip the bookkeeping).
        self.depth = 0
        self.bound: float = _NEG_INF
        # None entries: a level whose size changed in place; readers fill them.
        self.top: list[Level | None] | None = None
        self.enc: list[bytes | None] | None = None
        self.joined: tuple[int, bytes] | None = None
        # The ranks blanked in ``top`` / ``enc`` since they were last filled, so that a reader fills
        # just those; ``full``: ``top`` exists and has no blank, readers copy it as it is.
        self.tblank: list[int] = []
        self.eblank: list[int] = []
        self.full = False

    def forget(self) -> None:
        self.bound = _NEG_INF
        self.full = False
        self.tblank = []
        self.eblank = []
        self.top = None
        self.enc = None
        self.joined = None

    def apply(self, keyed: list[Keyed]) -> None:
        levels = self.levels
        keys = self.keys
        vals = self.vals
        memo = self.memo
        bound = self.bound
        for key, price, size in keyed:
            lv = levels.get(key)
            if size is not None:
                if lv is None:
                    lv = levels[key] = [price, size, None, None, key]
                    if type(price) is str:
                        if len(memo) >= _KEY_MEMO_MAX:
                            memo.clear()
                        memo[price] = lv
                    i = bisect_left(keys, key)
                    keys.insert(i, key)
                    vals.insert(i, lv)
                else:
                    if type(price) is str and memo.get(price) is not lv:
                        # Another spelling of the price, or the memo was cleared: remember it.
                        if len(memo) >= _KEY_MEMO_MAX:
                            memo.clear()
                        memo[price] = lv
                    lv[0] = price
                    lv[1] = size
                    lv[2] = lv[3] = None
                    if key <= bound:
                        # A size change inside the cached top: the ranks stand, so blank just
                        # that entry (readers fill blanks) instead of dropping the caches.
                        i = bisect_left(keys, key)
                        if self.top is not None:
                            self.top[i] = None
                            self.tblank.append(i)
                            self.full = False
                        if self.enc is not None:
                            self.enc[i] = None
                            self.eblank.append(i)
                        self.joined = None
                    continue
            elif lv is not None:
                lv[1] = None  # dead: memo entries naming it are ignored from now on
                del levels[key]
                i = bisect_left(keys, key)
                del keys[i]
                del vals[i]
            else:
                continue  # removing an absent level changes nothing
            if key <= bound:
                self.forget()
                bound = _NEG_INF

    def load(self, keyed: list[Keyed]) -> None:
        """Replace the side with a snapshot (later duplicates win; zero sizes remove)."""
        levels: dict[int, _Lvl] = {}
        for key, price, size in keyed:
            if size is not None:
                levels[key] = [price, size, None, None, key]
            else:
                levels.pop(key, None)
        for lv in self.levels.values():
            lv[1] = None  # the old book's levels are gone (readers of the memo skip dead levels)
        self.levels = levels
        self.keys = sorted(levels)
        self.vals = list(map(levels.__getitem__, self.keys))
        self.memo = {lv[0]: lv for lv in self.vals if type(lv[0]) is str}
        self.forget()

    def rescale(self, factor: int) -> None:
        for lv in self.vals:
            lv[4] *= factor
        self.levels = {k * factor: v for k, v in self.levels.items()}
        self.keys = [k * factor for k in self.keys]
        self.forget()

    def _cover(self, depth: int) -> list[_Lvl]:
        """The top ``depth`` levels, with the caches made to cover (at least) that depth."""
        keys = self.keys
        if depth > self.depth or (self.top is None and self.enc is None):
            self.top = self.enc = self.joined = None
            self.full = False
            self.tblank = []
            self.eblank = []
            self.depth = depth
            self.bound = keys[depth - 1] if len(keys) >= depth else _INF
        return self.vals[: self.depth]

    def top_levels(self, depth: int | None) -> list[Level]:
        if depth is None:
            return _memos(self.vals, 2, _level_tuple)
        if depth <= 0:
            return []
        top = self.top
        if top is None or depth > self.depth:
            top = self.top = _memos(self._cover(depth), 2, _level_tuple)
            self.tblank = []
        elif not self.full:
            _refill(top, self.tblank, self.vals, _level_tuple)
        self.full = True
        return top[:depth]  # type: ignore[return-value]  # filled: no None left

    def top_encoded(self, depth: int | None) -> bytes:
        if depth is None:
            return b"".join(_memos(self.vals, 3, self._encode))
        if depth <= 0:
            return b""
        joined = self.joined
        if joined is not None and joined[0] == depth:
            return joined[1]
        enc = self.enc
        if enc is None or depth > self.depth:
            enc = self.enc = _memos(self._cover(depth), 3, self._encode)
            self.eblank = []
        elif self.eblank:
            _refill(enc, self.eblank, self.vals, self._encode)
        out = b"".join(enc[:depth])  # type: ignore[arg-type]  # filled: no None left
        self.joined = (depth, out)
        return out

    def _encode(self, lv: _Lvl) -> bytes:
        out = lv[3] = _encode_level(self.field, _canon_any(lv[0]), _canon_any(lv[1]))
        return out


def _memos(chosen: list[_Lvl], slot: int, make: Callable[[_Lvl], Any]) -> list[Any]:
    """Each level's memo in ``slot``, made where missing (the common case runs in C: map + ``in``)."""
    out = list(map(itemgetter(slot), chosen))
    if not all(out):  # memos are non-empty tuples or bytes: all() finds a None faster than ``in``
        _fill(out, chosen, make)
    return out


def _refill(out: list[Any], blanks: list[int], chosen: list[_Lvl], make: Callable[[_Lvl], Any]) -> None:
    """Fill the ranks in ``blanks`` (a rank may repeat), then forget them."""
    for i in blanks:
        if out[i] is None:
            out[i] = make(chosen[i])
    blanks.clear()


def _fill(out: list[Any], chosen: list[_Lvl], make: Callable[[_Lvl], Any]) -> None:
    """Replace each ``None`` in ``out`` with ``make()`` of the level at the same rank."""
    for i, memo in enumerate(out):
        if memo is None:
            out[i] = make(chosen[i])
