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

Each side is a dict ``key -> (price, size)`` plus a sorted list of the keys (kept with :mod:`bisect`),
so an update costs one dict operation plus, when a level appears or disappears, one binary search and
a list insert/delete; the top ``N`` levels are a slice.  The key is the price as an exact scaled
integer (``price * 10**e``, ``e`` = 8 and raised when a finer price arrives): int hashing and
comparison are several times cheaper than Decimal's, and the mapping is exact, so two different
prices never share a level.
"""

from __future__ import annotations

import decimal
import enum
from bisect import bisect_left, insort
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation

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
_NONE = SequenceMode.NONE


def _to_dec(value: Decimal | str, field: str) -> Decimal:
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


_DEC = Decimal


def _level(price: Decimal | str, size: Decimal | str) -> Level:
    """One ``(price, size)`` pair, validated: finite numbers, size >= 0 (the hot path of every update)."""
    try:
        p = price if type(price) is _DEC else _DEC(price) if type(price) is str else None
        q = size if type(size) is _DEC else _DEC(size) if type(size) is str else None
        if p is not None and q is not None and p.is_finite() and q.is_finite() and q >= 0:
            return p, q
    except (InvalidOperation, ValueError):
        pass
    # Slow path: say exactly what is wrong.
    p = _to_dec(price, "price")
    q = _to_dec(size, "size")
    if q < 0:
        raise ParseError(f"book size: negative size {q} at price {p}")
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


Keyed = tuple[int, Decimal, Decimal]  # (scaled price, price, size)

# Exact scaling for any price we accept (a price never has more digits than this).
_KEY_CTX = decimal.Context(prec=100, traps=[decimal.Inexact, decimal.InvalidOperation])
_MUL = _KEY_CTX.multiply
_EXACT = _KEY_CTX.to_integral_exact  # raises Inexact when the scaled price is fractional
_EMPTY: list[Keyed] = []  # shared, never mutated: a side the update does not touch
_DEFAULT_EXP = 8
_MAX_EXP = 30  # a price step finer than 1e-30 is not a price


class _Side:
    """One side of the book: ``key -> (price, size)`` and the keys in ascending order."""

    __slots__ = ("keys", "levels")

    def __init__(self) -> None:
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []

    def apply(self, keyed: list[Keyed]) -> None:
        levels = self.levels
        keys = self.keys
        for key, price, size in keyed:
            if size:  # validated: size > 0 here
                if key not in levels:
                    insort(keys, key)
                levels[key] = (price, size)
            elif key in levels:
                del levels[key]
                del keys[bisect_left(keys, key)]

    def load(self, keyed: list[Keyed]) -> None:
        """Replace the side with a snapshot (later duplicates win; zero sizes remove)."""
        levels: dict[int, Level] = {}
        for key, price, size in keyed:
            if size:
                levels[key] = (price, size)
            else:
                levels.pop(key, None)
        self.levels = levels
        self.keys = sorted(levels)

    def rescale(self, factor: int) -> None:
        self.levels = {k * factor: v for k, v in self.levels.items()}
        self.keys = [k * factor for k in self.keys]

    def top(self, depth: int | None, descending: bool) -> list[Level]:
        keys = self.keys
        levels = self.levels
        if depth is None:
            chosen = keys[::-1] if descending else keys
        elif depth <= 0:
            return []
        else:
            chosen = keys[: -depth - 1 : -1] if descending else keys[:depth]
        return [levels[k] for k in chosen]


class OrderBookL2:
    """The local L2 book of one symbol.  Not thread-safe; owned by one asyncio task."""

    __slots__ = (
        "_asks",
        "_bids",
        "_exp",
        "_scale",
        "_ts",
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
        self._bids = _Side()
        self._asks = _Side()
        self._exp = _DEFAULT_EXP
        self._scale = Decimal(1).scaleb(_DEFAULT_EXP)
        self.state = BookState.EMPTY
        self.reason: ResyncReason | None = ResyncReason.NO_SNAPSHOT
        self.last_sequence = 0  # 0 = the venue gave none
        self._ts: tuple[int, int] | None = None  # (seconds, nanos): a copy, never the caller's message
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
        bid_keyed = self._parse(bids, None)
        ask_keyed = self._parse(asks, bid_keyed)
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
        last = self.last_sequence
        # The common case first: the next contiguous number.  Anything else takes the full check.
        if (
            sequence
            and last
            and not (sequence == last + 1 and not previous_sequence)
            and self.mode is not _NONE
        ):
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
            bid_keyed = self._parse(bids, None) if bids else _EMPTY
            ask_keyed = self._parse(asks, bid_keyed) if asks else _EMPTY
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
        if bk and ak and bk[-1] >= ak[0]:
            self._mark(ResyncReason.CROSSED)
            return ApplyResult.CROSSED
        return _APPLIED

    # ---------------------------------------------------------------------------------- reads

    def _crossed(self) -> bool:
        bk = self._bids.keys
        ak = self._asks.keys
        return bool(bk) and bool(ak) and bk[-1] >= ak[0]

    @property
    def crossed(self) -> bool:
        return self._crossed()

    @property
    def best_bid(self) -> Level | None:
        side = self._bids
        return side.levels[side.keys[-1]] if side.keys else None

    @property
    def best_ask(self) -> Level | None:
        side = self._asks
        return side.levels[side.keys[0]] if side.keys else None

    @property
    def mid(self) -> Decimal | None:
        bid = self.best_bid
        ask = self.best_ask
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0]) / 2

    def bids(self, depth: int | None = None) -> list[Level]:
        """Bid levels ``(price, size)``, highest price first (all of them when ``depth`` is None)."""
        return self._bids.top(depth, descending=True)

    def asks(self, depth: int | None = None) -> list[Level]:
        """Ask levels ``(price, size)``, lowest price first (all of them when ``depth`` is None)."""
        return self._asks.top(depth, descending=False)

    # ------------------------------------------------------------------------------ price keys

    def _parse(self, levels: Iterable[LevelInput], other: list[Keyed] | None) -> list[Keyed]:
        """Validate one side of an update into ``(key, price, size)`` (the per-level hot loop).

        When a price is finer than the current key scale, the scale grows: the book's levels, the
        keys parsed so far and ``other`` (the update's side parsed before this one) are rescaled.
        """
        out: list[Keyed] = []
        append = out.append
        for price, size in levels:
            # Inline fast path for wire strings and Decimals; _level() explains anything else.
            try:
                p = price if type(price) is _DEC else _DEC(price) if type(price) is str else None
                q = size if type(size) is _DEC else _DEC(size) if type(size) is str else None
            except (InvalidOperation, ValueError):
                p = q = None
            if p is None or q is None or not (p.is_finite() and q.is_finite() and q >= 0):
                p, q = _level(price, size)
            try:
                key = int(_EXACT(_MUL(p, self._scale)))
            except decimal.Inexact:
                factor = self._grow(p)
                out[:] = [(k * factor, a, b) for k, a, b in out]
                if other:
                    other[:] = [(k * factor, a, b) for k, a, b in other]
                key = int(_EXACT(_MUL(p, self._scale)))
            append((key, p, q))
        return out

    def _grow(self, price: Decimal) -> int:
        """Raise the key scale so ``price`` maps to an integer; returns the factor applied."""
        exponent = price.as_tuple().exponent
        need = -exponent if isinstance(exponent, int) else _MAX_EXP + 1
        if need > _MAX_EXP:
            raise ParseError(f"book price: precision finer than 1e-{_MAX_EXP}: {price}")
        need = max(need, self._exp + 1)  # Inexact at the current scale means a finer one is needed
        factor = int(10 ** (need - self._exp))
        self._rescale(need)
        return factor

    def _rescale(self, exp: int) -> None:
        factor = int(10 ** (exp - self._exp))
        self._bids.rescale(factor)
        self._asks.rescale(factor)
        self._exp = exp
        self._scale = Decimal(1).scaleb(exp)

    def __len__(self) -> int:
        return len(self._bids.keys) + len(self._asks.keys)

    @property
    def depth(self) -> tuple[int, int]:
        """Number of (bid, ask) levels held."""
        return len(self._bids.keys), len(self._asks.keys)

    def snapshot(self, depth: int | None = 20) -> orderbook_pb2.OrderBook:
        """The top ``depth`` levels per side as a cqc :class:`OrderBook`, best first."""
        Lvl = orderbook_pb2.OrderBookLevel
        book = orderbook_pb2.OrderBook(
            venue=self.venue,
            symbol=self.symbol,
            sequence=self.last_sequence,
            bids=[Lvl(price=_canon(p), quantity=_canon(s)) for p, s in self.bids(depth)],
            asks=[Lvl(price=_canon(p), quantity=_canon(s)) for p, s in self.asks(depth)],
        )
        if self._ts is not None:
            book.timestamp.seconds, book.timestamp.nanos = self._ts
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

    def __repr__(self) -> str:
        return (
            f"OrderBookL2({self.symbol!r}, state={self.state.value}, seq={self.last_sequence}, "
            f"levels={self.depth}, reason={self.reason.value if self.reason else None})"
        )
