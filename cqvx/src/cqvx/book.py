"""A local L2 order book for one symbol: snapshot + deltas, sequence checks, crossed-book check, resync.

Venue adapters feed it the venue's snapshot and its incremental updates (absolute sizes; a size of 0
removes the level) and publish :meth:`OrderBookL2.snapshot` to subscribers.  The book never guesses:
on a sequence gap or a crossed book it stops accepting deltas, sets :attr:`OrderBookL2.needs_resync`
with a typed :class:`ResyncReason`, and only a new snapshot brings it back.  A snapshot replaces the
whole book, so no level from before the resync can survive it.

Two entry points per operation: the cqc messages (:meth:`apply_snapshot`, :meth:`apply_delta`) and a
fast path taking ``(price, size)`` pairs of ``Decimal`` or ``str`` straight from a venue parser
(:meth:`apply_snapshot_levels`, :meth:`apply_levels`), which skips building protobuf messages that
would be thrown away.  :meth:`apply_level` takes one level as ``(is_bid, price, size)``, the form of
most messages of a busy feed; :meth:`apply_levels` hands such a message to it.

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
* A message of one level on one side (most of a busy feed) whose price string names a level the side
  holds and whose size is a plain decimal string is validated and written in place without the
  two-phase parse: each side maps the price strings it was given to their level objects (a removed
  level is marked dead, so a stale entry is never written through), so finding the level is one str
  lookup.  A size change of an existing level outside the cached top changes no order, so the crossed
  check (already false while live) is skipped for it.  Everything else takes the general path.
* The sequence check of the common update is one compare: ``_next`` holds last + 1 while the book is
  live (NaN otherwise, which equals nothing), kept in step by every write of the state and of
  ``last_sequence`` (both are properties for that reason); any other number takes the full check.
* Reads are memoised: each level carries its ``(Decimal, Decimal)`` tuple and its encoded cqc
  ``OrderBookLevel`` once someone asked for them (an update clears both), and each side caches its
  top ``N`` until an update touches a price at or better than the ``N``-th level (a size change
  there blanks one entry, and its rank is noted so the next read fills just that one).
  :meth:`snapshot` joins the cached encodings and parses them in one protobuf call, so the
  published message is always a fresh object the caller may mutate.

Numbers must be finite, sizes >= 0, and both below 1e40 (a price like ``1E+500000`` is a valid
Decimal whose integer key would take seconds to build); anything else is a :class:`ParseError`.
"""

from __future__ import annotations

import decimal
import enum
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from google.protobuf.timestamp_pb2 import Timestamp

from cqc.markets.v1 import orderbook_pb2
from cqvx._book_read import _BookReads
from cqvx._book_side import (
    _ASKS_FIELD,
    _BIDS_FIELD,
    _DEFAULT_EXP,
    _EMPTY,
    _KEY_MEMO_MAX,
    _MAX_EXP,
    _MAX_MAGNITUDE,
    Keyed,
    Level,
    _is_plain,
    _level,
    _scaler,
    _Side,
)
from cqvx.errors import ParseError
from cqvx.timeutil import timestamp_from_datetime

__all__ = ["ApplyResult", "BookState", "Level", "OrderBookL2", "ResyncReason", "SequenceMode"]

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
_NEVER = float("nan")  # equal to nothing


