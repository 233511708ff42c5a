"""``SimVenue``: the simulated venue behind the full ``VenueClient`` interface.

Driving time.  With a :class:`SimClock` nothing moves by itself: ``await sim.step()`` advances one
market tick, ``await sim.run_until(t)`` / ``run_for(seconds)`` advance as fast as possible, waking
tasks that sleep on the clock in deadline order; :meth:`SimVenue.match_trades` feeds a batch of the
caller's own public trades (ticks, lots, side) against our resting orders at the current time.  With
a :class:`WallClock` a background task (started
by ``async with`` or :meth:`SimVenue.start`) ticks every ``tick_interval / speed`` real seconds.

Streams (:mod:`cqvx.venues.sim.streams`).  Every ``subscribe_*`` registers at once and is live when it
returns (no message is missed between the call and the first ``__anext__``); it follows the
:class:`~cqvx.streams.LiveStream` contract through the one fan-out (:mod:`cqvx.fanout`).  Market data
queries and message building live in :mod:`cqvx.venues.sim.marketdata`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

from cqc.markets.v1 import candle_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2, venue_pb2
from cqvx.client import check_order_ref
from cqvx.errors import InvalidRequest, Unavailable, UnsupportedOperation, VenueError
from cqvx.fanout import Hub
from cqvx.types import OrderFilter
from cqvx.venues.sim.accounts import Ledger
from cqvx.venues.sim.clock import Clock, SimClock, WallClock, to_ns
from cqvx.venues.sim.config import InstrumentSpec, MarketModel, SimConfig
from cqvx.venues.sim.faults import FaultInjector
from cqvx.venues.sim.grid import GridOrder, InstrumentGrid
from cqvx.venues.sim.market import (
    CandleBuilder,
    InstrumentMarket,
    iter_all,
)
from cqvx.venues.sim.matching import MatchingEngine, SimOrder
from cqvx.venues.sim.streams import _SimStreams

__all__ = ["FundingPayment", "SimVenue"]

T = TypeVar("T")
_NS = 1_000_000_000
_CAPABILITIES = frozenset(
    {
        venue_pb2.CAPABILITY_INSTRUMENTS,
        venue_pb2.CAPABILITY_ORDER_STREAM,
        venue_pb2.CAPABILITY_SPOT_MARGIN,
        venue_pb2.CAPABILITY_POSITIONS,
        venue_pb2.CAPABILITY_POSITION_STREAM,
        venue_pb2.CAPABILITY_FUNDING_RATES,
        venue_pb2.CAPABILITY_FUNDING_STREAM,
        venue_pb2.CAPABILITY_CANDLES,
        venue_pb2.CAPABILITY_CANDLE_STREAM,
        venue_pb2.CAPABILITY_BATCH_PLACE,
        venue_pb2.CAPABILITY_BATCH_CANCEL,
        venue_pb2.CAPABILITY_CANCEL_ALL,
        venue_pb2.CAPABILITY_TICKERS,
        venue_pb2.CAPABILITY_PRICE_STREAM,
        venue_pb2.CAPABILITY_BALANCE_STREAM,
        venue_pb2.CAPABILITY_FUNDING_HISTORY,
    }
)
# The execution type of a placement's reply, by the order's status once immediate matching is done.
_REPLY_EXEC_TYPE: dict[int, execution_pb2.ExecutionType.ValueType] = {
    order_pb2.ORDER_STATUS_OPEN: execution_pb2.EXECUTION_TYPE_NEW,
    order_pb2.ORDER_STATUS_PARTIALLY_FILLED: execution_pb2.EXECUTION_TYPE_TRADE,
    order_pb2.ORDER_STATUS_FILLED: execution_pb2.EXECUTION_TYPE_TRADE,
    order_pb2.ORDER_STATUS_EXPIRED: execution_pb2.EXECUTION_TYPE_EXPIRED,
    order_pb2.ORDER_STATUS_CANCELLED: execution_pb2.EXECUTION_TYPE_CANCELLED,
}
_FUNDING_PUBLISH_NS = _NS  # funding/mark updates at most once per simulated second
_MAX_FUNDING = Decimal("0.0075")


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One settlement of the account's position: ``paid`` in ``asset`` (negative: received)."""

    at_ns: int
    symbol: str
    asset: str
    paid: Decimal
    rate: Decimal
    mark: Decimal
    quantity: Decimal  # the signed position it was paid on (long +)


