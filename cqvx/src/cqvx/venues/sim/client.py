"""``SimVenue``: the simulated venue behind the full ``VenueClient`` interface.

Driving time.  With a :class:`SimClock` nothing moves by itself: ``await sim.step()`` advances one
market tick, ``await sim.run_until(t)`` / ``run_for(seconds)`` advance as fast as possible, waking
tasks that sleep on the clock in deadline order.  With a :class:`WallClock` a background task (started
by ``async with`` or :meth:`SimVenue.start`) ticks every ``tick_interval / speed`` real seconds.

Streams.  Every ``subscribe_*`` registers at once (no message is missed between the call and the
first ``__anext__``) and returns a :class:`~cqvx.types.Stream`; every subscriber gets every message.
Queues are bounded: market data streams drop their oldest message when full (a slow reader sees the
latest state), account streams (executions, balances, positions) end with
:class:`~cqvx.errors.Unavailable` instead, because a silently lost fill is worse than a reconnect.
The book and price streams start with the current snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2, execution_pb2, order_pb2, venue_pb2
from cqvx.client import check_order_ref
from cqvx.errors import InvalidRequest, Unavailable, UnsupportedOperation, VenueError
from cqvx.num import ZERO, dec_str
from cqvx.types import OrderFilter
from cqvx.venues.sim.accounts import Ledger
from cqvx.venues.sim.clock import Clock, SimClock, WallClock, to_ns
from cqvx.venues.sim.config import InstrumentSpec, MarketModel, SimConfig
from cqvx.venues.sim.faults import FaultInjector
from cqvx.venues.sim.market import (
    CandleBar,
    CandleBuilder,
    InstrumentMarket,
    PublicTrade,
    candle_seconds,
    iter_all,
)
from cqvx.venues.sim.matching import BUY, SELL, MatchingEngine, SimOrder, timestamp

__all__ = ["SimVenue"]

T = TypeVar("T")
_NS = 1_000_000_000
_CAPABILITIES = frozenset(
    {
        venue_pb2.CAPABILITY_INSTRUMENTS,
        venue_pb2.CAPABILITY_ORDER_STREAM,
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
    }
)
_FUNDING_PUBLISH_NS = _NS  # funding/mark updates at most once per simulated second
_MAX_FUNDING = Decimal("0.0075")


class _Subscription(Generic[T]):
    """One subscriber's bounded queue; satisfies :class:`cqvx.types.Stream`."""

    def __init__(self, hub: _Hub, topics: list[tuple[Any, ...]], maxsize: int, lossy: bool) -> None:
        self._hub = hub
        self.topics = topics
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._lossy = lossy
        self._error: VenueError | None = None
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self.accept: Callable[[T], bool] | None = None

    def push(self, msg: T) -> None:
        if self._closed or self._error is not None:
            return
        if self.accept is not None and not self.accept(msg):
            return
        if len(self._items) >= self._maxsize:
            if self._lossy:
                self._items.popleft()
            else:
                self.fail(Unavailable("stream overflow: the consumer fell behind", retry_safe=True))
                return
        self._items.append(msg)
        self._wake()

    def lose_pending(self) -> None:
        """Messages in transit when the connection dropped are gone."""
        self._items.clear()

    def fail(self, error: VenueError) -> None:
        if self._closed or self._error is not None:
            return
        self._error = error
        self._hub.remove(self)
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            if self._items:
                return self._items.popleft()
            if self._error is not None:
                err, self._error = self._error, None
                self._closed = True
                raise err
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        self._closed = True
        self._items.clear()
        self._hub.remove(self)
        self._wake()


