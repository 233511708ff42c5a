"""A local L2 order book for one symbol: snapshot + deltas, sequence checks, crossed-book check, resync.

Venue adapters feed it the venue's snapshot and its incremental updates (absolute sizes; a size of 0
removes the level) and publish :meth:`OrderBookL2.snapshot` to subscribers.  The book never guesses:
on a sequence gap or a crossed book it stops accepting deltas, sets :attr:`OrderBookL2.needs_resync`
with a typed :class:`ResyncReason`, and only a new snapshot brings it back.  A snapshot replaces the
whole book, so no level from before the resync can survive it.

Two entry points per operation: the cqc messages (:meth:`apply_snapshot`, :meth:`apply_delta`) and a
fast path taking ``(price, size)`` pairs of ``Decimal`` or ``str`` straight from a venue parser
(:meth:`apply_snapshot_levels`, :meth:`apply_levels`), which skips building protobuf messages that
would be thrown away.

How it stays exact and still cheap (numbers in benchmarks/bench_book.py):

* Each side is a dict ``key -> level`` plus the keys in sorted order and the levels in that same
  order, so an update of an existing level is one dict lookup and an in-place write, and only a new
  or removed level pays a binary search and a list insert/delete; the top ``N`` levels are a slice.
  The key is the price as an exact scaled integer (``price * 10**e``, ``e`` = 8 and raised when a
  finer price arrives), negated on the bid side so that both sides keep their best level first.
  Int hashing and comparison are several times cheaper than Decimal's, and the mapping is exact:
  two different prices never share a level.
* Price strings -> key goes through a small per-book memo (venues repeat the same price strings all
  day); a miss, and any Decimal, takes the exact Decimal path.  Sizes given as plain decimal strings
  are validated with str operations and kept as given; Decimals are made only when a level is read.
* Reads are memoised: each level carries its ``(Decimal, Decimal)`` tuple and its encoded cqc
  ``OrderBookLevel`` once someone asked for them (an update clears both), and each side caches its
  top ``N`` until an update touches a price at or better than the ``N``-th level (a size change
  there blanks one entry instead).  :meth:`snapshot` joins the cached encodings and parses them in
  one protobuf call, so the published message is always a fresh object the caller may mutate.

Numbers must be finite, sizes >= 0, and both below 1e40 (a price like ``1E+500000`` is a valid
Decimal whose integer key would take seconds to build); anything else is a :class:`ParseError`.
"""

from __future__ import annotations

import decimal
import enum
from bisect import bisect_left
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from cqc.markets.v1 import orderbook_pb2
from cqvx.errors import ParseError
from cqvx.num import dec

__all__ = ["ApplyResult", "BookState", "Level", "OrderBookL2", "ResyncReason", "SequenceMode"]

Level = tuple[Decimal, Decimal]
LevelInput = tuple[Decimal | str, Decimal | str]


class SequenceMode(enum.StrEnum):
    """How the venue numbers its book updates."""

    CONTIGUOUS = "contiguous"  # each update is last + 1 (per symbol): any skip is a gap
    MONOTONIC = (
        "monotonic"  # increasing but shared with other channels/symbols: only previous_sequence detects gaps
    )
    NONE = "none"  # no usable sequence numbers: never detect gaps


class BookState(enum.StrEnum):
    EMPTY = "empty"  # no snapshot yet
    LIVE = "live"  # snapshot applied and every delta since then accepted
    NEEDS_RESYNC = "needs_resync"  # deltas are refused until a new snapshot arrives


class ResyncReason(enum.StrEnum):
    NO_SNAPSHOT = "no_snapshot"
    SEQUENCE_GAP = "sequence_gap"
    CROSSED = "crossed"
    DISCONNECTED = "disconnected"
    INVALIDATED = "invalidated"  # the adapter said so (e.g. a venue "resync" message)