class SimVenue(_SimStreams):
    """The simulated exchange (spot and linear perpetuals), a complete in-process ``VenueClient``."""

    def __init__(self, config: SimConfig, *, clock: Clock | None = None) -> None:
        if not config.instruments:
            raise InvalidRequest("SimConfig needs at least one instrument")
        self.config = config
        self.clock: Clock = clock or SimClock(config.start_time, settle_yields=config.settle_yields)
        self._venue = config.venue
        start = self.clock.now_ns()
        self.markets: dict[str, InstrumentMarket] = {}
        for spec in config.instruments:
            if spec.follows and config.instrument(spec.follows) is None:
                raise InvalidRequest(f"{spec.symbol} follows unknown instrument {spec.follows}")
            self.markets[spec.symbol] = InstrumentMarket(
                spec, spec.market or config.market, config.seed, start
            )
        self.ledger = Ledger(config.venue, config.balances)
        self._hub = Hub(config.venue, maxsize=config.stream_queue_size)
        self.engine = MatchingEngine(config, self.markets, self.ledger, self.clock.now_ns, self)
        self.faults = FaultInjector(self.clock, config.venue, config.latency, config.rate_limit)
        self.faults._on_drop = self._drop_streams
        self.faults._on_gap = self._book_gap
        intervals = set(config.candle_intervals) | {candle_pb2.CANDLE_INTERVAL_1HOUR}
        self._candles: dict[str, dict[int, CandleBuilder]] = {
            s: {i: CandleBuilder(i, config.candle_history) for i in sorted(intervals)} for s in self.markets
        }
        self._tick_ns = max(1, round(config.tick_interval * _NS))
        self._last_tick = start
        self._funding: dict[str, tuple[int, Decimal, int]] = {}  # symbol -> (last time, last rate, next)
        # symbol -> every settlement since the start: (time, rate, mark), oldest first
        self._funding_history: dict[str, list[tuple[int, Decimal, Decimal]]] = {}
        # Every funding payment the account made or received (what a venue's account log lists; the
        # wire-level fakes serve it, e.g. Bybit's transaction log): oldest first.
        self.funding_payments: list[FundingPayment] = []
        self._funding_published = 0
        self._driver: asyncio.Task[None] | None = None
        self._closed = False
        self._last_error = ""
        if config.warmup_seconds > 0:
            self._warmup(start)
        for spec in config.instruments:
            if spec.is_perpetual:
                interval = spec.funding_interval_seconds * _NS
                self._funding[spec.symbol] = (
                    start - start % interval,
                    self._funding_rate(spec),
                    start - start % interval + interval,
                )

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def default(
        cls,
        seed: int = 0,
        *,
        clock: Clock | None = None,
        speed: float = 1.0,
        **overrides: Any,
    ) -> SimVenue:
        """The paper-trading venue of ``make demo``: BTC-USDT spot and BTC-USDT-PERP near 60000.

        Tick 0.01, lot 0.00001, min notional 5, fees 0.1 % maker / 0.2 % taker (spot) and
        0.02 % / 0.05 % (perpetual), 10000 USDT + 0.1 BTC; spot margin may borrow up to 1 BTC.
        Without ``clock`` it runs on a :class:`WallClock` at ``speed``; pass a :class:`SimClock` for
        backtests.  ``overrides`` replace :class:`SimConfig` fields.
        """
        spot = InstrumentSpec(symbol="BTC-USDT", initial_price=Decimal("60000"))
        perp = InstrumentSpec(
            symbol="BTC-USDT-PERP",
            initial_price=Decimal("60000"),
            maker_fee=Decimal("0.0002"),
            taker_fee=Decimal("0.0005"),
            max_leverage=Decimal("50"),
            follows="BTC-USDT",
        )
        config = SimConfig(
            seed=seed,
            instruments=(spot, perp),
            balances={"USDT": Decimal("10000"), "BTC": Decimal("0.1")},
            margin_limits={"BTC": Decimal("1")},
            warmup_seconds=3 * 3600,
            market=MarketModel(),
        )
        if overrides:
            config = replace(config, **overrides)
        if clock is None:
            clock = WallClock(speed=speed)
        return cls(config, clock=clock)

    def _warmup(self, start: int) -> None:
        """Simulate market history before the start, so candles and tickers exist at once."""
        step = max(1, round(self.config.warmup_step_seconds * _NS))
        scale = self.config.warmup_step_seconds / self.config.tick_interval
        t = start - round(self.config.warmup_seconds * _NS)
        for m in self.markets.values():
            m.updated_ns = t
        while t < start:
            t = min(start, t + step)
            for market in iter_all(self.markets):
                leader = self.markets[market.spec.follows].mid if market.spec.follows else None
                for trade in market.step(t, self.config.warmup_step_seconds, leader, scale):
                    for builder in self._candles[market.symbol].values():
                        builder.add(trade)
        for symbol in self.markets:
            for builder in self._candles[symbol].values():
                builder.roll(start)

    # -- VenueClient basics -------------------------------------------------------------------------

    @property
    def venue(self) -> str:
        return self._venue

    def capabilities(self) -> frozenset[int]:
        return _CAPABILITIES

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def start(self) -> None:
        """Start the wall-clock driver (no-op with a SimClock, which is driven explicitly)."""
        if self.clock.simulated or self._driver is not None or self._closed:
            return
        self._driver = asyncio.get_running_loop().create_task(self._drive(), name="sim-venue-driver")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.faults.close()
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
            self._driver = None
        await self._hub.aclose()

    async def _drive(self) -> None:
        interval = self.config.tick_interval
        while not self._closed:
            await self.clock.sleep(interval)
            self._tick(self.clock.now_ns())

    # -- simulation driver --------------------------------------------------------------------------

    async def step(self) -> None:
        """Advance one market tick (SimClock: by ``tick_interval``; WallClock: at the current time)."""
        if isinstance(self.clock, SimClock):
            target = self._last_tick + self._tick_ns
            await self.clock.advance_to(target)
            self._tick(target)
            await self.clock.settle()
        else:
            self._tick(self.clock.now_ns())
            await asyncio.sleep(0)

    async def run_until(self, until: datetime | int) -> None:
        """Advance simulated time to ``until`` (datetime or epoch ns), tick by tick; SimClock only."""
        clock = self.clock
        if not isinstance(clock, SimClock):
            raise UnsupportedOperation("run_until needs a SimClock; a WallClock moves by itself")
        target = until if isinstance(until, int) else to_ns(until)
        while self._last_tick + self._tick_ns <= target:
            await self.step()
        await clock.advance_to(target)
        await clock.settle()

    async def run_for(self, seconds: float) -> None:
        await self.run_until(self.clock.now_ns() + round(seconds * _NS))

    async def jump(self, seconds: float) -> None:
        """Advance simulated time by ``seconds`` in ONE tick (SimClock only): what falls due meanwhile
        (a funding settlement, an expiry) happens once, at the end, and the market model takes one large
        step.  For tests that need, say, a settlement without simulating an hour tick by tick."""
        clock = self.clock
        if not isinstance(clock, SimClock):
            raise UnsupportedOperation("jump needs a SimClock; a WallClock moves by itself")
        target = clock.now_ns() + round(seconds * _NS)
        await clock.advance_to(target)
        self._tick(target)
        await clock.settle()

    def _tick(self, now: int) -> None:
        dt = (now - self._last_tick) / _NS
        if dt <= 0:
            return
        self._last_tick = now
        hub = self._hub
        scale = dt / self.config.tick_interval
        for market in iter_all(self.markets):
            symbol = market.symbol
            leader = self.markets[market.spec.follows].mid if market.spec.follows else None
            self._roll_candles(symbol, now)
            for trade in market.step(now, dt, leader, scale):
                self.public_trade(trade)
                self.engine.on_public_trade(trade)
            if market.spec.is_perpetual:
                self.engine.liquidate_if_due(symbol)
            for interval, builder in self._candles[symbol].items():
                if builder.current is not None and hub.has(("candles", symbol, interval)):
                    hub.publish(
                        ("candles", symbol, interval), self._candle(symbol, interval, builder.current)
                    )
            self._publish_market(symbol)
        self.engine.expire_due(now)
        self._settle_funding(now)
        self._flush()

    # -- funding ------------------------------------------------------------------------------------

    def _funding_rate(self, spec: InstrumentSpec) -> Decimal:
        """Base rate plus the premium of the perpetual over what it follows, clamped like venues do."""
        rate = spec.base_funding_rate
        if spec.follows:
            leader = self.markets[spec.follows].mid
            premium = self.markets[spec.symbol].mid / leader - 1
            rate += premium / 8
        rate = max(-_MAX_FUNDING, min(_MAX_FUNDING, rate))
        return rate.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN)  # never the ambient context's

    def _settle_funding(self, now: int) -> None:
        publish = self._hub.has(("funding",)) and now - self._funding_published >= _FUNDING_PUBLISH_NS
        for symbol, (_, _, nxt) in list(self._funding.items()):
            spec = self.engine.specs[symbol]
            if now >= nxt:
                settled = self._funding_rate(spec)
                mark = self.markets[symbol].mid
                held = self.engine.ledger.positions.get(symbol)
                paid = self.engine.apply_funding(symbol, settled, mark)
                if paid and held is not None:
                    self.funding_payments.append(
                        FundingPayment(nxt, symbol, held.settle_asset, paid, settled, mark, held.quantity)
                    )
                self._funding_history.setdefault(symbol, []).append((nxt, settled, self.markets[symbol].mid))
                interval = spec.funding_interval_seconds * _NS
                self._funding[symbol] = (nxt, settled, nxt + interval * max(1, (now - nxt) // interval + 1))
                publish = self._hub.has(("funding",))
            if publish:
                self._hub.publish(("funding",), self._funding_msg(symbol))
        if publish:
            self._funding_published = now

    # -- request plumbing ---------------------------------------------------------------------------

    def _place_one(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        injected = self.faults.take_rejection()
        if injected is not None:
            raise injected
        try:
            placed = self.engine.place(order)
        finally:
            self._flush()
        return self._final_report(placed)

    def _final_report(self, order: SimOrder) -> execution_pb2.ExecutionReport:
        """The reply to a placement: the order's state once immediate matching is done."""
        exec_type = _REPLY_EXEC_TYPE.get(order.status, execution_pb2.EXECUTION_TYPE_STATUS)
        return self.engine.report(order, exec_type)

    def _cancel_one(self, order_id: str | None, client_order_id: str | None) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        try:
            order = self.engine.cancel(order_id, client_order_id)
        finally:
            self._flush()
        lost = self.faults.take_ambiguous("cancel")
        if lost is not None:
            raise lost
        return self.engine.to_proto(order)

    # -- orders -------------------------------------------------------------------------------------

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        await self._enter(1)
        return await self.faults.placement(lambda: self._place_one(order))

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        await self._enter(1)
        return self._cancel_one(order_id, client_order_id)

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        check_order_ref(order_id, client_order_id)
        await self._enter()
        return self.engine.to_proto(self.engine.find(order_id, client_order_id))

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        await self._enter()
        flt = filter or OrderFilter()
        if flt.symbol:
            self._market(flt.symbol)
        if flt.open_only:
            candidates = self.engine.open_orders(flt.symbol)
        else:
            candidates = sorted(self.engine.orders.values(), key=lambda o: o.arrival)
        out = [p for p in (self.engine.to_proto(o) for o in candidates) if flt.matches(p)]
        if flt.limit is not None:
            out = out[: max(0, flt.limit)]
        return out

    async def place_orders(
        self, orders: Sequence[order_pb2.Order]
    ) -> list[execution_pb2.ExecutionReport | VenueError]:
        await self._enter(max(1, len(orders)))

        async def one(order: order_pb2.Order) -> execution_pb2.ExecutionReport | VenueError:
            try:
                return await self.faults.placement(lambda: self._place_one(order))
            except VenueError as exc:
                return exc

        # Items act in order; a slow-acknowledged item delays the reply, not the items after it.
        return list(await asyncio.gather(*(one(o) for o in orders)))

    async def cancel_orders(self, refs: Sequence[order_pb2.OrderRef]) -> list[order_pb2.Order | VenueError]:
        await self._enter(max(1, len(refs)))
        results: list[order_pb2.Order | VenueError] = []
        for ref in refs:
            which = ref.WhichOneof("id")
            try:
                results.append(
                    self._cancel_one(
                        ref.order_id if which == "order_id" else None,
                        ref.client_order_id if which == "client_order_id" else None,
                    )
                )
            except VenueError as exc:
                results.append(exc)
        return results

    async def cancel_all_orders(
        self, symbol: str | None = None, side: int = order_pb2.ORDER_SIDE_UNSPECIFIED
    ) -> list[order_pb2.Order]:
        await self._enter(1)
        if symbol:
            self._market(symbol)
        out: list[order_pb2.Order] = []
        try:
            for order in self.engine.open_orders(symbol):
                if side and order.side != side:
                    continue
                out.append(self.engine.to_proto(self.engine.cancel(order.order_id, None)))
        finally:
            self._flush()
        return out

    def inject_trade(
        self, symbol: str, price: Decimal, quantity: Decimal, side: order_pb2.OrderSide.ValueType
    ) -> None:
        """Print a public trade now (aggressor ``side``): scenario tests and external trade feeds."""
        market = self._market(symbol)
        trade = market.new_trade(self.clock.now_ns(), price, quantity, side)
        self.public_trade(trade)
        self.engine.on_public_trade(trade)
        self._flush()

    def match_trades(
        self, symbol: str, events: Iterable[tuple[int, int, order_pb2.OrderSide.ValueType]]
    ) -> None:
        """Backtest path: a batch of public trades on the integer grid against our resting orders.

        See :meth:`MatchingEngine.match_trades`: ``(price in ticks, quantity in lots, aggressor
        side)``; fills go out as execution reports; the trades themselves are not published.
        """
        try:
            self.engine.match_trades(symbol, events)
        finally:
            self._flush()

    # -- the integer-grid path (backtests) ----------------------------------------------------------

    def grid(self, symbol: str) -> InstrumentGrid:
        """``symbol``'s integer grid: exact conversions price <-> ticks, quantity <-> lots, limits."""
        grid = self.engine.grids.get(symbol)
        if grid is None:
            raise InvalidRequest(f"unknown symbol {symbol!r}", venue=self._venue)
        return grid

    def place_grid(self, order: GridOrder) -> SimOrder:
        """Backtest path: place an order given in ticks and lots (:mod:`cqvx.venues.sim.grid`).

        The same admission (every rule of :meth:`place_order`, nothing rounded), funds hold,
        matching and execution reports as :meth:`place_order`; the reply is the order record, and
        ``sim.engine.report(order, ...)`` / ``sim.engine.to_proto(order)`` build a protobuf when one
        is wanted.  Injected faults, latency and the emulated rate limit model the API and do not
        apply here.  Refusals raise the same taxonomy errors.
        """
        if self._closed:
            raise Unavailable("client closed", venue=self._venue)
        try:
            return self.engine.place_grid(order)
        finally:
            self._flush()

    def cancel_grid(self, order_id: str | None = None, *, client_order_id: str | None = None) -> SimOrder:
        """Backtest path: cancel an open order (by exactly one id); the reply is the order record."""
        if self._closed:
            raise Unavailable("client closed", venue=self._venue)
        if (not order_id) == (not client_order_id):
            check_order_ref(order_id, client_order_id)  # raises: not exactly one id
        try:
            return self.engine.cancel(order_id, client_order_id)
        finally:
            self._flush()

    def set_price(self, symbol: str, price: Decimal, *, publish: bool = True) -> None:
        """Re-centre the synthetic book on ``price`` without printing trades."""
        self._market(symbol).set_mid(price)
        if publish:
            self._publish_market(symbol)

    def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Account leverage of a perpetual (only while it has no position)."""
        self.engine.set_leverage(symbol, leverage)

    # -- account ------------------------------------------------------------------------------------

    async def get_balances(self) -> list[balance_pb2.Balance]:
        await self._enter()
        return [self._balance(a) for a in sorted(self.ledger.balances)]

    async def get_positions(self, symbols: Sequence[str] | None = None) -> list[position_pb2.Position]:
        await self._enter()
        for s in symbols or ():
            self._market(s)
        wanted = set(symbols) if symbols else None
        return [
            self._position(s)
            for s, p in sorted(self.ledger.positions.items())
            if p.quantity and (wanted is None or s in wanted)
        ]
