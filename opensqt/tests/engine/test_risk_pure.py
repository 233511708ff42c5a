"""Properties of the pure breaker and exposure logic (risk/breakers.py, risk/exposure.py)."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from opensqt.config import BreakersConfig, ExposureConfig
from opensqt.engine.reducer import reduction_target
from opensqt.risk.breakers import BreakerBook
from opensqt.risk.exposure import AccountExposure, check_order

D = Decimal
money = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)


def _book(**sections: object) -> BreakerBook:
    return BreakerBook(BreakersConfig.model_validate(sections))


@given(st.lists(st.decimals(min_value=-100, max_value=100, places=2), max_size=60), st.integers(1, 6))
def test_losing_streak_trips_exactly_at_n_consecutive_losses(pnls: list[Decimal], n: int) -> None:
    book = _book(losing_streak={"max_losses": n, "cooldown_seconds": 0})
    streak, expect_open = 0, False
    for i, p in enumerate(pnls):
        book.round_trip(p, float(i))
        streak = streak + 1 if p < 0 else 0
        expect_open = expect_open or streak >= n
        assert book.open == expect_open  # once open, only a reset closes it (cool-down 0)
    was_open = book.open
    book.reset()
    assert not book.open
    if was_open:  # a reset re-bases the evidence: the streak starts again
        assert book.streak == 0


@given(st.lists(money, min_size=1, max_size=50), st.decimals(min_value=1, max_value=50, places=1))
def test_drawdown_trips_iff_equity_falls_percent_below_the_running_peak(
    equities: list[Decimal], pct: Decimal
) -> None:
    book = _book(drawdown={"percent": pct})
    peak, tripped = D(0), False
    for i, e in enumerate(equities):
        book.equity_at(e, float(i))
        peak = max(peak, e)
        tripped = tripped or (peak > 0 and (peak - e) * 100 / peak >= pct)
        assert book.open == tripped


@given(st.lists(st.booleans(), max_size=80), st.integers(1, 20), st.integers(1, 99))
def test_reject_rate_is_over_the_last_window(outcomes: list[bool], window: int, pct: int) -> None:
    book = _book(
        reject_rate={"max_percent": pct, "window": window, "min_orders": window, "cooldown_seconds": 0}
    )
    tripped = False
    for i, r in enumerate(outcomes):
        book.order_outcome(r, float(i))
        last = outcomes[max(0, i + 1 - window) : i + 1]
        tripped = tripped or (len(last) >= window and D(sum(last)) * 100 / D(len(last)) > pct)
        assert book.open == tripped


@given(st.floats(0, 1000), st.floats(0, 1000))
def test_state_driven_breakers_close_only_after_the_cool_down_with_a_clear_reading(
    stale_for: float, waited: float
) -> None:
    book = _book(stale_feed={"price_seconds": 10, "cooldown_seconds": 60})
    book.feeds(stale_for, None, 0.0)
    if stale_for < 10:
        assert not book.open
        return
    assert book.release(waited) == [] and book.open  # still stale: never closes by itself
    book.feeds(1.0, None, waited)
    assert (book.release(waited) == ["stale_feed"]) == (waited >= 60)


@given(st.lists(st.sampled_from(["loss", "win", "reject", "ok"]), max_size=30))
def test_snapshot_round_trips_through_json(events: list[str]) -> None:
    cfg = {
        "losing_streak": {"max_losses": 2},
        "reject_rate": {"max_percent": 50, "window": 4, "min_orders": 2},
    }
    book = _book(**cfg)
    for i, ev in enumerate(events):
        if ev in ("loss", "win"):
            book.round_trip(D(-1) if ev == "loss" else D(1), float(i))
        else:
            book.order_outcome(ev == "reject", float(i))
    again = _book(**cfg)
    again.restore(json.loads(json.dumps(book.snapshot())))
    assert again.open_kinds() == book.open_kinds()
    assert again.streak == book.streak
    assert {k: (s.trips, s.detail) for k, s in again.states.items()} == {
        k: (s.trips, s.detail) for k, s in book.states.items()
    }


@given(
    st.tuples(money, money, money),
    st.booleans(),
    st.tuples(st.one_of(st.none(), money), st.one_of(st.none(), money)),
)
def test_exposure_check_never_admits_beyond_a_limit(
    amounts: tuple[Decimal, Decimal, Decimal], opening: bool, caps: tuple[Decimal | None, Decimal | None]
) -> None:
    notional, current, others = amounts
    cap, acap = caps
    limits = ExposureConfig(
        max_symbol_notional=cap if cap else None, max_account_notional=acap if acap else None
    )
    account = AccountExposure({"ETH-USD": others})
    denied = check_order(
        limits, symbol="BTC-USD", notional=notional, opening=opening, symbol_exposure=current, account=account
    )
    if not opening or notional == 0:
        assert denied is None  # closing / reduce-only orders are never denied
        return
    after = current + notional
    over_symbol = limits.max_symbol_notional is not None and after > limits.max_symbol_notional
    over_account = limits.max_account_notional is not None and after + others > limits.max_account_notional
    assert (denied is not None) == (over_symbol or over_account)
    if denied is not None:
        assert denied.limit in ("symbol_notional", "account_notional")


@given(
    st.decimals(min_value=D("-50"), max_value=D("50"), places=5),
    st.decimals(min_value=D("0"), max_value=D("0.99"), places=2),
    st.sampled_from([D("0.00001"), D("0.001"), D("0.1"), D("1")]),
)
def test_the_reduction_is_lot_floored_and_never_beyond_the_configured_share(
    position: Decimal, keep: Decimal, lot: Decimal
) -> None:
    target = reduction_target(position, keep, lot)
    cut = abs(position) - abs(target)
    exact = abs(position) * (1 - keep)
    assert target == 0 or (target > 0) == (position > 0)  # never flips the side
    assert abs(target) <= abs(position)
    assert 0 <= cut <= exact  # never rounded up
    assert exact - cut < lot
    assert cut % lot == 0
