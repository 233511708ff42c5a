"""Circuit breakers as pure state: observations in (time passed in, seconds), trips out.

Each breaker (``risk.breakers`` in the config; a missing section = off) watches one condition:

* ``losing_streak``: ``max_losses`` losing round trips in a row (a closing fill with realized PnL < 0);
  a winning round trip resets the count;
* ``drawdown``: equity below its running peak by ``percent`` of the peak or by ``absolute``;
* ``latency``: ``samples`` placements in a row slower than ``max_ms``;
* ``stale_feed``: no price tick for ``price_seconds``, or the order stream down for ``orders_seconds``;
* ``margin``: a position's distance to liquidation ``|mark - liq| / mark`` below the percent;
* ``reject_rate``: of the last ``window`` placement outcomes (at least ``min_orders``), more than
  ``max_percent`` rejected by the venue.

Trip: the breaker is open with a bounded ``reason`` (its name) and a ``detail`` with the numbers.
While any breaker is open the engine places no opening orders and cancels the live ones (closing orders
stay).  Cool-down: after ``cooldown_seconds`` an open breaker closes by itself once its condition is
clear (the evidence-driven ones, streak / latency / reject rate, see nothing new while nothing is
placed: for them the cool-down itself is the pause); ``cooldown_seconds: 0`` means only a manual
:meth:`BreakerBook.reset` closes it.  A reset also
re-bases what would trip again at once (the streak restarts at 0, the equity peak is the current
equity, the reject window is emptied), so the operator's decision holds until new evidence.

The open/closed state is what persists (:meth:`snapshot` / :meth:`restore`, JSON-safe, the engine keeps
it in the state store): a breaker open before a restart is open after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from cqvx.num import ZERO, dec_str
from opensqt.config import BreakersConfig

__all__ = ["KINDS", "BreakerBook", "BreakerState", "Kind", "Trip", "UnknownBreaker", "parse_kind"]

Kind = Literal["losing_streak", "drawdown", "latency", "stale_feed", "margin", "reject_rate"]
KINDS: tuple[Kind, ...] = ("losing_streak", "drawdown", "latency", "stale_feed", "margin", "reject_rate")
HUNDRED = Decimal(100)
_EVIDENCE: frozenset[str] = frozenset({"losing_streak", "latency", "reject_rate"})


class UnknownBreaker(LookupError):
    """A reset named a breaker that does not exist, or is not configured; the message lists the valid
    names (the CLI and the HTTP reset endpoint answer with it)."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown breaker {name!r} (configured: {', '.join(known) or 'none'})")
        self.name = name
        self.known = tuple(known)


def parse_kind(name: str) -> Kind:
    """A breaker name from outside (CLI, HTTP) as a :data:`Kind`; :class:`UnknownBreaker` otherwise."""
    for k in KINDS:
        if k == name:
            return k
    raise UnknownBreaker(name, KINDS)


@dataclass
class BreakerState:
    open: bool = False
    detail: str = ""
    tripped_at: float | None = None
    trips: int = 0
    resets: int = 0
    clear: bool = True  # the condition at the last observation (not persisted: re-observed)


@dataclass(frozen=True, slots=True)
class Trip:
    kind: Kind
    detail: str