class OrderBookL2(_BookReads):
    """The local L2 book of one symbol.  Not thread-safe; owned by one asyncio task.

    Reads (best levels, top-N lists, :meth:`snapshot`) live in :mod:`cqvx._book_read`."""

    __slots__ = (
        "_asks",
        "_bids",
        "_exp",
        "_keymemo",
        "_last",
        "_memo_get",
        "_next",
        "_scaler",
        "_state",
        "_ts",
        "applied",
        "gaps",
        "mode",
        "reason",
        "stale",
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
        self._state = BookState.EMPTY
        self.reason: ResyncReason | None = ResyncReason.NO_SNAPSHOT
        self._last = 0  # last_sequence; 0 = the venue gave none
        # The one sequence number an update may carry to skip every other sequence check: last + 1
        # while the book is live and has a last sequence, else NaN (nothing equals it, not even
        # None).  Kept in step by the ``state`` and ``last_sequence`` setters and every write.
        self._next: float = _NEVER
        self._ts: tuple[int, int] | None = None  # (seconds, nanos): a copy, never the caller's message
        self._ts_bytes: bytes | None = None  # its encoding, made by the first snapshot() that needs it
        self._head: tuple[str, str, bytes] = ("", "", b"")  # (venue, symbol, their encoding)
        # Counters for metrics and tests.
        self.applied = 0
        self.stale = 0
        self.gaps = 0

    # ----------------------------------------------------------------------------------- state

    @property
    def state(self) -> BookState:
        return self._state

    @state.setter
    def state(self, state: BookState) -> None:
        self._state = state
        self._next = self._last + 1 if state is _LIVE and self._last else _NEVER

    @property
    def last_sequence(self) -> int:
        """The sequence number of the last update applied (0 = the venue gave none)."""
        return self._last

    @last_sequence.setter
    def last_sequence(self, sequence: int) -> None:
        self._last = sequence
        self._next = sequence + 1 if self._state is _LIVE and sequence else _NEVER

    @property
    def needs_resync(self) -> bool:
        """True until a snapshot has been applied, and after a gap, a crossed book or invalidate()."""
        return self._state is not BookState.LIVE

    def invalidate(self, reason: ResyncReason = ResyncReason.INVALIDATED) -> None:
        """Mark the book unusable (e.g. the stream disconnected): deltas are refused until a snapshot."""
        self._mark(reason)

    def _mark(self, reason: ResyncReason) -> None:
        self._state = BookState.NEEDS_RESYNC
        self._next = _NEVER
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
        self._last = int(sequence)
        if timestamp is not None:
            self._set_time(timestamp)
        self.applied += 1
        if self._crossed():
            self._mark(ResyncReason.CROSSED)
            return ApplyResult.CROSSED
        self.state = BookState.LIVE  # the setter arms the fast sequence check
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
        last = self._last
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

    def apply_level(
        self,
        bid: bool,
        price: Decimal | str,
        size: Decimal | str,
        sequence: int = 0,
        timestamp: Timestamp | datetime | None = None,
    ) -> ApplyResult:
        """Apply an update of one level (``bid``: which side), the form of most messages of a busy feed.

        The same checks and results as :meth:`apply_levels` with that one level, which it is for any
        input this method does not take quickly.  Quick: the book is live and ``sequence`` is the
        next contiguous number (or 0, none), the price is a ``str`` the side already holds a level
        for, and the size is a plain decimal string.  A new size for that level outside the cached
        top changes no order, so it is written in place without the crossed check (the book was
        live, so not crossed); anything else goes through the side's general update.
        """
        side = self._bids if bid else self._asks
        if (
            (sequence == self._next or (not sequence and self._state is _LIVE))
            and type(price) is str
            and type(size) is str
        ):
            lv = side.memo.get(price)
            if (
                lv is not None
                and lv[1] is not None  # a live level (a removed one keeps its memo entry)
                and size.isascii()  # _is_plain(), inlined, with the length bound of _level()
                and len(size) <= _MAX_MAGNITUDE
                and size.replace(".", "", 1).isdigit()
            ):
                if sequence:
                    self._last = sequence
                    self._next = sequence + 1
                if timestamp is not None:
                    self._set_time(timestamp)
                self.applied += 1
                key = lv[4]
                kept: str | None = size
                if size.strip("0."):
                    if key > side.bound:
                        lv[0] = price
                        lv[1] = size
                        lv[2] = lv[3] = None
                        return _APPLIED
                else:
                    kept = None  # removes the level
                side.apply([(key, price, kept)])
                bk = self._bids.keys
                ak = self._asks.keys
                if bk and ak and -bk[0] >= ak[0]:
                    self._mark(ResyncReason.CROSSED)
                    return _CROSSED
                return _APPLIED
        one = [(price, size)]
        if bid:
            return self._apply(one, (), sequence, 0, 0, timestamp)
        return self._apply((), one, sequence, 0, 0, timestamp)

    def apply_levels(  # noqa: PLR0917  (positional: see the docstring)
        self,
        bids: Iterable[LevelInput] = (),
        asks: Iterable[LevelInput] = (),
        sequence: int = 0,
        previous_sequence: int = 0,
        first_sequence: int = 0,
        timestamp: Timestamp | datetime | None = None,
    ) -> ApplyResult:
        """Apply one complete update given as ``(price, size)`` pairs (the adapters' fast path).

        The crossed check runs once, after the whole update: a venue may move a level from one side to
        the other within one message, and the intermediate state may legitimately cross.  The
        parameters are not keyword-only because filling keyword-only defaults costs a call ~35 ns.
        """
        # One level on one side (most messages of a busy feed): apply_level's quick case, which comes
        # back here for what it does not take.  One home for that case: inlining it here was measured
        # 0.69x of ccxt instead of 0.61x, not worth a second copy of the checks.
        if not previous_sequence and not first_sequence:
            if not asks:
                if type(bids) is list and len(bids) == 1:
                    one = bids[0]
                    if type(one) is tuple and len(one) == 2:
                        return self.apply_level(True, one[0], one[1], sequence, timestamp)
            elif not bids and type(asks) is list and len(asks) == 1:
                one = asks[0]
                if type(one) is tuple and len(one) == 2:
                    return self.apply_level(False, one[0], one[1], sequence, timestamp)
        return self._apply(bids, asks, sequence, previous_sequence, first_sequence, timestamp)

    def _apply(  # noqa: PLR0917  (a private hop: positional is cheapest)
        self,
        bids: Iterable[LevelInput],
        asks: Iterable[LevelInput],
        sequence: int,
        previous_sequence: int,
        first_sequence: int,
        timestamp: Timestamp | datetime | None,
    ) -> ApplyResult:
        """The general update: sequence checks, then every level parsed before any is applied."""
        if sequence != self._next or previous_sequence:
            if self._state is not _LIVE:
                return _REFUSED
            if sequence and self._last and self.mode is not _NONE:
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
            self._last = sequence
            self._next = sequence + 1
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

    def _set_time(self, timestamp: Timestamp | datetime | None) -> None:
        if timestamp is None:
            return
        if isinstance(timestamp, datetime):
            ts = timestamp_from_datetime(timestamp)
            self._ts = (ts.seconds, ts.nanos)
        else:
            self._ts = (timestamp.seconds, timestamp.nanos)
        self._ts_bytes = None