class ApplyResult(enum.StrEnum):
    """What :meth:`OrderBookL2.apply_delta` did with an update."""

    APPLIED = "applied"
    STALE = "stale"  # older than (or equal to) what the book already holds: ignored, book unchanged
    GAP = "gap"  # a sequence was skipped: nothing applied, book now needs a resync
    CROSSED = "crossed"  # applied, but the result is crossed: book now needs a resync
    REFUSED = "refused"  # the book was already waiting for a snapshot: nothing applied


# Module-level aliases: enum attribute lookups are measurable on a path that runs per update.
_LIVE = BookState.LIVE
_APPLIED = ApplyResult.APPLIED
_REFUSED = ApplyResult.REFUSED
_CROSSED = ApplyResult.CROSSED
_NONE = SequenceMode.NONE
_DEC = Decimal


def _to_dec(value: object, field: str) -> Decimal:
    """Parse one number exactly; anything that is not a finite decimal is a :class:`ParseError`."""
    if type(value) is Decimal:
        d = value
    elif type(value) is str:
        try:
            d = Decimal(value)
        except (InvalidOperation, ValueError):
            raise ParseError(f"book {field}: not a decimal number: {value[:40]!r}") from None
    else:
        return dec(value, f"book {field}")  # ints and the odd venue's JSON numbers
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
_KEY_MEMO_MAX = 4096  # distinct price spellings remembered per book; cleared (not grown) beyond
_INF = float("inf")
_NEG_INF = float("-inf")

# A level is a list ``[price, size, level memo, encoding memo]``: price and size as the caller gave
# them (validated; a size string is kept only when plain), the ``(Decimal, Decimal)`` tuple and the
# encoded ``OrderBookLevel`` field, both filled on first read.  An update rewrites the list in place
# and clears both memos; keeping the object lets each side hold its levels in price order too.
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

    __slots__ = ("bound", "depth", "enc", "field", "joined", "keys", "levels", "top", "vals")

    def __init__(self, field: int) -> None:
        self.levels: dict[int, _Lvl] = {}
        self.keys: list[int] = []
        self.vals: list[_Lvl] = []  # the levels in ``keys`` order: the top N is a slice
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

    def forget(self) -> None:
        self.bound = _NEG_INF
        self.top = None
        self.enc = None
        self.joined = None

    def apply(self, keyed: list[Keyed]) -> None:
        levels = self.levels
        keys = self.keys
        vals = self.vals
        bound = self.bound
        for key, price, size in keyed:
            lv = levels.get(key)
            if size is not None:
                if lv is None:
                    lv = levels[key] = [price, size, None, None]
                    i = bisect_left(keys, key)
                    keys.insert(i, key)
                    vals.insert(i, lv)
                else:
                    lv[0] = price
                    lv[1] = size
                    lv[2] = lv[3] = None
                    if key <= bound:
                        # A size change inside the cached top: the ranks stand, so blank just
                        # that entry (readers fill blanks) instead of dropping the caches.
                        i = bisect_left(keys, key)
                        if self.top is not None:
                            self.top[i] = None
                        if self.enc is not None:
                            self.enc[i] = None
                        self.joined = None
                    continue
            elif lv is not None:
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
                levels[key] = [price, size, None, None]
            else:
                levels.pop(key, None)
        self.levels = levels
        self.keys = sorted(levels)
        self.vals = list(map(levels.__getitem__, self.keys))
        self.forget()

    def rescale(self, factor: int) -> None:
        self.levels = {k * factor: v for k, v in self.levels.items()}
        self.keys = [k * factor for k in self.keys]
        self.forget()

    def _cover(self, depth: int) -> list[_Lvl]:
        """The top ``depth`` levels, with the caches made to cover (at least) that depth."""
        keys = self.keys
        if depth > self.depth or (self.top is None and self.enc is None):
            self.top = self.enc = self.joined = None
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
        elif None in top:
            _fill(top, self.vals, _level_tuple)
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
        elif None in enc:
            _fill(enc, self.vals, self._encode)
        out = b"".join(enc[:depth])  # type: ignore[arg-type]  # filled: no None left
        self.joined = (depth, out)
        return out

    def _encode(self, lv: _Lvl) -> bytes:
        out = lv[3] = _encode_level(self.field, _canon_any(lv[0]), _canon_any(lv[1]))
        return out


