"""The public market streams of the thinner fakes (book, trades, ticker), fed by the simulated venue.

One :class:`PublicFeed` per fake (``fake.public``); each venue module (``bybit_ws``, ``okx_ws``,
``bitget_ws``, ``gate_ws``) subclasses it with its own subscribe dialect and message shapes, written
from the venue's WebSocket docs cited there.  What they share, here:

* The book each symbol's stream describes is the sim's (read 1000 levels deep); every sim book update
  becomes, per subscription, the venue's delta between the top ``depth`` levels before and after it
  (absolute sizes, ``0`` removes), in the venue's quantity unit (contracts on OKX and Gate).
* The sequence of a book is the sim's (the REST book's ``seqId``/``id`` is the same number), so a
  REST snapshot and the stream chain together where the venue's protocol joins them (Gate).
* Every outgoing frame of a public connection goes through one queue per connection, so a
  subscription's answer and its snapshot always precede the updates computed after it.
* Faults: :meth:`PublicFeed.skip_depth` (the next update of a symbol is applied but never sent, so the
  one after it does not chain: a gap the venue's client must detect and resync from) and the base's
  ``drop_ws`` (cut connections; the book can then change unpublished, see the conformance harness).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from cqc.markets.v1 import orderbook_pb2, trade_pb2
from cqvx.timeutil import to_ns

if TYPE_CHECKING:
    from cqvx.testing.fake_ccxt._base import SimFake

__all__ = ["BookState", "PublicFeed", "Sub", "crc32_signed", "interleaved_checksum", "now_ms"]

_SIM_DEPTH = 1000  # levels per side read from the sim (deeper than any venue subscription)


def now_ms() -> int:
    return int(time.time() * 1000)


def crc32_signed(text: str) -> int:
    """CRC32 of ``text`` as a signed 32-bit integer (how OKX and Bitget publish their checksums)."""
    value = zlib.crc32(text.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def interleaved_checksum(bids: list[list[str]], asks: list[list[str]], levels: int = 25) -> int:
    """``bid1p:bid1q:ask1p:ask1q:bid2p:...`` over the top ``levels`` of each side (a side that runs out
    is skipped), as wire text, signed CRC32: the OKX and Bitget book checksum."""
    parts: list[str] = []
    for i in range(levels):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    return crc32_signed(":".join(parts))


@dataclass
class BookState:
    """The book the fake has published for one symbol: price text -> base quantity text."""

    bids: dict[str, str]
    asks: dict[str, str]
    seq: int
    skip: int = 0
    skipped: bool = False  # an update was withheld since the last one sent

    def top(self, depth: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)[:depth]
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))[:depth]
        return bids, asks


@dataclass(eq=False)
class Sub:
    """One subscription of one connection: ``kind`` is ``book``, ``trades`` or ``ticker``."""

    ws: web.WebSocketResponse
    kind: str
    symbol: str  # venue symbol
    depth: int = 0
    arg: Any = None  # the venue's own channel descriptor, echoed in its pushes
    counter: int = 0  # per-subscription update counter (Bybit's ``u``)
    prev: int = -1  # the sequence of the last book message sent on it


@dataclass(eq=False)
class _Outbox:
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


def _diff(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> list[tuple[str, str]]:
    before, after = dict(old), dict(new)
    out = [(p, q) for p, q in new if before.get(p) != q]
    out += [(p, "0") for p, _ in old if p not in after]
    return out


class PublicFeed:
    """Subclass per venue: :meth:`on_text` (the venue's subscribe protocol) and the push shapes."""

    # Bybit documents no sequence check for clients; its recovery is a fresh snapshot (``u`` = 1 after
    # a service restart), so after a withheld update the next one goes out as a snapshot.
    snapshot_after_skip: ClassVar[bool] = False

    def __init__(self, fake: SimFake) -> None:
        self.fake = fake
        self.books: dict[str, BookState] = {}
        self.subs: list[Sub] = []
        self.last_trade: dict[str, trade_pb2.Trade] = {}
        self.subscribe_requests = 0
        self._outboxes: dict[web.WebSocketResponse, _Outbox] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._streams: list[Any] = []

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        sim = self.fake.sim
        loop = asyncio.get_running_loop()
        for venue_symbol, spec in self.fake.perps.items():
            book = await sim.get_order_book(spec.symbol, _SIM_DEPTH)
            self.books[venue_symbol] = BookState(_levels(book.bids), _levels(book.asks), book.sequence)
            for stream, handler in (
                (sim.subscribe_order_book(spec.symbol, _SIM_DEPTH), self._on_book),
                (sim.subscribe_trades(spec.symbol), self._on_trade),
            ):
                self._streams.append(stream)
                self._tasks.append(loop.create_task(self._pump(stream, handler)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for stream in self._streams:
            with contextlib.suppress(Exception):
                await stream.aclose()
        for box in self._outboxes.values():
            box.queue.put_nowait(None)

    async def _pump(self, stream: Any, handler: Any) -> None:
        async for msg in stream:
            try:
                await handler(msg)
            except Exception:  # a fake keeps serving; the test sees the missing message
                continue

    # -- faults ----------------------------------------------------------------------------------

    def skip_depth(self, venue_symbol: str, count: int = 1) -> None:
        """The next ``count`` book updates of ``venue_symbol`` are applied but never sent."""
        self.books[venue_symbol].skip += count

    # -- connections -----------------------------------------------------------------------------

    def send(self, ws: web.WebSocketResponse, payload: Any) -> None:
        """Queue one frame (JSON, or raw text for a str) for ``ws``; frames leave in queue order."""
        box = self._outboxes.get(ws)
        if box is None:
            box = self._outboxes[ws] = _Outbox()
            box.task = asyncio.get_running_loop().create_task(self._write(ws, box))
        box.queue.put_nowait(payload if isinstance(payload, str) else json.dumps(payload))

    async def _write(self, ws: web.WebSocketResponse, box: _Outbox) -> None:
        try:
            while (text := await box.queue.get()) is not None:
                if ws.closed:
                    break
                try:
                    await ws.send_str(text)
                except (ConnectionError, RuntimeError):
                    break
        finally:
            self._outboxes.pop(ws, None)
            self.subs = [s for s in self.subs if s.ws is not ws]

    async def subscribe(self, sub: Sub) -> None:
        """Register ``sub`` and queue its first message (book snapshot, current ticker), after the
        venue's answer the caller already queued."""
        self.subscribe_requests += 1
        if sub.kind == "book":
            # The sim's current book, in case it changed unpublished (a test's "changed while away").
            spec = self.fake.perps[sub.symbol]
            current = await self.fake.sim.get_order_book(spec.symbol, _SIM_DEPTH)
            state = self.books[sub.symbol]
            if current.sequence > state.seq:
                state.bids, state.asks, state.seq = (
                    _levels(current.bids),
                    _levels(current.asks),
                    current.sequence,
                )
            self.subs.append(sub)
            self.send(sub.ws, self.book_snapshot(sub, state))
            sub.prev = state.seq
        elif sub.kind == "ticker":
            self.subs.append(sub)
            self.send(sub.ws, await self.ticker_push(sub, first=True))
        else:
            self.subs.append(sub)

    def unsubscribe(self, ws: web.WebSocketResponse, kind: str, venue_symbol: str) -> None:
        self.subs = [s for s in self.subs if not (s.ws is ws and s.kind == kind and s.symbol == venue_symbol)]

    def _subs(self, kind: str, venue_symbol: str) -> list[Sub]:
        for gone in {s.ws for s in self.subs if s.ws.closed}:  # the connection ended: forget it
            self.subs = [s for s in self.subs if s.ws is not gone]
            if (box := self._outboxes.get(gone)) is not None:
                box.queue.put_nowait(None)
        return [s for s in self.subs if s.kind == kind and s.symbol == venue_symbol]

    # -- sim events ------------------------------------------------------------------------------

    async def _on_book(self, book: orderbook_pb2.OrderBook) -> None:
        sym = self.fake.venue_symbol(book.symbol)
        state = self.books[sym]
        if book.sequence <= state.seq:
            return
        subs = self._subs("book", sym)
        before = {s.depth: state.top(s.depth) for s in subs}
        old_touch = state.top(1)
        state.bids, state.asks, state.seq = _levels(book.bids), _levels(book.asks), book.sequence
        if state.skip > 0:  # "sent" and lost: the next message chains to this one, not the last one seen
            state.skip -= 1
            state.skipped = True
            for sub in subs:
                sub.prev, sub.counter = state.seq, sub.counter + 1
            return
        resnapshot = state.skipped and self.snapshot_after_skip
        state.skipped = False
        after = {depth: state.top(depth) for depth in before}
        for sub in subs:
            if resnapshot:
                message = self.book_snapshot(sub, state, restart=True)
            else:
                (old_bids, old_asks), (new_bids, new_asks) = before[sub.depth], after[sub.depth]
                message = self.book_update(sub, state, _diff(old_bids, new_bids), _diff(old_asks, new_asks))
            self.send(sub.ws, message)
        if state.top(1) != old_touch:
            await self._tickers(sym)

    async def _on_trade(self, trade: trade_pb2.Trade) -> None:
        sym = self.fake.venue_symbol(trade.symbol)
        self.last_trade[sym] = trade
        for sub in self._subs("trades", sym):
            self.send(sub.ws, self.trade_push(sub, trade))
        await self._tickers(sym)

    async def _tickers(self, sym: str) -> None:
        for sub in self._subs("ticker", sym):
            self.send(sub.ws, await self.ticker_push(sub, first=False))

    # -- shared readers for the venue shapes -----------------------------------------------------

    def wire_levels(self, levels: list[tuple[str, str]]) -> list[list[str]]:
        """``[[price, quantity in the venue's unit], ...]`` as wire text."""
        return [[p, self.fake.to_wire(q)] for p, q in levels]

    async def quote(self, venue_symbol: str) -> dict[str, str]:
        """What a ticker carries: last (the last trade, else the mid), touch, mark and index."""
        spec = self.fake.perps[venue_symbol]
        state = self.books[venue_symbol]
        (bids, asks) = state.top(1)
        bid, bid_size = bids[0] if bids else ("", "0")
        ask, ask_size = asks[0] if asks else ("", "0")
        trade = self.last_trade.get(venue_symbol)
        if trade is not None:
            last = trade.price
        elif bid and ask:
            last = _text((Decimal(bid) + Decimal(ask)) / 2)
        else:
            last = bid or ask
        rate = await self.fake.sim.get_funding_rate(spec.symbol)
        return {
            "last": last,
            "last_size": self.fake.to_wire(trade.quantity) if trade is not None else "0",
            "bid": bid,
            "bid_size": self.fake.to_wire(bid_size),
            "ask": ask,
            "ask_size": self.fake.to_wire(ask_size),
            "mark": rate.mark_price or last,
            "index": rate.index_price or last,
            "funding_rate": rate.rate or "0",
            "next_funding_ms": str(_ms(rate.next_funding_time)),
        }

    # -- the venue's protocol and shapes (subclasses) ---------------------------------------------

    def routes(self, app: web.Application) -> None:
        """Add the venue's public WebSocket endpoint (the base serves none)."""

    def book_snapshot(self, sub: Sub, state: BookState, *, restart: bool = False) -> Any:
        raise NotImplementedError

    def book_update(
        self, sub: Sub, state: BookState, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
    ) -> Any:
        raise NotImplementedError

    def trade_push(self, sub: Sub, trade: trade_pb2.Trade) -> Any:
        raise NotImplementedError

    async def ticker_push(self, sub: Sub, *, first: bool) -> Any:
        raise NotImplementedError


def _levels(levels: Any) -> dict[str, str]:
    return {lv.price: lv.quantity for lv in levels}


def _text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _ms(ts: Any) -> int:
    return to_ns(ts) // 1_000_000
