"""The read side of :class:`cqvx.book.OrderBookL2`: best levels, top-N lists, the cqc snapshot.

A mixin with no state of its own (the book's slots hold it); split from :mod:`cqvx.book`, which
keeps the writes (snapshots, updates, sequence checks, price keys).  Reads are memoised per level
and per side (see :mod:`cqvx._book_side`); :meth:`_BookReads.snapshot` joins cached level encodings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from cqc.markets.v1 import orderbook_pb2
from cqvx._book_side import (
    _BOOK_FROM_BYTES,
    _SEQ_TAG,
    _SYMBOL_FIELD,
    _U64,
    _VENUE_FIELD,
    Level,
    _encode_timestamp,
    _field,
    _level_tuple,
    _Side,
    _varint,
)

if TYPE_CHECKING:
    from cqvx.book import BookState, ResyncReason


class _BookReads:
    """Reads of the book (mixin of :class:`cqvx.book.OrderBookL2`)."""

    # The snapshot's cached encodings (written here); the book's other state is in its own slots.
    __slots__ = ("_head", "_ts_bytes")

    symbol: str
    venue: str
    reason: ResyncReason | None
    _bids: _Side
    _asks: _Side
    _last: int
    _state: BookState
    _ts: tuple[int, int] | None
    _ts_bytes: bytes | None
    _head: tuple[str, str, bytes]

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
        side = self._bids
        top = side.top
        # A complete cache for exactly this depth (the steady state of a reader): a copy of it.
        if side.full and depth == side.depth:
            return top[:]  # type: ignore[index,return-value]  # full: no None left
        return side.top_levels(depth)

    def asks(self, depth: int | None = None) -> list[Level]:
        """Ask levels ``(price, size)``, lowest price first (all of them when ``depth`` is None)."""
        side = self._asks
        top = side.top
        if side.full and depth == side.depth:
            return top[:]  # type: ignore[index,return-value]  # full: no None left
        return side.top_levels(depth)

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
        seq = self._last
        if 0 < seq <= _U64:
            head += _SEQ_TAG + _varint(seq)
        book = _BOOK_FROM_BYTES(head + self._bids.top_encoded(depth) + self._asks.top_encoded(depth))
        if seq and not 0 < seq <= _U64:
            book.sequence = seq  # out of range: let protobuf refuse it, as it always did
        return book

    def __repr__(self) -> str:
        return (
            f"OrderBookL2({self.symbol!r}, state={self._state.value}, seq={self._last}, "
            f"levels={self.depth}, reason={self.reason.value if self.reason else None})"
        )