class BreakerBook:
    def __init__(self, config: BreakersConfig) -> None:
        self.config = config
        self.states: dict[Kind, BreakerState] = {k: BreakerState() for k in self.enabled}
        self.streak = 0
        self.peak: Decimal | None = None
        self.equity: Decimal | None = None
        self.slow = 0
        rr = config.reject_rate
        self.outcomes: deque[bool] = deque(maxlen=rr.window if rr is not None else 1)

    @property
    def enabled(self) -> list[Kind]:
        return [k for k in KINDS if getattr(self.config, k) is not None]

    @property
    def open(self) -> bool:
        return any(s.open for s in self.states.values())

    def open_kinds(self) -> list[Kind]:
        return [k for k, s in self.states.items() if s.open]

    # ------------------------------------------------------------------------------- observations

    def round_trip(self, pnl: Decimal, now: float) -> list[Trip]:
        cfg = self.config.losing_streak
        if cfg is None:
            return []
        self.streak = self.streak + 1 if pnl < 0 else 0
        return self._set(
            "losing_streak",
            self.streak >= cfg.max_losses,
            now,
            f"{self.streak} losing round trips in a row (max {cfg.max_losses})",
        )

    def equity_at(self, equity: Decimal, now: float) -> list[Trip]:
        cfg = self.config.drawdown
        self.equity = equity
        if cfg is None:
            return []
        if self.peak is None or equity > self.peak:
            self.peak = equity
        down = self.peak - equity
        hit_abs = cfg.absolute is not None and down >= cfg.absolute
        pct = down * HUNDRED / self.peak if self.peak > 0 else ZERO
        hit_pct = cfg.percent is not None and self.peak > 0 and pct >= cfg.percent
        detail = (
            f"equity {dec_str(equity)} is {dec_str(down)} ({pct:.2f} %) below its peak {dec_str(self.peak)}"
            f" (limits: {_opt(cfg.absolute)} absolute, {_opt(cfg.percent)} %)"
        )
        return self._set("drawdown", hit_abs or hit_pct, now, detail)

    def latency(self, ms: float, now: float) -> list[Trip]:
        cfg = self.config.latency
        if cfg is None:
            return []
        self.slow = self.slow + 1 if Decimal(str(ms)) > cfg.max_ms else 0
        detail = f"{self.slow} placements in a row slower than {dec_str(cfg.max_ms)} ms (last {ms:.0f} ms)"
        return self._set("latency", self.slow >= cfg.samples, now, detail)

    def feeds(self, price_age: float | None, orders_down: float | None, now: float) -> list[Trip]:
        """``price_age``: seconds since the last price tick; ``orders_down``: seconds the order stream
        has been down (None = up or no stream)."""
        cfg = self.config.stale_feed
        if cfg is None:
            return []
        stale: list[str] = []
        if cfg.price_seconds is not None and price_age is not None and price_age >= cfg.price_seconds:
            stale.append(f"no price for {price_age:.1f} s (max {dec_str(cfg.price_seconds)})")
        if cfg.orders_seconds is not None and orders_down is not None and orders_down >= cfg.orders_seconds:
            stale.append(f"order stream down for {orders_down:.1f} s (max {dec_str(cfg.orders_seconds)})")
        return self._set("stale_feed", bool(stale), now, "; ".join(stale))

    def margin(self, distance_pct: Decimal | None, now: float) -> list[Trip]:
        """``distance_pct``: the smallest ``|mark - liquidation| / mark`` in percent (None = no position
        with a liquidation price)."""
        cfg = self.config.margin
        if cfg is None:
            return []
        hit = distance_pct is not None and distance_pct < cfg.min_liquidation_distance_percent
        floor = dec_str(cfg.min_liquidation_distance_percent)
        detail = f"liquidation {_opt(distance_pct)} % from the mark (min {floor} %)"
        return self._set("margin", hit, now, detail)

    def order_outcome(self, rejected: bool, now: float) -> list[Trip]:
        cfg = self.config.reject_rate
        if cfg is None:
            return []
        self.outcomes.append(rejected)
        n, bad = len(self.outcomes), sum(self.outcomes)
        rate = Decimal(bad) * HUNDRED / Decimal(n)
        hit = n >= cfg.min_orders and rate > cfg.max_percent
        detail = f"{bad} of the last {n} placements rejected ({rate:.1f} %, max {dec_str(cfg.max_percent)} %)"
        return self._set("reject_rate", hit, now, detail)

    # ------------------------------------------------------------------------------- open / close

    def _set(self, kind: Kind, hit: bool, now: float, detail: str) -> list[Trip]:
        st = self.states[kind]
        st.clear = not hit
        if not hit or st.open:
            return []
        st.open, st.detail, st.tripped_at = True, detail, now
        st.trips += 1
        return [Trip(kind, detail)]

    def release(self, now: float) -> list[Kind]:
        """Close every open breaker whose cool-down has passed and whose condition is clear."""
        out: list[Kind] = []
        for kind, st in self.states.items():
            cooldown = float(self._cfg(kind).cooldown_seconds)
            # Evidence-driven breakers see no new evidence while open (nothing is placed): their cool-down
            # is the pause itself.  State-driven ones (drawdown, stale feed, margin) need a clear reading.
            needs_clear = kind not in _EVIDENCE
            if not st.open or cooldown <= 0 or (needs_clear and not st.clear) or st.tripped_at is None:
                continue
            if now - st.tripped_at >= cooldown:
                self._close(kind)
                out.append(kind)
        return out

    def reset(self, kind: Kind | None = None) -> list[Kind]:
        """The manual reset: close ``kind`` (or every open breaker) and re-base its evidence."""
        kinds = [k for k in self.open_kinds() if kind is None or k == kind]
        if kind is not None and kind not in self.states:
            raise UnknownBreaker(kind, list(self.states))
        for k in kinds:
            self.states[k].resets += 1
            self._close(k)
        return kinds

    def _close(self, kind: Kind) -> None:
        st = self.states[kind]
        st.open, st.tripped_at, st.clear = False, None, True
        if kind == "losing_streak":
            self.streak = 0
        elif kind == "drawdown":
            self.peak = self.equity
        elif kind == "latency":
            self.slow = 0
        elif kind == "reject_rate":
            self.outcomes.clear()

    def _cfg(self, kind: Kind) -> Any:
        return getattr(self.config, kind)

    # ------------------------------------------------------------------------------- persistence

    def snapshot(self) -> dict[str, Any]:
        return {
            "breakers": {
                k: {
                    "open": s.open,
                    "detail": s.detail,
                    "tripped_at": s.tripped_at,
                    "trips": s.trips,
                    "resets": s.resets,
                }
                for k, s in self.states.items()
            },
            "peak": dec_str(self.peak) if self.peak is not None else None,
            "streak": self.streak,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load a :meth:`snapshot`; breakers no longer configured are dropped."""
        for k, row in dict(data.get("breakers") or {}).items():
            st = self.states.get(k)
            if st is None or not isinstance(row, dict):
                continue
            st.open = bool(row.get("open"))
            st.detail = str(row.get("detail") or "")
            at = row.get("tripped_at")
            st.tripped_at = float(at) if isinstance(at, int | float) else None
            st.trips = int(row.get("trips") or 0)
            st.resets = int(row.get("resets") or 0)
            st.clear = not st.open  # re-observed before it may close by itself
        peak = data.get("peak")
        self.peak = Decimal(peak) if isinstance(peak, str) else None
        self.streak = int(data.get("streak") or 0)

    def status(self) -> dict[str, Any]:
        return {
            k: {
                "open": s.open,
                "detail": s.detail,
                "trips": s.trips,
                "resets": s.resets,
                "cooldown_seconds": dec_str(self._cfg(k).cooldown_seconds),
            }
            for k, s in self.states.items()
        }


def _opt(value: Decimal | None) -> str:
    return "-" if value is None else dec_str(value)
