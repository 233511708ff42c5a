"""The simulator's read side: instruments, books, prices, tickers, funding, candles, and the cqc
messages built from the simulated state (shared by the queries and the streams).

A mixin of :class:`~cqvx.venues.sim.client.SimVenue`; the attributes below are set by its constructor.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, cast

from cqc.markets.v1 import candle_pb2, funding_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import balance_pb2
from cqvx.errors import InvalidRequest, Unavailable
from cqvx.num import ZERO, dec_str
from cqvx.venues.sim.accounts import Ledger
from cqvx.venues.sim.clock import Clock, to_ns
from cqvx.venues.sim.config import InstrumentSpec, SimConfig
from cqvx.venues.sim.faults import FaultInjector
from cqvx.venues.sim.market import CandleBar, CandleBuilder, InstrumentMarket, PublicTrade, candle_seconds
from cqvx.venues.sim.matching import BUY, SELL, MatchingEngine, timestamp

_NS = 1_000_000_000


class _SimMarketData:
    config: SimConfig
    clock: Clock
    markets: dict[str, InstrumentMarket]
    ledger: Ledger
    engine: MatchingEngine
    faults: FaultInjector
    _venue: str
    _candles: dict[str, dict[int, CandleBuilder]]
    _funding: dict[str, tuple[int, Decimal, int]]
    _funding_history: dict[str, list[tuple[int, Decimal, Decimal]]]
    _closed: bool

    def _funding_rate(self, spec: InstrumentSpec) -> Decimal:
        raise NotImplementedError

    # -- request plumbing ---------------------------------------------------------------------------

    async def _enter(self, weight: float = 0.0) -> None:
        if self._closed:
            raise Unavailable("client closed", venue=self._venue)
        faults = self.faults
        if faults.latency > 0:
            await self.clock.sleep(faults.latency)
        faults.admit(weight)

    def _market(self, symbol: str) -> InstrumentMarket:
        market = self.markets.get(symbol)
        if market is None:
            raise InvalidRequest(f"unknown symbol {symbol!r}", venue=self._venue)
        return market

    # -- account messages ---------------------------------------------------------------------------

    def _balance(self, asset: str) -> balance_pb2.Balance:
        bal = self.ledger.balance(asset)
        msg = balance_pb2.Balance(
            venue=self._venue,
            asset=asset,
            balance_type=balance_pb2.BALANCE_TYPE_SPOT,
            total=dec_str(bal.total),
            available=dec_str(bal.available),
            locked=dec_str(bal.locked),
            borrowed=dec_str(bal.borrowed) if bal.borrowed else "",
        )
        msg.updated_at.CopyFrom(timestamp(self.clock.now_ns()))
        return msg

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
            liquidation_price=dec_str(
                liq.quantize(self.engine.specs[symbol].tick_size, rounding=ROUND_HALF_EVEN)
            )
            if liq
            else "",
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
            for orders in own.levels.values():
                entry = levels.setdefault(orders[0].price or ZERO, [ZERO, 0])
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

    async def get_funding_rate_history(
        self, symbol: str, start: datetime | None = None, limit: int | None = None
    ) -> list[funding_pb2.FundingRate]:
        """The settlements since the simulation started, oldest first (:class:`SupportsFundingHistory`)."""
        await self._enter()
        self._perp(symbol)
        since = to_ns(start) if start is not None else 0
        rows = [r for r in self._funding_history.get(symbol, []) if r[0] >= since]
        if limit is not None:
            rows = rows[-limit:] if limit > 0 else []
        out = []
        for at, rate, mark in rows:
            msg = funding_pb2.FundingRate(
                venue=self._venue, symbol=symbol, rate=dec_str(rate), mark_price=dec_str(mark)
            )
            msg.funding_time.CopyFrom(timestamp(at))
            out.append(msg)
        return out

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
