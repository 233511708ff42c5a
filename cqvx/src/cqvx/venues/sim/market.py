"""The market model: a price path, a synthetic order book around it, public trades and candles.

The price process draws from a ``random.Random`` seeded from (config seed, symbol), so every
instrument's path is reproducible on its own.  The stochastic part is computed in floats (it is a
model, not money); every price that leaves this module is a :class:`~decimal.Decimal` on the tick grid.
"""

from __future__ import annotations

import csv
import math
import random
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from cqc.venues.v1 import order_pb2
from cqvx.errors import InvalidRequest, ParseError
from cqvx.num import ZERO, dec, floor_to
from cqvx.timeutil import CANDLE_SECONDS
from cqvx.venues.sim.clock import to_ns
from cqvx.venues.sim.config import InstrumentSpec, MarketModel

__all__ = [
    "CANDLE_SECONDS",
    "CandleBar",
    "CandleBuilder",
    "InstrumentMarket",
    "PublicTrade",
    "load_replay",
]

_NS = 1_000_000_000
_YEAR_S = 365 * 86_400
BUY = order_pb2.ORDER_SIDE_BUY
SELL = order_pb2.ORDER_SIDE_SELL


def candle_seconds(interval: int) -> int:
    try:
        return CANDLE_SECONDS[interval]
    except KeyError:
        raise InvalidRequest(f"candle interval {interval} is not supported by the simulated venue") from None


def seed_for(seed: int, symbol: str) -> int:
    # zlib.crc32, not hash(): str hashes are randomised per process and would break determinism.
    return (seed * 1_000_003) ^ zlib.crc32(symbol.encode())


@dataclass(slots=True)
class PublicTrade:
    trade_id: str
    symbol: str
    ts_ns: int
    price: Decimal
    quantity: Decimal
    side: order_pb2.OrderSide.ValueType  # aggressor side
    is_liquidation: bool = False


# ---------------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _ReplayEvent:
    ts_ns: int
    price: Decimal
    quantity: Decimal
    side: order_pb2.OrderSide.ValueType


