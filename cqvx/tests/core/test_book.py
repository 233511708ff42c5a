"""OrderBookL2: model-based property tests plus the edge cases adapters rely on."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.markets.v1 import orderbook_pb2
from cqvx.book import ApplyResult, BookState, OrderBookL2, ResyncReason, SequenceMode
from cqvx.errors import ParseError

D = Decimal

# Bids live in [1, 50], asks in [51, 100] (cents of a price grid): a generated book never crosses,
# so every update must be accepted and the book must equal the model after each one.
bid_price = st.integers(1, 50).map(lambda i: D(i) / 100 + 100)
ask_price = st.integers(51, 100).map(lambda i: D(i) / 100 + 100)
size = st.one_of(st.just(D(0)), st.integers(1, 10_000).map(lambda i: D(i) / 1000))
bid_levels = st.lists(st.tuples(bid_price, size), max_size=12)
ask_levels = st.lists(st.tuples(ask_price, size), max_size=12)
update = st.tuples(bid_levels, ask_levels)


def _model_apply(model: dict[Decimal, Decimal], levels: list[tuple[Decimal, Decimal]]) -> None:
    for p, s in levels:
        if s:
            model[p] = s
        else:
            model.pop(p, None)


def _as_str(levels: list[tuple[Decimal, Decimal]]) -> list[tuple[str, str]]:
    return [(str(p), str(s)) for p, s in levels]


@settings(max_examples=100, deadline=None)
@given(snapshot=update, updates=st.lists(update, max_size=30), use_str=st.booleans())
def test_random_deltas_match_reference_model(
    snapshot: tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]],
    updates: list[tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]],
    use_str: bool,
) -> None:
    book = OrderBookL2("BTC-USD", "test")
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    _model_apply(bids, snapshot[0])
    _model_apply(asks, snapshot[1])
    assert book.apply_snapshot_levels(snapshot[0], snapshot[1], sequence=10) is ApplyResult.APPLIED
    seq = 10
    for b, a in updates:
        seq += 1
        _model_apply(bids, b)
        _model_apply(asks, a)
        if use_str:
            result = book.apply_levels(_as_str(b), _as_str(a), sequence=seq)
        else:
            result = book.apply_levels(b, a, sequence=seq)
        assert result is ApplyResult.APPLIED
        assert book.bids() == sorted(bids.items(), reverse=True)
        assert book.asks() == sorted(asks.items())
    assert book.state is BookState.LIVE
    assert book.last_sequence == seq
    assert book.best_bid == (max(bids.items()) if bids else None)
    assert book.best_ask == (min(asks.items()) if asks else None)
    if bids and asks:
        assert book.mid == (max(bids) + min(asks)) / 2


any_price = st.integers(1, 100).map(lambda i: D(i) / 100 + 100)
any_levels = st.lists(st.tuples(any_price, size), max_size=10)


@settings(max_examples=100, deadline=None)
@given(
    snapshot=st.tuples(any_levels, any_levels),
    updates=st.lists(st.tuples(any_levels, any_levels), max_size=20),
)
def test_crossed_detection_and_snapshot_invariants(
    snapshot: tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]],
    updates: list[tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]],
) -> None:
    """Prices overlap here, so books cross: detected exactly when the model crosses, and then frozen."""
    book = OrderBookL2("BTC-USD")
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    steps = [snapshot, *updates]
    for i, (b, a) in enumerate(steps):
        _model_apply(bids, b)
        _model_apply(asks, a)
        model_crossed = bool(bids) and bool(asks) and max(bids) >= min(asks)
        result = (
            book.apply_snapshot_levels(b, a, sequence=1)
            if i == 0
            else book.apply_levels(b, a, sequence=i + 1)
        )
        if model_crossed:
            assert result is ApplyResult.CROSSED
            assert book.needs_resync and book.reason is ResyncReason.CROSSED
            # Frozen: a further delta is refused, whatever it says.
            assert book.apply_levels([(D("100.01"), D(1))], [], sequence=i + 2) is ApplyResult.REFUSED
            break
        assert result is ApplyResult.APPLIED
        for depth in (1, 3, None):
            snap = book.snapshot(depth)
            bp = [D(lv.price) for lv in snap.bids]
            ap = [D(lv.price) for lv in snap.asks]
            assert bp == sorted(bp, reverse=True) and len(set(bp)) == len(bp)
            assert ap == sorted(ap) and len(set(ap)) == len(ap)
            if bp and ap:
                assert bp[0] < ap[0]
            assert all(D(lv.quantity) > 0 for lv in (*snap.bids, *snap.asks))
            if depth is not None:
                assert len(bp) <= depth and len(ap) <= depth
            want_b = sorted(bids.items(), reverse=True)[:depth]
            want_a = sorted(asks.items())[:depth]
            assert [(D(lv.price), D(lv.quantity)) for lv in snap.bids] == want_b
            assert [(D(lv.price), D(lv.quantity)) for lv in snap.asks] == want_a


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(update, max_size=10),
    after=st.lists(update, max_size=5),
    resync=st.tuples(bid_levels, ask_levels),
)
def test_no_stale_level_survives_a_resync(
    before: list[tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]],
    after: list[tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]],
    resync: tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]],
) -> None:
    book = OrderBookL2("BTC-USD")
    book.apply_snapshot_levels([(D("100.2"), D(1))], [(D("100.8"), D(1))], sequence=1)
    seq = 1
    for b, a in before:
        seq += 1
        book.apply_levels(b, a, sequence=seq)
    # Skip one sequence number: a gap.  Everything after it is refused until the snapshot.
    assert book.apply_levels([(D("100.3"), D(5))], [], sequence=seq + 2) is ApplyResult.GAP
    assert book.needs_resync and book.reason is ResyncReason.SEQUENCE_GAP
    for i, (b, a) in enumerate(after):
        assert book.apply_levels(b, a, sequence=seq + 3 + i) is ApplyResult.REFUSED
    model_b: dict[Decimal, Decimal] = {}
    model_a: dict[Decimal, Decimal] = {}
    _model_apply(model_b, resync[0])
    _model_apply(model_a, resync[1])
    assert book.apply_snapshot_levels(resync[0], resync[1], sequence=1000) is ApplyResult.APPLIED
    assert book.state is BookState.LIVE and book.reason is None
    assert book.bids() == sorted(model_b.items(), reverse=True)
    assert book.asks() == sorted(model_a.items())
    assert book.apply_levels([], [], sequence=1001) is ApplyResult.APPLIED


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.integers(-2, 3), min_size=1, max_size=40))
def test_gap_fires_exactly_when_a_sequence_is_skipped(steps: list[int]) -> None:
    book = OrderBookL2("BTC-USD", sequence=SequenceMode.CONTIGUOUS)
    book.apply_snapshot_levels([], [], sequence=100)
    last = 100
    gapped = False
    for step in steps:
        seq = last + step
        result = book.apply_levels([], [], sequence=seq)
        if gapped:
            assert result is ApplyResult.REFUSED
        elif seq <= last:
            assert result is ApplyResult.STALE  # duplicates and replays are ignored, not gaps
        elif seq == last + 1:
            assert result is ApplyResult.APPLIED
            last = seq
        else:
            assert result is ApplyResult.GAP
            gapped = True
        assert book.needs_resync is gapped
    assert book.last_sequence == last


def test_monotonic_mode_accepts_jumps_but_previous_sequence_still_proves_gaps() -> None:
    book = OrderBookL2("BTC-USD", sequence=SequenceMode.MONOTONIC)
    book.apply_snapshot_levels([("100", "1")], [("101", "1")], sequence=5)
    assert book.apply_levels([("100", "2")], [], sequence=9) is ApplyResult.APPLIED
    assert book.apply_levels([("100", "3")], [], sequence=9) is ApplyResult.STALE
    assert book.apply_levels([("100", "4")], [], sequence=12, previous_sequence=9) is ApplyResult.APPLIED
    assert book.apply_levels([("100", "5")], [], sequence=20, previous_sequence=13) is ApplyResult.GAP
    assert book.best_bid == (D(100), D(4))


def test_previous_sequence_in_contiguous_mode_and_first_sequence_ranges() -> None:
    book = OrderBookL2("BTC-USD")
    book.apply_snapshot_levels([("100", "1")], [("101", "1")], sequence=50)
    # A range update [45, 55] straddling the snapshot's last id is the correct first update.
    assert book.apply_levels([("100", "2")], [], sequence=55, first_sequence=45) is ApplyResult.APPLIED
    assert book.apply_levels([("100", "3")], [], sequence=60, first_sequence=56) is ApplyResult.APPLIED
    assert book.apply_levels([("100", "4")], [], sequence=70, first_sequence=62) is ApplyResult.GAP
    book.apply_snapshot_levels([("100", "1")], [("101", "1")], sequence=50)
    assert book.apply_levels([], [], sequence=77, previous_sequence=50) is ApplyResult.APPLIED
    assert book.apply_levels([], [], sequence=78, previous_sequence=76) is ApplyResult.GAP


def test_deltas_before_a_snapshot_are_refused() -> None:
    book = OrderBookL2("BTC-USD")
    assert book.state is BookState.EMPTY and book.reason is ResyncReason.NO_SNAPSHOT
    assert book.apply_levels([("100", "1")], []) is ApplyResult.REFUSED
    assert len(book) == 0


def test_no_sequence_mode_and_zero_sequence_never_gap() -> None:
    book = OrderBookL2("BTC-USD", sequence=SequenceMode.NONE)
    book.apply_snapshot_levels([("100", "1")], [("101", "1")], sequence=1)
    assert book.apply_levels([("100", "2")], [], sequence=99) is ApplyResult.APPLIED
    other = OrderBookL2("ETH-USD")
    other.apply_snapshot_levels([("10", "1")], [("11", "1")])
    assert other.apply_levels([("10", "2")], []) is ApplyResult.APPLIED
    assert other.apply_levels([("10", "3")], [], sequence=7) is ApplyResult.APPLIED
    assert other.apply_levels([("10", "4")], [], sequence=9) is ApplyResult.GAP


def test_cqc_messages_round_trip_and_canonical_strings() -> None:
    ts = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    snap = orderbook_pb2.OrderBook(
        venue="v",
        symbol="BTC-USD",
        sequence=7,
        bids=[
            orderbook_pb2.OrderBookLevel(price="99.50", quantity="1.000"),
            orderbook_pb2.OrderBookLevel(price="100", quantity="2"),
            orderbook_pb2.OrderBookLevel(price="98", quantity="0"),
        ],
        asks=[orderbook_pb2.OrderBookLevel(price="1E+2", quantity="0.5")],
    )
    snap.timestamp.FromDatetime(ts)
    book = OrderBookL2("BTC-USD", "v")
    # 100 bid vs 1E+2 ask: crossed (equal prices count as crossed).
    assert book.apply_snapshot(snap) is ApplyResult.CROSSED
    del snap.asks[:]
    snap.asks.add(price="101.10", quantity="3")
    assert book.apply_snapshot(snap) is ApplyResult.APPLIED
    delta = orderbook_pb2.OrderBookDelta(
        sequence=8,
        previous_sequence=7,
        bids=[orderbook_pb2.OrderBookLevel(price="100.0", quantity="0")],
        asks=[orderbook_pb2.OrderBookLevel(price="100.90", quantity="0.25")],
    )
    assert book.apply_delta(delta) is ApplyResult.APPLIED
    out = book.snapshot(5)
    assert out.venue == "v" and out.symbol == "BTC-USD" and out.sequence == 8
    assert out.timestamp.ToDatetime(tzinfo=UTC) == ts
    assert [(lv.price, lv.quantity) for lv in out.bids] == [("99.5", "1")]
    assert [(lv.price, lv.quantity) for lv in out.asks] == [("100.9", "0.25"), ("101.1", "3")]
    assert book.snapshot(0).bids == [] and book.snapshot(0).asks == []


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "", "1e"])
def test_garbage_raises_parse_error_and_invalidates(bad: str) -> None:
    book = OrderBookL2("BTC-USD")
    with pytest.raises(ParseError):
        book.apply_snapshot_levels([(bad, "1")], [])
    assert book.state is BookState.EMPTY  # a bad snapshot does not half-load
    book.apply_snapshot_levels([("100", "1")], [("101", "1")], sequence=1)
    with pytest.raises(ParseError):
        book.apply_levels([("100", "2"), ("99", bad)], [], sequence=2)
    # Nothing of the garbage update was applied, and the book asks for a resync.
    assert book.best_bid == (D(100), D(1))
    assert book.needs_resync and book.reason is ResyncReason.INVALIDATED


def test_negative_size_is_a_parse_error() -> None:
    book = OrderBookL2("BTC-USD")
    with pytest.raises(ParseError):
        book.apply_snapshot_levels([("100", "-1")], [])
    book.apply_snapshot_levels([("100", "1")], [("101", "1")])
    with pytest.raises(ParseError):
        book.apply_levels([], [("101", "-2")])


def test_invalidate_on_disconnect_refuses_until_snapshot() -> None:
    book = OrderBookL2("BTC-USD")
    book.apply_snapshot_levels([("100", "1")], [("101", "1")], sequence=3)
    book.invalidate(ResyncReason.DISCONNECTED)
    assert book.needs_resync and book.reason is ResyncReason.DISCONNECTED
    assert book.apply_levels([("100", "9")], [], sequence=4) is ApplyResult.REFUSED
    book.apply_snapshot_levels([("99", "1")], [("101", "1")], sequence=10)
    assert book.bids() == [(D(99), D(1))] and not book.needs_resync


# Prices of every precision (1e-1 .. 1e-14) and spelling ("0.5", "0.50", "5E-1"): exercises the
# scaled-integer keys, including raising the scale mid-stream, against the same reference model.
fine_offset = st.tuples(st.integers(1, 9), st.integers(1, 14)).map(lambda t: D(t[0]).scaleb(-t[1]))
spelling = st.sampled_from(["plain", "zeros", "exp"])


def _spell(d: Decimal, how: str) -> str:
    if how == "zeros":
        return format(d, "f") + "000"
    if how == "exp":
        return f"{d:E}"
    return format(d, "f")


fine_level = st.tuples(fine_offset, size, spelling)


@settings(max_examples=100, deadline=None)
@given(
    updates=st.lists(
        st.tuples(st.lists(fine_level, max_size=6), st.lists(fine_level, max_size=6)), max_size=20
    )
)
def test_mixed_precision_prices_match_reference_model(
    updates: list[tuple[list[tuple[Decimal, Decimal, str]], list[tuple[Decimal, Decimal, str]]]],
) -> None:
    book = OrderBookL2("SHIB-USD")
    book.apply_snapshot_levels([("0.9", "1")], [("1.1", "1")], sequence=1)
    bids: dict[Decimal, Decimal] = {D("0.9"): D(1)}
    asks: dict[Decimal, Decimal] = {D("1.1"): D(1)}
    for seq, (b, a) in enumerate(updates, start=2):
        b_in = [(_spell(1 - off, how), str(s)) for off, s, how in b]
        a_in = [(_spell(1 + off, how), str(s)) for off, s, how in a]
        _model_apply(bids, [(1 - off, s) for off, s, _ in b])
        _model_apply(asks, [(1 + off, s) for off, s, _ in a])
        assert book.apply_levels(b_in, a_in, sequence=seq) is ApplyResult.APPLIED
        assert book.bids() == sorted(bids.items(), reverse=True)
        assert book.asks() == sorted(asks.items())


def test_price_spellings_share_one_level_and_too_fine_is_rejected() -> None:
    book = OrderBookL2("X")
    book.apply_snapshot_levels([("0.5", "1")], [("0.50000000001", "2")], sequence=1)
    assert book.apply_levels([("0.50", "3"), ("5E-1", "4")], [], sequence=2) is ApplyResult.APPLIED
    assert book.bids() == [(D("0.5"), D(4))]
    assert book.apply_levels([], [("0.500000000010", "0")], sequence=3) is ApplyResult.APPLIED
    assert book.asks() == []
    with pytest.raises(ParseError):
        book.apply_levels([("1E-31", "1")], [], sequence=4)
    assert book.snapshot(5).bids[0].price == "0.5"  # untouched, but no longer trusted
    assert book.needs_resync and book.reason is ResyncReason.INVALIDATED