class _Hub:
    """Topic -> subscriptions."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.topics: dict[tuple[Any, ...], list[_Subscription[Any]]] = {}

    def add(self, topics: list[tuple[Any, ...]], lossy: bool) -> _Subscription[Any]:
        sub: _Subscription[Any] = _Subscription(self, topics, self.maxsize, lossy)
        for t in topics:
            self.topics.setdefault(t, []).append(sub)
        return sub

    def remove(self, sub: _Subscription[Any]) -> None:
        for t in sub.topics:
            subs = self.topics.get(t)
            if subs and sub in subs:
                subs.remove(sub)
                if not subs:
                    del self.topics[t]

    def has(self, topic: tuple[Any, ...]) -> bool:
        return topic in self.topics

    def publish(self, topic: tuple[Any, ...], msg: Any) -> None:
        subs = self.topics.get(topic)
        if subs:
            for sub in list(subs):
                sub.push(msg)

    def fail_all(self, error: VenueError) -> None:
        for subs in list(self.topics.values()):
            for sub in list(subs):
                sub.fail(error)

    def names(self) -> list[str]:
        return sorted(":".join(str(p) for p in t) for t in self.topics)


class SimVenue:
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
        self._hub = _Hub(config.stream_queue_size)
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
        0.02 % / 0.05 % (perpetual), 10000 USDT + 0.1 BTC.  Without ``clock`` it runs on a
        :class:`WallClock` at ``speed``; pass a :class:`SimClock` for backtests.  ``overrides`` replace
        :class:`SimConfig` fields.
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
        for subs in list(self._hub.topics.values()):
            for sub in list(subs):
                await sub.aclose()

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

    # -- event sink (called by the matching engine) -------------------------------------------------

    def wants_reports(self) -> bool:
        return self._hub.has(("exec",))

    def report(self, report: execution_pb2.ExecutionReport) -> None:
        self._hub.publish(("exec",), report)

    def _roll_candles(self, symbol: str, now: int) -> None:
        """Close the bars whose period ended; closed bars go out on the candle stream once."""
        for interval, builder in self._candles[symbol].items():
            cur = builder.current
            if cur is None or cur.close_ns > now:
                continue
            topic = ("candles", symbol, interval)
            for bar in builder.roll(now):
                if self._hub.has(topic):
                    self._hub.publish(topic, self._candle(symbol, interval, bar))

    def public_trade(self, trade: PublicTrade) -> None:
        self._roll_candles(trade.symbol, trade.ts_ns)
        for builder in self._candles[trade.symbol].values():
            builder.add(trade)
        topic = ("trades", trade.symbol)
        if self._hub.has(topic):
            self._hub.publish(topic, self._trade(trade))

    def _flush(self) -> None:
        """Publish balances and positions changed by the last operation."""
        ledger = self.ledger
        if ledger.changed_assets:
            if self._hub.has(("balances",)):
                for asset in sorted(ledger.changed_assets):
                    self._hub.publish(("balances",), self._balance(asset))
            ledger.changed_assets.clear()
        changed = self.engine.changed_positions
        if changed:
            if self._hub.has(("positions",)):
                for symbol in sorted(changed):
                    self._hub.publish(("positions",), self._position(symbol))
            changed.clear()

    def _publish_market(self, symbol: str) -> None:
        hub = self._hub
        if hub.has(("prices", symbol)):
            hub.publish(("prices", symbol), self._price(symbol))
        for topic in [t for t in hub.topics if t[0] == "book" and t[1] == symbol]:
            hub.publish(topic, self._book(symbol, topic[2]))

    def _book_gap(self, symbol: str, missing: int) -> None:
        self._market(symbol).sequence += missing
        self._publish_market(symbol)

    def _drop_streams(self, error: VenueError, resume: bool) -> None:
        if not resume:
            self._hub.fail_all(error)
            return
        for subs in list(self._hub.topics.values()):
            for sub in subs:
                sub.lose_pending()
        for symbol in self.markets:
            self._publish_market(symbol)

    # -- funding ------------------------------------------------------------------------------------

    def _funding_rate(self, spec: InstrumentSpec) -> Decimal:
        """Base rate plus the premium of the perpetual over what it follows, clamped like venues do."""
        rate = spec.base_funding_rate
        if spec.follows:
            leader = self.markets[spec.follows].mid
            premium = self.markets[spec.symbol].mid / leader - 1
            rate += premium / 8
        rate = max(-_MAX_FUNDING, min(_MAX_FUNDING, rate))
        return rate.quantize(Decimal("0.00000001"))

    def _settle_funding(self, now: int) -> None:
        publish = self._hub.has(("funding",)) and now - self._funding_published >= _FUNDING_PUBLISH_NS
        for symbol, (_, _, nxt) in list(self._funding.items()):
            spec = self.engine.specs[symbol]
            if now >= nxt:
                settled = self._funding_rate(spec)
                self.engine.apply_funding(symbol, settled, self.markets[symbol].mid)
                interval = spec.funding_interval_seconds * _NS
                self._funding[symbol] = (nxt, settled, nxt + interval * max(1, (now - nxt) // interval + 1))
                publish = self._hub.has(("funding",))
            if publish:
                self._hub.publish(("funding",), self._funding_msg(symbol))
        if publish:
            self._funding_published = now

    # -- request plumbing ---------------------------------------------------------------------------

    async def _enter(self, weight: float = 0.0) -> None:
        if self._closed:
            raise Unavailable("client closed", venue=self._venue)
        faults = self.faults
        if faults.latency > 0:
            await self.clock.sleep(faults.latency)
        faults.check_available()
        faults.check_forced_rate_limit()
        if weight:
            faults.check_rate(weight)

    def _market(self, symbol: str) -> InstrumentMarket:
        market = self.markets.get(symbol)
        if market is None:
            raise InvalidRequest(f"unknown symbol {symbol!r}", venue=self._venue)
        return market

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
        exec_type = {
            order_pb2.ORDER_STATUS_OPEN: execution_pb2.EXECUTION_TYPE_NEW,
            order_pb2.ORDER_STATUS_PARTIALLY_FILLED: execution_pb2.EXECUTION_TYPE_TRADE,
            order_pb2.ORDER_STATUS_FILLED: execution_pb2.EXECUTION_TYPE_TRADE,
            order_pb2.ORDER_STATUS_EXPIRED: execution_pb2.EXECUTION_TYPE_EXPIRED,
            order_pb2.ORDER_STATUS_CANCELLED: execution_pb2.EXECUTION_TYPE_CANCELLED,
        }.get(order.status, execution_pb2.EXECUTION_TYPE_STATUS)
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

    def set_price(self, symbol: str, price: Decimal, *, publish: bool = True) -> None:
        """Re-centre the synthetic book on ``price`` without printing trades."""
        self._market(symbol).set_mid(price)
        if publish:
            self._publish_market(symbol)

    def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        """Account leverage of a perpetual (only while it has no position)."""
        self.engine.set_leverage(symbol, leverage)

    # -- account ------------------------------------------------------------------------------------

    def _balance(self, asset: str) -> balance_pb2.Balance:
        bal = self.ledger.balance(asset)
        msg = balance_pb2.Balance(
            venue=self._venue,
            asset=asset,
            balance_type=balance_pb2.BALANCE_TYPE_SPOT,
            total=dec_str(bal.total),
            available=dec_str(bal.available),
            locked=dec_str(bal.locked),
        )
        msg.updated_at.CopyFrom(timestamp(self.clock.now_ns()))
        return msg

    async def get_balances(self) -> list[balance_pb2.Balance]:
        await self._enter()
        return [self._balance(a) for a in sorted(self.ledger.balances)]

    def _position(self, symbol: str) -> position_pb2.Position:
        pos = self.engine.position(symbol)
        mark = self.markets[symbol].mid
        q = pos.quantity
        side = (
            position_pb2.POSITION_SIDE_LONG
            if q > 0
            else position_pb2.POSITION_SIDE_SHORT
            if q < 0
            else position_pb2.POSITION_SIDE_FLAT
        )
        liq = pos.liquidation_price()
        msg = position_pb2.Position(
            venue=self._venue,
            symbol=symbol,
            side=side,
            quantity=dec_str(abs(q)),
            entry_price=dec_str(pos.entry_price) if q else "",
            mark_price=dec_str(mark),
            liquidation_price=dec_str(liq.quantize(self.engine.specs[symbol].tick_size)) if liq else "",
            leverage=dec_str(pos.leverage),
            unrealized_pnl=dec_str(pos.unrealized(mark)),
            realized_pnl=dec_str(pos.realized_pnl),
            margin=dec_str(pos.margin),
            margin_mode=position_pb2.MARGIN_MODE_ISOLATED,
            maintenance_margin=dec_str(pos.maintenance(mark)),
            settle_asset=pos.settle_asset,
        )
        msg.updated_at.CopyFrom(timestamp(pos.updated_ns or self.clock.now_ns()))
        return msg

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

    # -- market data --------------------------------------------------------------------------------

    async def get_instruments(self, symbols: Sequence[str] | None = None) -> list[instrument_pb2.Instrument]:
        await self._enter()
        out = []
        for spec in self.config.instruments:
            if symbols and spec.symbol not in symbols:
                continue
            out.append(self._instrument(spec))
        if symbols:
            for s in symbols:
                self._market(s)
        return out

    def _instrument(self, spec: InstrumentSpec) -> instrument_pb2.Instrument:
        perp = spec.is_perpetual
        return instrument_pb2.Instrument(
            symbol=spec.symbol,
            venue=self._venue,
            venue_symbol=spec.symbol,
            instrument_type=(
                instrument_pb2.INSTRUMENT_TYPE_PERPETUAL if perp else instrument_pb2.INSTRUMENT_TYPE_SPOT
            ),
            base_asset=spec.base_asset,
            quote_asset=spec.quote_asset,
            settle_asset=spec.quote_asset if perp else "",
            tick_size=dec_str(spec.tick_size),
            lot_size=dec_str(spec.lot_size),
            min_quantity=dec_str(spec.min_quantity),
            max_quantity=dec_str(spec.max_quantity),
            min_notional=dec_str(spec.min_notional),
            price_precision=max(0, -spec.tick_size.normalize().as_tuple().exponent),  # type: ignore[operator]
            quantity_precision=max(0, -spec.lot_size.normalize().as_tuple().exponent),  # type: ignore[operator]
            contract_size="1",
            maker_fee=dec_str(spec.maker_fee),
            taker_fee=dec_str(spec.taker_fee),
            funding_interval_seconds=spec.funding_interval_seconds if perp else 0,
            status=instrument_pb2.INSTRUMENT_STATUS_TRADING,
            max_leverage=dec_str(spec.max_leverage) if perp else "",
        )

    def _book(self, symbol: str, depth: int) -> orderbook_pb2.OrderBook:
        market = self._market(symbol)
        bids, asks = self.engine.resting(symbol)
        msg = orderbook_pb2.OrderBook(venue=self._venue, symbol=symbol, sequence=market.sequence)
        msg.timestamp.CopyFrom(timestamp(market.updated_ns))
        for side, own, out, best_first in (
            (BUY, bids, msg.bids, True),
            (SELL, asks, msg.asks, False),
        ):
            levels: dict[Decimal, list[Any]] = {p: [q, 0] for p, q in market.levels(side, depth)}
            for price, orders in own.levels.items():
                entry = levels.setdefault(price, [ZERO, 0])
                entry[0] += sum((o.remaining for o in orders), ZERO)
                entry[1] += len(orders)
            for price in sorted(levels, reverse=best_first)[:depth]:
                qty, count = levels[price]
                out.add(price=dec_str(price), quantity=dec_str(qty), order_count=count)
        return msg

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook:
        await self._enter()
        return self._book(symbol, depth)

    def _price(self, symbol: str) -> price_pb2.Price:
        m = self.markets[symbol]
        bid = m.levels(BUY, 1)
        ask = m.levels(SELL, 1)
        msg = price_pb2.Price(
            venue=self._venue,
            symbol=symbol,
            last=dec_str(m.last),
            bid=dec_str(bid[0][0]) if bid else "",
            ask=dec_str(ask[0][0]) if ask else "",
            bid_size=dec_str(bid[0][1]) if bid else "",
            ask_size=dec_str(ask[0][1]) if ask else "",
        )
        if m.spec.is_perpetual:
            msg.mark = dec_str(m.mid)
            msg.index = dec_str(self.markets[m.spec.follows].mid if m.spec.follows else m.mid)
        msg.timestamp.CopyFrom(timestamp(m.updated_ns))
        return msg

    async def get_latest_price(self, symbol: str) -> price_pb2.Price:
        await self._enter()
        self._market(symbol)
        return self._price(symbol)

    async def get_tickers(self, symbols: Sequence[str] | None = None) -> list[price_pb2.Ticker]:
        await self._enter()
        out = []
        now = self.clock.now_ns()
        for symbol in symbols or list(self.markets):
            m = self._market(symbol)
            bars = self._candles[symbol][candle_pb2.CANDLE_INTERVAL_1HOUR].bars(
                now - 86_400 * _NS, None, None
            )
            price = self._price(symbol)
            msg = price_pb2.Ticker(
                venue=self._venue, symbol=symbol, last=price.last, bid=price.bid, ask=price.ask
            )
            if bars:
                msg.open_24h = dec_str(bars[0].open)
                msg.high_24h = dec_str(max(b.high for b in bars))
                msg.low_24h = dec_str(min(b.low for b in bars))
                msg.volume_24h = dec_str(sum((b.volume for b in bars), ZERO))
                msg.quote_volume_24h = dec_str(sum((b.quote_volume for b in bars), ZERO))
            msg.timestamp.CopyFrom(timestamp(m.updated_ns))
            out.append(msg)
        return out

    def _funding_msg(self, symbol: str) -> funding_pb2.FundingRate:
        spec = self.engine.specs[symbol]
        last, rate, nxt = self._funding[symbol]
        m = self.markets[symbol]
        msg = funding_pb2.FundingRate(
            venue=self._venue,
            symbol=symbol,
            rate=dec_str(rate),
            predicted_rate=dec_str(self._funding_rate(spec)),
            interval_seconds=spec.funding_interval_seconds,
            mark_price=dec_str(m.mid),
            index_price=dec_str(self.markets[spec.follows].mid if spec.follows else m.mid),
        )
        msg.funding_time.CopyFrom(timestamp(last))
        msg.next_funding_time.CopyFrom(timestamp(nxt))
        msg.timestamp.CopyFrom(timestamp(self.clock.now_ns()))
        return msg

    def _perp(self, symbol: str) -> None:
        if not self._market(symbol).spec.is_perpetual:
            raise InvalidRequest(f"{symbol} is not a perpetual: it has no funding rate", venue=self._venue)

    async def get_funding_rate(self, symbol: str) -> funding_pb2.FundingRate:
        await self._enter()
        self._perp(symbol)
        return self._funding_msg(symbol)

    async def get_funding_rates(self, symbols: Sequence[str] | None = None) -> list[funding_pb2.FundingRate]:
        await self._enter()
        for s in symbols or ():
            self._perp(s)
        return [self._funding_msg(s) for s in (symbols or sorted(self._funding))]

    def _trade(self, t: PublicTrade) -> trade_pb2.Trade:
        msg = trade_pb2.Trade(
            trade_id=t.trade_id,
            venue=self._venue,
            symbol=t.symbol,
            price=dec_str(t.price),
            quantity=dec_str(t.quantity),
            side=trade_pb2.TRADE_SIDE_BUY if t.side == BUY else trade_pb2.TRADE_SIDE_SELL,
            is_liquidation=t.is_liquidation,
        )
        msg.timestamp.CopyFrom(timestamp(t.ts_ns))
        return msg

    def _candle(self, symbol: str, interval: int, bar: CandleBar) -> candle_pb2.Candle:
        msg = candle_pb2.Candle(
            venue=self._venue,
            symbol=symbol,
            interval=cast(candle_pb2.CandleInterval.ValueType, interval),
            open=dec_str(bar.open),
            high=dec_str(bar.high),
            low=dec_str(bar.low),
            close=dec_str(bar.close),
            volume=dec_str(bar.volume),
            quote_volume=dec_str(bar.quote_volume),
            trade_count=bar.trades,
            is_closed=bar.closed,
        )
        msg.open_time.CopyFrom(timestamp(bar.open_ns))
        msg.close_time.CopyFrom(timestamp(bar.close_ns))
        return msg

    def _builder(self, symbol: str, interval: int) -> CandleBuilder:
        builders = self._candles[symbol]
        builder = builders.get(interval)
        if builder is None:
            builder = builders[interval] = CandleBuilder(interval, self.config.candle_history)
        return builder

    async def get_candles(
        self,
        symbol: str,
        interval: int,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[candle_pb2.Candle]:
        await self._enter()
        self._market(symbol)
        width = candle_seconds(interval)
        start_ns = to_ns(start) if start else None
        end_ns = to_ns(end) if end else None
        builders = self._candles[symbol]
        if interval in builders:
            bars = builders[interval].bars(start_ns, end_ns, limit)
        else:
            bars = self._aggregate(symbol, interval, width, start_ns=start_ns, end_ns=end_ns, limit=limit)
        return [self._candle(symbol, interval, b) for b in bars]

    def _aggregate(
        self,
        symbol: str,
        interval: int,
        width: int,
        *,
        start_ns: int | None,
        end_ns: int | None,
        limit: int | None,
    ) -> list[CandleBar]:
        """Bars of an untracked width built from the widest tracked width that divides it."""
        sources = [
            b
            for i, b in self._candles[symbol].items()
            if width % candle_seconds(i) == 0 and candle_seconds(i) < width
        ]
        if not sources:
            raise InvalidRequest(
                f"candle interval {interval} is not tracked; add it to SimConfig.candle_intervals"
            )
        src = max(sources, key=lambda b: b.width_ns)
        width_ns = width * _NS
        out: list[CandleBar] = []
        for bar in src.bars(None, None, None):
            open_ns = bar.open_ns - bar.open_ns % width_ns
            if out and out[-1].open_ns == open_ns:
                agg = out[-1]
                agg.high, agg.low, agg.close = max(agg.high, bar.high), min(agg.low, bar.low), bar.close
                agg.volume += bar.volume
                agg.quote_volume += bar.quote_volume
                agg.trades += bar.trades
                agg.closed = bar.closed and bar.close_ns == agg.close_ns
            else:
                out.append(
                    CandleBar(
                        open_ns,
                        open_ns + width_ns,
                        bar.open,
                        bar.high,
                        bar.low,
                        bar.close,
                        bar.volume,
                        bar.quote_volume,
                        bar.trades,
                        bar.closed and bar.close_ns == open_ns + width_ns,
                    )
                )
        if start_ns is not None:
            out = [b for b in out if b.open_ns >= start_ns]
        if end_ns is not None:
            out = [b for b in out if b.open_ns < end_ns]
        if limit is not None:
            out = out[-limit:] if limit > 0 else []
        return out

    async def health(self) -> venue_pb2.VenueHealth:
        reachable = not self.faults.unavailable and not self._closed
        msg = venue_pb2.VenueHealth(
            venue=self._venue,
            reachable=reachable,
            latency_ms=self.faults.latency * 1000,
            last_error="" if reachable else "unavailable",
        )
        for name in self._hub.names():
            msg.streams.add(name=name, connected=True)
        msg.checked_at.CopyFrom(timestamp(self.clock.now_ns()))
        return msg

    # -- streams ------------------------------------------------------------------------------------

    def _subscribe(
        self, topics: list[tuple[Any, ...]], lossy: bool, initial: Sequence[Any] = ()
    ) -> _Subscription[Any]:
        sub = self._hub.add(topics, lossy)
        if self._closed:
            sub.fail(Unavailable("client closed", venue=self._venue))
        elif self.faults.unavailable:
            sub.fail(Unavailable("venue unavailable (injected)", venue=self._venue))
        else:
            for msg in initial:
                sub.push(msg)
        return sub

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> _Subscription[orderbook_pb2.OrderBook]:
        self._market(symbol)
        if depth <= 0:
            raise InvalidRequest("depth must be positive", venue=self._venue)
        return self._subscribe([("book", symbol, depth)], lossy=True, initial=[self._book(symbol, depth)])

    def subscribe_trades(self, symbol: str) -> _Subscription[trade_pb2.Trade]:
        self._market(symbol)
        return self._subscribe([("trades", symbol)], lossy=True)

    def subscribe_prices(self, symbols: Sequence[str]) -> _Subscription[price_pb2.Price]:
        for s in symbols:
            self._market(s)
        return self._subscribe(
            [("prices", s) for s in symbols], lossy=True, initial=[self._price(s) for s in symbols]
        )

    def subscribe_executions(
        self, symbols: Sequence[str] | None = None
    ) -> _Subscription[execution_pb2.ExecutionReport]:
        for s in symbols or ():
            self._market(s)
        sub: _Subscription[execution_pb2.ExecutionReport] = self._subscribe([("exec",)], lossy=False)
        if symbols:
            wanted = frozenset(symbols)
            sub.accept = lambda r: r.symbol in wanted
        return sub

    def subscribe_balances(self) -> _Subscription[balance_pb2.Balance]:
        return self._subscribe([("balances",)], lossy=False)

    def subscribe_positions(
        self, symbols: Sequence[str] | None = None
    ) -> _Subscription[position_pb2.Position]:
        for s in symbols or ():
            self._market(s)
        sub: _Subscription[position_pb2.Position] = self._subscribe([("positions",)], lossy=False)
        if symbols:
            wanted = frozenset(symbols)
            sub.accept = lambda p: p.symbol in wanted
        return sub

    def subscribe_funding_rates(
        self, symbols: Sequence[str] | None = None
    ) -> _Subscription[funding_pb2.FundingRate]:
        for s in symbols or ():
            self._perp(s)
        sub: _Subscription[funding_pb2.FundingRate] = self._subscribe([("funding",)], lossy=True)
        if symbols:
            wanted = frozenset(symbols)
            sub.accept = lambda f: f.symbol in wanted
        return sub

    def subscribe_candles(self, symbol: str, interval: int) -> _Subscription[candle_pb2.Candle]:
        self._market(symbol)
        candle_seconds(interval)
        self._builder(symbol, interval)
        return self._subscribe([("candles", symbol, interval)], lossy=True)