def _parse_time(text: str) -> int:
    """Epoch seconds/ms/us (non-negative, bounded by :func:`dec`) or ISO 8601 with a zone."""
    text = text.strip()
    if text[:1].isdigit() and "-" not in text and ":" not in text:
        number = dec(text, "replay timestamp")
        if number < 0 or number > Decimal(10) ** 17:
            raise ParseError(f"replay: timestamp out of range {text[:40]!r}")
        # Epoch seconds, milliseconds or microseconds, told apart by magnitude.
        if number > Decimal(10) ** 14:
            return int(number * 1_000)
        if number > Decimal(10) ** 11:
            return int(number * 1_000_000)
        return round(number * _NS)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParseError(f"replay: bad timestamp {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise ParseError(f"replay: timestamp without a zone {text[:40]!r}")
    return to_ns(moment)


def _non_negative(text: str | None, field: str) -> Decimal:
    value = dec(text, field)
    if value < 0:
        raise ParseError(f"replay: negative {field} {value}")
    return value


def load_replay(path: Path, fmt: str, lot_size: Decimal) -> list[_ReplayEvent]:
    """Read a CSV of trades or candles into time-ordered replay events (ParseError on bad rows)."""
    if path.suffix.lower() == ".parquet":
        raise InvalidRequest("replay: Parquet needs pyarrow, which cqvx does not depend on; use CSV")
    events: list[_ReplayEvent] = []
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if fmt == "trades":
        for row in rows:
            side_text = (row.get("side") or "").strip().lower()
            side = (
                BUY
                if side_text == "buy"
                else SELL
                if side_text == "sell"
                else order_pb2.ORDER_SIDE_UNSPECIFIED
            )
            events.append(
                _ReplayEvent(
                    _parse_time(row["timestamp"]),
                    _non_negative(row["price"], "price"),
                    _non_negative(row["quantity"], "quantity"),
                    side,
                )
            )
    else:
        opens = [_parse_time(row["open_time"]) for row in rows]
        for i, row in enumerate(rows):
            width = (
                (opens[i + 1] - opens[i])
                if i + 1 < len(rows)
                else (opens[i] - opens[i - 1] if i else 60 * _NS)
            )
            o, h, lo, c = (_non_negative(row[k], k) for k in ("open", "high", "low", "close"))
            vol = _non_negative(row.get("volume") or "0", "volume")
            # A candle becomes four trades: open, the extreme nearer the open first, the other, close.
            path_prices = [o, lo, h, c] if c >= o else [o, h, lo, c]
            part = floor_to(vol / 4, lot_size) if vol else ZERO
            for k, price in enumerate(path_prices):
                qty = part if k < 3 else max(ZERO, vol - 3 * part)
                side = BUY if k and price >= path_prices[k - 1] else SELL
                events.append(_ReplayEvent(opens[i] + width * k // 4, price, qty, side))
    events.sort(key=lambda e: e.ts_ns)
    return events


# ---------------------------------------------------------------------------------------------------
# One instrument's market
# ---------------------------------------------------------------------------------------------------


class InstrumentMarket:
    """Price path, synthetic book and public trade flow of one instrument."""

    def __init__(self, spec: InstrumentSpec, model: MarketModel, seed: int, start_ns: int) -> None:
        self.spec = spec
        self.model = model
        self.symbol = spec.symbol
        self.tick = spec.tick_size
        self.lot = spec.lot_size
        self._rng = random.Random(seed_for(seed, spec.symbol))
        self.mid = self._on_tick(spec.initial_price)
        self.last = self.mid
        self.sequence = 0
        self.updated_ns = start_ns
        self._volatile = False
        self._basis = 0.0
        self._size_scale = Decimal(1)
        self._trade_seq = 0
        self._tick_num, self._tick_den = spec.tick_size.as_integer_ratio()
        # trade_size / (1e6 * lot) as a fraction: lots of a draw of ``micro`` millionths.
        ts_num, ts_den = model.trade_size.as_integer_ratio()
        lot_num, lot_den = spec.lot_size.as_integer_ratio()
        self._size_num = ts_num * lot_den
        self._size_den = ts_den * lot_num * 1_000_000
        # Synthetic liquidity taken by our own taker orders during the current step, by price.
        self._taken: dict[Decimal, Decimal] = {}
        # The synthetic book is a pure function of the step's state: its level sizes (by index) and
        # the levels() lists are made once per step on first use and dropped by _rebuild() (a new
        # step or mid) and take() (liquidity taken).  Callers never mutate the lists they get.
        self._base: dict[int, Decimal] = {}
        self._book_memo: dict[tuple[int, int], list[tuple[Decimal, Decimal]]] = {}
        self._replay: deque[_ReplayEvent] = deque()
        self._replay_offset = 0
        if model.kind == "replay":
            if model.replay_path is None:
                raise InvalidRequest(f"{spec.symbol}: replay market model needs replay_path")
            events = load_replay(model.replay_path, model.replay_format, spec.lot_size)
            if events:
                self._replay_offset = start_ns - events[0].ts_ns
                self.mid = self.last = self._on_tick(events[0].price)
            self._replay = deque(events)
        self._rebuild()

    # -- book ---------------------------------------------------------------------------------------

    def _on_tick(self, price: Decimal) -> Decimal:
        ticks = (price / self.tick).to_integral_value(rounding=ROUND_HALF_EVEN)
        return max(ticks, Decimal(self.model.half_spread_ticks + 1)) * self.tick

    def _rebuild(self) -> None:
        half = self.model.half_spread_ticks * self.tick
        self.best_bid = self.mid - half
        self.best_ask = self.mid + half
        self._step = self.model.level_step_ticks * self.tick
        # The same touch on the integer tick grid (the mid is always on it: _on_tick).
        num, den = self.mid.as_integer_ratio()
        mid_ticks = num * self._tick_den // (den * self._tick_num)
        self.bid_ticks = mid_ticks - self.model.half_spread_ticks
        self.ask_ticks = mid_ticks + self.model.half_spread_ticks
        self._taken.clear()
        self._base.clear()
        self._book_memo.clear()
        self.sequence += 1

    def _level_base(self, index: int) -> Decimal:
        base = self._base.get(index)
        if base is None:
            # Deeper levels hold a little more; the per-step scale makes the book breathe.
            size = self.model.level_size * self._size_scale * (1 + Decimal(index) / 10)
            base = self._base[index] = max(self.lot, floor_to(size, self.lot))
        return base

    def level_size(self, side: int, price: Decimal) -> Decimal:
        """Synthetic resting size at ``price`` on the bid (BUY) or ask (SELL) side; 0 off the grid."""
        distance = (self.best_bid - price) if side == BUY else (price - self.best_ask)
        if distance < 0:
            return ZERO
        index, rest = divmod(distance, self._step)
        if rest or index >= self.model.levels:
            return ZERO
        return max(ZERO, self._level_base(int(index)) - self._taken.get(price, ZERO))

    def level_size_at(self, side: int, ticks: int, price: Decimal) -> Decimal:
        """:meth:`level_size` for a price on the tick grid (``ticks`` = ``price / tick_size``)."""
        distance = (self.bid_ticks - ticks) if side == BUY else (ticks - self.ask_ticks)
        if distance < 0:
            return ZERO
        index, rest = divmod(distance, self.model.level_step_ticks)
        if rest or index >= self.model.levels:
            return ZERO
        base = self._level_base(index)
        if self._taken:
            return max(ZERO, base - self._taken.get(price, ZERO))
        return base

    def levels(self, side: int, depth: int) -> list[tuple[Decimal, Decimal]]:
        """Best ``depth`` synthetic levels of one side, best first (levels taken to zero omitted).

        The list is shared until the book changes: callers must not mutate it.
        """
        memo = self._book_memo.get((side, depth))
        if memo is not None:
            return memo
        out: list[tuple[Decimal, Decimal]] = []
        self._book_memo[(side, depth)] = out
        sign = -1 if side == BUY else 1
        best = self.best_bid if side == BUY else self.best_ask
        for i in range(min(depth, self.model.levels)):
            price = best + sign * i * self._step
            if price <= 0:
                break
            size = self._level_base(i) - self._taken.get(price, ZERO)
            if size > 0:
                out.append((price, size))
        return out

    def take(self, price: Decimal, quantity: Decimal) -> None:
        """Our taker order consumed synthetic liquidity at ``price`` (until the next step)."""
        self._taken[price] = self._taken.get(price, ZERO) + quantity
        self._book_memo.clear()

    def set_mid(self, price: Decimal) -> None:
        """Move the market to ``price`` at once (scenario tests and external price feeds)."""
        self.mid = self._on_tick(price)
        self._rebuild()

    # -- trades -------------------------------------------------------------------------------------

    def new_trade(
        self,
        ts_ns: int,
        price: Decimal,
        quantity: Decimal,
        side: order_pb2.OrderSide.ValueType,
        *,
        liquidation: bool = False,
    ) -> PublicTrade:
        self._trade_seq += 1
        self.last = price
        return PublicTrade(
            f"{self.symbol}-{self._trade_seq}", self.symbol, ts_ns, price, quantity, side, liquidation
        )

    def _random_size(self, scale: float = 1.0) -> Decimal:
        """``trade_size * x`` floored to the lot (at least one lot), ``x`` an exponential draw kept to
        six decimals.  ``x`` is an exact count of millionths, so the floor is integer arithmetic;
        the value equals the Decimal formula's (the fallback, for draws too large for the shortcut).
        """
        x = round(self._rng.expovariate(1.0) * scale, 6)
        if x >= 1e9:
            size = self.model.trade_size * Decimal(repr(x))
            return max(self.lot, floor_to(size, self.lot))
        # round(x, 6) is the double nearest a decimal with six places, so x * 1e6 rounds to it.
        micro = round(x * 1_000_000)
        lots = micro * self._size_num // self._size_den
        return self.lot * lots if lots > 0 else self.lot

    # -- the step -----------------------------------------------------------------------------------

    def step(
        self, now_ns: int, dt: float, leader_mid: Decimal | None = None, volume_scale: float = 1.0
    ) -> list[PublicTrade]:
        """Advance the market to ``now_ns`` (``dt`` simulated seconds since the last step).

        ``volume_scale`` multiplies trade sizes, so coarse steps (warm-up history) trade the same
        volume per unit of time as fine ones.
        """
        self.updated_ns = now_ns
        if self.model.kind == "replay":
            return self._step_replay(now_ns)
        rng = self._rng
        old_mid = self.mid
        if leader_mid is not None:
            # Mean-reverting basis (about 5 bp stationary spread, one-hour half-life scale).
            theta = 1 / 3600
            self._basis += -theta * self._basis * dt + 1.18e-5 * math.sqrt(dt) * rng.gauss(0.0, 1.0)
            new_mid = float(leader_mid) * (1 + self._basis)
        else:
            m = self.model
            if self._volatile:
                if rng.random() < m.regime_exit_prob:
                    self._volatile = False
            elif rng.random() < m.regime_enter_prob:
                self._volatile = True
            sigma = m.volatility * (m.regime_vol_multiplier if self._volatile else 1.0)
            dt_y = dt / _YEAR_S
            r = (m.drift - 0.5 * sigma * sigma) * dt_y + sigma * math.sqrt(dt_y) * rng.gauss(0.0, 1.0)
            if rng.random() < m.jump_intensity * dt_y:
                r += rng.gauss(0.0, m.jump_std)
            new_mid = float(old_mid) * math.exp(r)
        self.mid = self._on_tick(Decimal(repr(round(new_mid, 8))))
        jitter = self.model.size_jitter
        self._size_scale = Decimal(repr(round(1 - jitter / 2 + jitter * rng.random(), 3)))
        self._rebuild()
        trades: list[PublicTrade] = []
        # A move is a sweep: aggressors traded through every level between the old and new touch.
        if self.mid < old_mid:
            trades.append(self.new_trade(now_ns, self.best_bid, self._random_size(volume_scale), SELL))
        elif self.mid > old_mid:
            trades.append(self.new_trade(now_ns, self.best_ask, self._random_size(volume_scale), BUY))
        for _ in range(self.model.trades_per_step):
            if rng.random() < 0.5:
                trades.append(self.new_trade(now_ns, self.best_bid, self._random_size(volume_scale), SELL))
            else:
                trades.append(self.new_trade(now_ns, self.best_ask, self._random_size(volume_scale), BUY))
        return trades

    def _step_replay(self, now_ns: int) -> list[PublicTrade]:
        trades: list[PublicTrade] = []
        while self._replay and self._replay[0].ts_ns + self._replay_offset <= now_ns:
            ev = self._replay.popleft()
            price = self._on_tick(ev.price)
            side = ev.side or (SELL if price < self.mid else BUY)
            self.mid = price
            self._rebuild()
            if ev.quantity > 0:
                # The replayed trade printed at the recorded price; the book is re-centred on it.
                trades.append(self.new_trade(now_ns, price, ev.quantity, side))
        return trades

    @property
    def replay_done(self) -> bool:
        return self.model.kind == "replay" and not self._replay


# ---------------------------------------------------------------------------------------------------
# Candles
# ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class CandleBar:
    open_ns: int
    close_ns: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0
    closed: bool = False


class CandleBuilder:
    """OHLCV bars of one width built from public trades; empty periods repeat the last close."""

    def __init__(self, interval: int, history: int) -> None:
        self.interval = interval
        self.width_ns = candle_seconds(interval) * _NS
        self.history: deque[CandleBar] = deque(maxlen=history)
        self.current: CandleBar | None = None

    def _open_at(self, ts_ns: int, price: Decimal) -> CandleBar:
        start = ts_ns - ts_ns % self.width_ns
        return CandleBar(start, start + self.width_ns, price, price, price, price)

    def roll(self, now_ns: int) -> list[CandleBar]:
        """Close every bar whose period ended by ``now_ns``; returns them, oldest first."""
        closed: list[CandleBar] = []
        cur = self.current
        while cur is not None and cur.close_ns <= now_ns:
            cur.closed = True
            self.history.append(cur)
            closed.append(cur)
            if len(closed) >= (self.history.maxlen or 1):
                # A long gap: continue from the bar containing now instead of filling every period.
                cur = self._open_at(now_ns, cur.close)
                break
            nxt = CandleBar(
                cur.close_ns, cur.close_ns + self.width_ns, cur.close, cur.close, cur.close, cur.close
            )
            cur = nxt
        self.current = cur
        return closed

    def add(self, trade: PublicTrade) -> CandleBar:
        cur = self.current
        if cur is None or trade.ts_ns >= cur.close_ns:
            self.roll(trade.ts_ns)
            cur = self.current
            if cur is None:
                cur = self.current = self._open_at(trade.ts_ns, trade.price)
        if cur.trades == 0:
            # A bar carried over an empty period opens where trading resumed (like venues' klines).
            cur.open = cur.high = cur.low = trade.price
        cur.high = max(cur.high, trade.price)
        cur.low = min(cur.low, trade.price)
        cur.close = trade.price
        cur.volume += trade.quantity
        cur.quote_volume += trade.price * trade.quantity
        cur.trades += 1
        return cur

    def bars(self, start_ns: int | None, end_ns: int | None, limit: int | None) -> list[CandleBar]:
        out = list(self.history)
        if self.current is not None:
            out.append(self.current)
        if start_ns is not None:
            out = [b for b in out if b.open_ns >= start_ns]
        if end_ns is not None:
            out = [b for b in out if b.open_ns < end_ns]
        if limit is not None:
            out = out[-limit:] if limit > 0 else []
        return out


def iter_all(markets: dict[str, InstrumentMarket]) -> Iterator[InstrumentMarket]:
    """Leaders before followers, so a follower steps on its leader's new price."""
    followers = [m for m in markets.values() if m.spec.follows]
    yield from (m for m in markets.values() if not m.spec.follows)
    yield from followers