def _memos(chosen: list[_Lvl], slot: int, make: Callable[[_Lvl], Any]) -> list[Any]:
    """Each level's memo in ``slot``, made where missing (the common case runs in C: map + ``in``)."""
    out = list(map(itemgetter(slot), chosen))
    if None in out:
        _fill(out, chosen, make)
    return out


def _fill(out: list[Any], chosen: list[_Lvl], make: Callable[[_Lvl], Any]) -> None:
    """Replace each ``None`` in ``out`` with ``make()`` of the level at the same rank."""
    for i, memo in enumerate(out):
        if memo is None:
            out[i] = make(chosen[i])


class OrderBookL2:
    """The local L2 book of one symbol.  Not thread-safe; owned by one asyncio task."""

    __slots__ = (
        "_asks",
        "_bids",
        "_exp",
        "_head",
        "_keymemo",
        "_memo_get",
        "_scaler",
        "_ts",
        "_ts_bytes",
        "applied",
        "gaps",
        "last_sequence",
        "mode",
        "reason",
        "stale",
        "state",
        "symbol",
        "venue",
    )

    def __init__(
        self, symbol: str, venue: str = "", *, sequence: SequenceMode = SequenceMode.CONTIGUOUS
    ) -> None:
        self.symbol = symbol
        self.venue = venue
        self.mode = sequence
        self._bids = _Side(_BIDS_FIELD)  # keys negated: best (highest) bid first
        self._asks = _Side(_ASKS_FIELD)
        self._exp = _DEFAULT_EXP
        self._scaler = _scaler(_DEFAULT_EXP)
        # price string (as given) -> key at the current scale; cleared when the scale grows.
        self._keymemo: dict[str, int] = {}
        self._memo_get = self._keymemo.get  # the dict is only ever cleared, never replaced
        self.state = BookState.EMPTY
        self.reason: ResyncReason | None = ResyncReason.NO_SNAPSHOT
        self.last_sequence = 0  # 0 = the venue gave none
        self._ts: tuple[int, int] | None = None  # (seconds, nanos): a copy, never the caller's message
        self._ts_bytes: bytes | None = None  # its encoding, made by the first snapshot() that needs it
        self._head: tuple[str, str, bytes] = ("", "", b"")  # (venue, symbol, their encoding)
        # Counters for metrics and tests.
        self.applied = 0
        self.stale = 0
        self.gaps = 0

    # ----------------------------------------------------------------------------------- state

    @property
    def needs_resync(self) -> bool:
        """True until a snapshot has been applied, and after a gap, a crossed book or invalidate()."""
        return self.state is not BookState.LIVE

    def invalidate(self, reason: ResyncReason = ResyncReason.INVALIDATED) -> None:
        """Mark the book unusable (e.g. the stream disconnected): deltas are refused until a snapshot."""
        self.state = BookState.NEEDS_RESYNC
        self.reason = reason

    def _mark(self, reason: ResyncReason) -> None:
        self.state = BookState.NEEDS_RESYNC
        self.reason = reason

    # ------------------------------------------------------------------------------- snapshots

    def apply_snapshot(self, book: orderbook_pb2.OrderBook) -> ApplyResult:
        """Replace the book with a venue snapshot (``book.sequence`` is the last update it includes)."""
        return self.apply_snapshot_levels(
            [(lv.price, lv.quantity) for lv in book.bids],
            [(lv.price, lv.quantity) for lv in book.asks],
            sequence=book.sequence,
            timestamp=book.timestamp if book.HasField("timestamp") else None,
        )

    def apply_snapshot_levels(
        self,
        bids: Iterable[LevelInput],
        asks: Iterable[LevelInput],
        *,
        sequence: int = 0,
        timestamp: Timestamp | datetime | None = None,
    ) -> ApplyResult:
        """Replace the book.  Zero sizes are dropped; the result is checked for crossing."""
        # Parse everything before touching state: a garbage snapshot leaves the old book as it was.
        bid_keyed = self._parse(bids, True, None)
        ask_keyed = self._parse(asks, False, bid_keyed)
        self._bids.load(bid_keyed)
        self._asks.load(ask_keyed)
        self.last_sequence = int(sequence)
        if timestamp is not None:
            self._set_time(timestamp)
        self.applied += 1
        if self._crossed():
            self._mark(ResyncReason.CROSSED)
            return ApplyResult.CROSSED
        self.state = BookState.LIVE
        self.reason = None
        return ApplyResult.APPLIED

    # ---------------------------------------------------------------------------------- deltas

    def apply_delta(self, delta: orderbook_pb2.OrderBookDelta) -> ApplyResult:
        """Apply a cqc :class:`OrderBookDelta` (absolute sizes; ``"0"`` removes the level)."""
        return self.apply_levels(
            [(lv.price, lv.quantity) for lv in delta.bids],
            [(lv.price, lv.quantity) for lv in delta.asks],
            sequence=delta.sequence,
            previous_sequence=delta.previous_sequence,
            timestamp=delta.timestamp if delta.HasField("timestamp") else None,
        )

    def check_sequence(
        self, sequence: int, previous_sequence: int = 0, first_sequence: int = 0
    ) -> ApplyResult:
        """Classify an update's sequence numbers against the book without applying anything.

        ``previous_sequence`` (when the venue sends it) must equal the last applied sequence, in every
        mode.  ``first_sequence`` is for venues whose one update covers a range ``[first, sequence]``
        (e.g. Binance ``U``/``u``): contiguous then means ``first <= last + 1 <= sequence``.
        """
        last = self.last_sequence
        if not sequence or not last or self.mode is SequenceMode.NONE:
            return ApplyResult.APPLIED
        if sequence <= last:
            return ApplyResult.STALE
        if previous_sequence:
            return ApplyResult.APPLIED if previous_sequence == last else ApplyResult.GAP
        if self.mode is SequenceMode.CONTIGUOUS:
            low = first_sequence or sequence
            return ApplyResult.APPLIED if low <= last + 1 else ApplyResult.GAP
        return ApplyResult.APPLIED

    def apply_levels(
        self,
        bids: Iterable[LevelInput] = (),
        asks: Iterable[LevelInput] = (),
        *,
        sequence: int = 0,
        previous_sequence: int = 0,
        first_sequence: int = 0,
        timestamp: Timestamp | datetime | None = None,
    ) -> ApplyResult:
        """Apply one complete update given as ``(price, size)`` pairs (the adapters' fast path).

        The crossed check runs once, after the whole update: a venue may move a level from one side to
        the other within one message, and the intermediate state may legitimately cross.
        """
        if self.state is not _LIVE:
            return _REFUSED
        # The common case first: the next contiguous number.  Anything else takes the full check.
        if sequence:
            last = self.last_sequence
            if last and (sequence != last + 1 or previous_sequence) and self.mode is not _NONE:
                verdict = self.check_sequence(sequence, previous_sequence, first_sequence)
                if verdict is ApplyResult.STALE:
                    self.stale += 1
                    return verdict
                if verdict is ApplyResult.GAP:
                    self.gaps += 1
                    self._mark(ResyncReason.SEQUENCE_GAP)
                    return verdict
        # Parse the whole update first so garbage leaves the book untouched (and then resyncs).
        try:
            bid_keyed = self._parse(bids, True, None) if bids else _EMPTY
            ask_keyed = self._parse(asks, False, bid_keyed) if asks else _EMPTY
        except ParseError:
            # We cannot know what the venue meant; the book is no longer trustworthy.
            self._mark(ResyncReason.INVALIDATED)
            raise
        if bid_keyed:
            self._bids.apply(bid_keyed)
        if ask_keyed:
            self._asks.apply(ask_keyed)
        if sequence:
            self.last_sequence = sequence
        if timestamp is not None:
            self._set_time(timestamp)
        self.applied += 1
        bk = self._bids.keys
        ak = self._asks.keys
        if bk and ak and -bk[0] >= ak[0]:
            self._mark(ResyncReason.CROSSED)
            return _CROSSED
        return _APPLIED

    # ---------------------------------------------------------------------------------- reads

    def _crossed(self) -> bool:
        bk = self._bids.keys
        ak = self._asks.keys
        return bool(bk) and bool(ak) and -bk[0] >= ak[0]

    @property
    def crossed(self) -> bool:
        return self._crossed()

    @property
    def best_bid(self) -> Level | None:
        side = self._bids
        if not side.keys:
            return None
        lv = side.vals[0]
        return lv[2] or _level_tuple(lv)

    @property
    def best_ask(self) -> Level | None:
        side = self._asks
        if not side.keys:
            return None
        lv = side.vals[0]
        return lv[2] or _level_tuple(lv)

    @property
    def mid(self) -> Decimal | None:
        bid = self.best_bid
        ask = self.best_ask
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0]) / 2

    def bids(self, depth: int | None = None) -> list[Level]:
        """Bid levels ``(price, size)``, highest price first (all of them when ``depth`` is None)."""
        return self._bids.top_levels(depth)

    def asks(self, depth: int | None = None) -> list[Level]:
        """Ask levels ``(price, size)``, lowest price first (all of them when ``depth`` is None)."""
        return self._asks.top_levels(depth)

    # ------------------------------------------------------------------------------ price keys

    def _parse(self, levels: Iterable[LevelInput], negate: bool, other: list[Keyed] | None) -> list[Keyed]:
        """Validate one side of an update into ``(key, price, size or None)`` (the per-level hot loop).

        When a price is finer than the current key scale, the scale grows: the book's levels, the
        keys parsed so far and ``other`` (the update's side parsed before this one) are rescaled.
        """
        out: list[Keyed] = []
        append = out.append
        memo_get = self._memo_get
        scale, mul, exact = self._scaler
        try:
            for price, size in levels:
                # Wire strings: their key is remembered (venues repeat prices; a str hash is cheap).
                # Decimals: scaled directly (a fresh Decimal's hash costs more than the scaling).
                # Nothing else is looked up: a float equal to a remembered price must not slip in.
                if type(price) is str:
                    key = memo_get(price)
                elif type(price) is _DEC and price.is_finite():
                    try:
                        key = int(exact(mul(price, scale)))
                    except decimal.Inexact:
                        key = None  # finer than the scale, or too many digits: see _slow()
                else:
                    key = None
                if key is not None:
                    if type(size) is str:
                        # _is_plain(), inlined: ASCII digits with at most one "."; longer strings
                        # may reach 1e40, and the slow path decides about those.
                        if (
                            size.isascii()
                            and len(size) <= _MAX_MAGNITUDE
                            and size.replace(".", "", 1).isdigit()
                        ):
                            append((-key if negate else key, price, size if size.strip("0.") else None))
                            continue
                    elif (
                        type(size) is _DEC
                        and size.is_finite()
                        and not size.is_signed()
                        and size.adjusted() < _MAX_MAGNITUDE
                    ):
                        append((-key if negate else key, price, size if size else None))
                        continue
                # Anything else: the exact (and explaining) path.
                exp = self._exp
                key, kept_price, kept_size = self._slow(price, size)
                if self._exp != exp:
                    factor = 10 ** (self._exp - exp)
                    out[:] = [(k * factor, p, q) for k, p, q in out]
                    if other:
                        other[:] = [(k * factor, p, q) for k, p, q in other]
                    scale, mul, exact = self._scaler
                append((-key if negate else key, kept_price, kept_size))
        except (TypeError, ValueError) as exc:
            # Not a sequence of pairs, or an unhashable/odd price: garbage either way.
            raise ParseError(f"book levels: malformed input ({type(exc).__name__})") from None
        return out

    def _slow(self, price: object, size: object) -> Keyed:
        """Validate one level the exact way; remember the price's key for next time."""
        p, q = _level(price, size)
        scale, mul, exact = self._scaler
        try:
            key = int(exact(mul(p, scale)))
        except decimal.Inexact:
            self._grow(p)
            scale, mul, exact = self._scaler
            try:
                key = int(exact(mul(p, scale)))
            except decimal.Inexact:
                raise ParseError(f"book price: too many digits: {str(p)[:40]}") from None
        if type(price) is str:
            memo = self._keymemo
            if len(memo) >= _KEY_MEMO_MAX:
                memo.clear()
            memo[price] = key
        else:
            price = p  # an int or float input is stored as its exact Decimal
        if not q:
            return key, price, None
        # Keep a plain size string as given (made Decimal on read); anything else as the Decimal.
        return key, price, size if type(size) is str and _is_plain(size) else q

    def _grow(self, price: Decimal) -> None:
        """Raise the key scale so ``price`` maps to an integer."""
        exponent = price.as_tuple().exponent
        need = -exponent if isinstance(exponent, int) else _MAX_EXP + 1
        if need <= self._exp:
            # Inexact without a finer step: too many digits, not a finer tick.
            raise ParseError(f"book price: too many digits: {str(price)[:40]}")
        if need > _MAX_EXP:
            raise ParseError(f"book price: precision finer than 1e-{_MAX_EXP}: {str(price)[:40]}")
        self._rescale(need)

    def _rescale(self, exp: int) -> None:
        factor = int(10 ** (exp - self._exp))
        self._bids.rescale(factor)
        self._asks.rescale(factor)
        self._keymemo.clear()
        self._exp = exp
        self._scaler = _scaler(exp)

    def __len__(self) -> int:
        return len(self._bids.keys) + len(self._asks.keys)

    @property
    def depth(self) -> tuple[int, int]:
        """Number of (bid, ask) levels held."""
        return len(self._bids.keys), len(self._asks.keys)

    def snapshot(self, depth: int | None = 20) -> orderbook_pb2.OrderBook:
        """The top ``depth`` levels per side as a cqc :class:`OrderBook`, best first.

        A new message on every call (callers may mutate it), built from cached level encodings.
        """
        venue, symbol, head = self._head
        if venue != self.venue or symbol != self.symbol:  # both are public attributes
            venue, symbol = self.venue, self.symbol
            head = (_field(_VENUE_FIELD, venue.encode()) if venue else b"") + (
                _field(_SYMBOL_FIELD, symbol.encode()) if symbol else b""
            )
            self._head = (venue, symbol, head)
        if self._ts is not None:
            ts = self._ts_bytes
            if ts is None:
                ts = self._ts_bytes = _encode_timestamp(*self._ts)
            head += ts
        seq = self.last_sequence
        if 0 < seq <= _U64:
            head += _SEQ_TAG + _varint(seq)
        book = _BOOK_FROM_BYTES(head + self._bids.top_encoded(depth) + self._asks.top_encoded(depth))
        if seq and not 0 < seq <= _U64:
            book.sequence = seq  # out of range: let protobuf refuse it, as it always did
        return book

    def _set_time(self, timestamp: Timestamp | datetime | None) -> None:
        if timestamp is None:
            return
        if isinstance(timestamp, datetime):
            ts = Timestamp()
            ts.FromDatetime(timestamp)
            self._ts = (ts.seconds, ts.nanos)
        else:
            self._ts = (timestamp.seconds, timestamp.nanos)
        self._ts_bytes = None

    def __repr__(self) -> str:
        return (
            f"OrderBookL2({self.symbol!r}, state={self.state.value}, seq={self.last_sequence}, "
            f"levels={self.depth}, reason={self.reason.value if self.reason else None})"
        )
