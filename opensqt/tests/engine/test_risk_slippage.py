"""The dynamic slippage guard (opensqt/risk/slippage.py): property tests of the bound and the denials."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cqc.markets.v1 import orderbook_pb2
from cqvx.errors import ParseError
from opensqt.config import SlippageConfig
from opensqt.risk.exposure import Denied
from opensqt.risk.slippage import Bound, book_levels, volatility_percent, worst_price

D = Decimal
TICK = D("0.01")

prices = st.decimals(min_value=D("1"), max_value=D("100000"), places=2)
pcts = st.decimals(min_value=D("0"), max_value=D("5"), places=3)
qtys = st.decimals(min_value=D("0.001"), max_value=D("100"), places=3)
cfgs = st.builds(
    lambda base, extra, mult: SlippageConfig(
        base_percent=base, max_percent=base + extra, volatility_multiple=mult
    ),
    st.decimals(min_value=D("0"), max_value=D("2"), places=2),
    st.decimals(min_value=D("0.01"), max_value=D("3"), places=2),
    st.decimals(min_value=D("0"), max_value=D("5"), places=1),
)


def _book(
    mid: Decimal, spread_pct: Decimal, depth: list[Decimal]
) -> tuple[list[tuple[D, D]], list[tuple[D, D]]]:
    half = max(mid * spread_pct / 200, TICK)
    bid, ask = (mid - half).quantize(TICK), (mid + half).quantize(TICK)
    bids = [(bid - TICK * 10 * i, q) for i, q in enumerate(depth)]
    asks = [(ask + TICK * 10 * i, q) for i, q in enumerate(depth)]
    return bids, asks


@given(
    cfg=cfgs,
    mid=prices,
    spread=pcts,
    depth=st.lists(qtys, min_size=1, max_size=8),
    vol=pcts,
    is_buy=st.booleans(),
)
def test_the_bound_never_exceeds_the_cap_and_is_tick_aligned(
    *, cfg: SlippageConfig, mid: Decimal, spread: Decimal, depth: list[Decimal], vol: Decimal, is_buy: bool
) -> None:
    bids, asks = _book(mid, spread, depth)
    out = worst_price(cfg, is_buy=is_buy, bids=bids, asks=asks, tick_size=TICK, volatility=vol)
    bid, ask = bids[0][0], asks[0][0]
    if bid <= 0 or bid >= ask:
        assert isinstance(out, Denied)
        return
    ref = (bid + ask) / 2
    allowance = min(cfg.max_percent, cfg.base_percent + cfg.volatility_multiple * vol)
    if isinstance(out, Denied):
        assert out.limit == "slippage"
        # denied only when the far side is already beyond the (rounded) allowance
        far = ask if is_buy else bid
        limit = ref * (1 + allowance / 100) if is_buy else ref * (1 - allowance / 100)
        assert (far > limit) if is_buy else (far < limit)
        return
    assert isinstance(out, Bound)
    assert out.allowance_percent == allowance <= cfg.max_percent
    assert out.price % TICK == 0
    if is_buy:
        assert ask <= out.price <= ref * (1 + cfg.max_percent / 100)
        assert out.fillable == sum(q for p, q in asks if p <= out.price)
    else:
        assert ref * (1 - cfg.max_percent / 100) <= out.price <= bid
        assert out.fillable == sum(q for p, q in bids if p >= out.price)
    assert out.fillable > 0


@given(
    cfg=cfgs, mid=prices, depth=st.lists(qtys, min_size=1, max_size=5), v1=pcts, v2=pcts, is_buy=st.booleans()
)
def test_more_volatility_never_narrows_the_bound(
    *, cfg: SlippageConfig, mid: Decimal, depth: list[Decimal], v1: Decimal, v2: Decimal, is_buy: bool
) -> None:
    bids, asks = _book(mid, D("0.01"), depth)
    lo, hi = sorted((v1, v2))
    a = worst_price(cfg, is_buy=is_buy, bids=bids, asks=asks, tick_size=TICK, volatility=lo)
    b = worst_price(cfg, is_buy=is_buy, bids=bids, asks=asks, tick_size=TICK, volatility=hi)
    if isinstance(a, Bound):
        assert isinstance(b, Bound)
        assert (b.price >= a.price) if is_buy else (b.price <= a.price)


@given(prices, pcts, st.booleans())
def test_a_book_away_from_the_mark_is_denied(mark: Decimal, off: Decimal, is_buy: bool) -> None:
    cfg = SlippageConfig(base_percent=D(1), max_percent=D(1))
    mid = (mark * (1 + off / 100)).quantize(TICK)
    bids, asks = [(mid - TICK, D(1))], [(mid + TICK, D(1))]
    out = worst_price(cfg, is_buy=is_buy, bids=bids, asks=asks, tick_size=TICK, mark=mark)
    if abs(mid - mark) / mark * 100 > 1:
        assert isinstance(out, Denied) and "mark" in out.detail


@pytest.mark.parametrize(
    ("bids", "asks", "why"),
    [
        ([], [(D(100), D(1))], "two-sided"),
        ([(D(100), D(1))], [], "two-sided"),
        ([(D(101), D(1))], [(D(100), D(1))], "crossed"),
        ([(D(100), D(0))], [(D(101), D(1))], "two-sided"),
    ],
)
def test_unusable_books_are_denied(bids: list[tuple[D, D]], asks: list[tuple[D, D]], why: str) -> None:
    out = worst_price(SlippageConfig(), is_buy=True, bids=bids, asks=asks, tick_size=TICK)
    assert isinstance(out, Denied) and why in out.detail


@given(st.lists(prices, max_size=50))
def test_volatility_is_the_range_over_the_last_price(ps: list[Decimal]) -> None:
    v = volatility_percent(ps)
    assert v >= 0
    if len(ps) >= 2:
        assert v == (max(ps) - min(ps)) / ps[-1] * 100
    else:
        assert v == 0


@given(st.text(max_size=12))
def test_garbage_book_levels_raise_only_parse_errors(text: str) -> None:
    book = orderbook_pb2.OrderBook(
        bids=[orderbook_pb2.OrderBookLevel(price=text, quantity="1")],
        asks=[orderbook_pb2.OrderBookLevel(price="1", quantity=text)],
    )
    try:
        bids, _ = book_levels(book)
    except ParseError:
        return
    assert bids[0][0] == D(text)


def test_config_refuses_a_base_above_the_cap() -> None:
    with pytest.raises(ValueError, match="base_percent"):
        SlippageConfig(base_percent=D(2), max_percent=D(1))
