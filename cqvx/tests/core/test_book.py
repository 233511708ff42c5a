"""OrderBookL2: model-based property tests plus the edge cases adapters rely on."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cqc.markets.v1 import orderbook_pb2
from cqvx import _book_side
from cqvx import book as book_mod
from cqvx.book import ApplyResult, BookState, OrderBookL2, ResyncReason, SequenceMode
from cqvx.errors import ParseError
from cqvx.num import dec, dec_str

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
spelling = st.sampled_from(["plain", "zeros", "exp", "dec"])


def _spell(d: Decimal, how: str) -> str | Decimal:
    if how == "dec":
        return d
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


# --------------------------------------------------------------------------------------------------
# Fast paths (price-key memo, size strings kept as given, top-N caches, hand-encoded snapshots) must
# be indistinguishable from the slow path: every read is checked against the reference model and
# every snapshot against the message protobuf itself builds from canonical strings.


def _spell_value(d: Decimal, how: str) -> Decimal | str | int:
    text = format(d, "f")
    if how == "padded":
        return "00" + (text + "0" if "." in text else text + ".000")
    if how == "exp":
        return f"{d:E}"
    if how == "dec":
        return d
    if how == "int" and d == d.to_integral_value():
        return int(d)
    return text


spellings = st.sampled_from(["plain", "padded", "exp", "dec", "int"])
zero_sizes = st.sampled_from(["0", "0.000", "000", "0E-3", D("-0"), D("0.00"), 0])


def _ref_snapshot(
    venue: str,
    symbol: str,
    sequence: int,
    *,
    bids: dict[Decimal, Decimal],
    asks: dict[Decimal, Decimal],
    depth: int | None,
) -> orderbook_pb2.OrderBook:
    msg = orderbook_pb2.OrderBook(venue=venue, symbol=symbol, sequence=sequence)
    for p, s in sorted(bids.items(), reverse=True)[:depth]:
        msg.bids.add(price=dec_str(p), quantity=dec_str(s))
    for p, s in sorted(asks.items())[:depth]:
        msg.asks.add(price=dec_str(p), quantity=dec_str(s))
    return msg


def _spelled_levels(lo: int, hi: int) -> st.SearchStrategy[list[tuple[Decimal, object, object, Decimal]]]:
    """(model price, price input, size input, model size) with every spelling of both numbers."""

    def build(t: tuple[int, str, int, str, object]) -> tuple[Decimal, object, object, Decimal]:
        cents, p_how, lots, s_how, zero = t
        price = D(cents) / 100 + 100
        if lots == 0:
            return price, _spell_value(price, p_how), zero, D(0)
        qty = D(lots) / 1000
        return price, _spell_value(price, p_how), _spell_value(qty, s_how), qty

    one = st.tuples(st.integers(lo, hi), spellings, st.integers(0, 3000), spellings, zero_sizes).map(build)
    return st.lists(one, max_size=8)


read_op = st.tuples(
    st.sampled_from(["bids", "asks", "snapshot", "best"]), st.one_of(st.none(), st.integers(0, 12))
)
# A size change of a level the book holds (by rank): the top caches patch such levels in place.
resize_op = st.tuples(st.booleans(), st.integers(0, 15), st.integers(1, 3000))
op = st.one_of(
    st.tuples(st.just("update"), st.tuples(_spelled_levels(1, 50), _spelled_levels(51, 100))),
    st.tuples(st.just("read"), read_op),
    st.tuples(st.just("resize"), resize_op),
)


@settings(max_examples=150, deadline=None)
@given(snapshot=st.tuples(_spelled_levels(1, 50), _spelled_levels(51, 100)), ops=st.lists(op, max_size=40))
def test_fast_paths_and_caches_match_model_and_protobuf(
    snapshot: tuple[
        list[tuple[Decimal, object, object, Decimal]], list[tuple[Decimal, object, object, Decimal]]
    ],
    ops: list[tuple[str, Any]],
) -> None:
    book = OrderBookL2("BTC-USD", "v")
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}

    def feed(
        levels: list[tuple[Decimal, object, object, Decimal]], model: dict[Decimal, Decimal]
    ) -> list[object]:
        _model_apply(model, [(p, s) for p, _, _, s in levels])
        return [(pi, si) for _, pi, si, _ in levels]

    b_in = feed(snapshot[0], bids)
    a_in = feed(snapshot[1], asks)
    assert book.apply_snapshot_levels(b_in, a_in, sequence=1) is ApplyResult.APPLIED  # type: ignore[arg-type]
    seq = 1
    for kind, arg in ops:
        if kind == "update":
            b, a = arg
            seq += 1
            result = book.apply_levels(feed(b, bids), feed(a, asks), sequence=seq)  # type: ignore[arg-type]
            assert result is ApplyResult.APPLIED
            continue
        if kind == "resize":
            is_bid, rank, lots = arg
            model = bids if is_bid else asks
            ranked = sorted(model, reverse=is_bid)
            if rank < len(ranked):
                price, qty = ranked[rank], D(lots) / 1000
                model[price] = qty
                seq += 1
                level = [(format(price, "f"), format(qty, "f"))]
                result = book.apply_levels(level if is_bid else [], [] if is_bid else level, sequence=seq)
                assert result is ApplyResult.APPLIED
            continue
        what, depth = arg
        want_b = sorted(bids.items(), reverse=True)[:depth]
        want_a = sorted(asks.items())[:depth]
        if what == "bids":
            got = book.bids(depth)
            assert got == want_b
            assert all(type(p) is Decimal and type(s) is Decimal for p, s in got)
            got.clear()  # the caller's list: mutating it must not reach the book's cache
        elif what == "asks":
            got = book.asks(depth)
            assert got == want_a
            assert all(type(p) is Decimal and type(s) is Decimal for p, s in got)
            got.clear()
        elif what == "best":
            assert book.best_bid == (max(bids.items()) if bids else None)
            assert book.best_ask == (min(asks.items()) if asks else None)
        else:
            snap = book.snapshot(depth)
            ref = _ref_snapshot("v", "BTC-USD", seq, bids=bids, asks=asks, depth=depth)
            assert snap == ref
            assert snap.SerializeToString(deterministic=True) == ref.SerializeToString(deterministic=True)
            del snap.bids[:]  # a fresh message each time: mutating it changes nothing in the book
    assert book.bids() == sorted(bids.items(), reverse=True)
    assert book.asks() == sorted(asks.items())
    assert book.snapshot(None) == _ref_snapshot("v", "BTC-USD", seq, bids=bids, asks=asks, depth=None)


text_numbers = st.text(alphabet="0123456789.-+eE_ \u0663\u00b2", max_size=10)


@settings(max_examples=200, deadline=None)
@given(text=text_numbers)
@example(text="\u0663")  # an Arabic-Indic 3: Decimal reads it as 3, the book must refuse it
@example(text="1.\u0663")
@example(text="\u00b2")  # superscript 2: str.isdigit() says yes, Decimal says no
@example(text="0.000")
@example(text="007.50")
@example(text="9" * 40)  # the largest number a plain size string may spell on the fast path
@example(text="9" * 41)  # >= 1e40: refused, whichever way it comes
@example(text="0." + "0" * 45 + "1")  # long but small: accepted both ways
@example(text="1E+500000")  # turning this into an int key would take seconds
def test_plain_string_check_and_canonical_form_agree_with_decimal(text: str) -> None:
    if _book_side._is_plain(text):
        d = Decimal(text)  # everything the fast check accepts, Decimal accepts
        assert d >= 0
        assert _book_side._canon_plain(text) == dec_str(d)
        assert (not text.strip("0.")) == (d == 0)
    # The wire grammar is cqvx.num's: what dec() refuses (non-ASCII digits, whitespace, "_", NaN,
    # absurd exponents) the book refuses too, even where Python's Decimal() would read it.
    try:
        d = dec(text)
        ok = True
    except ParseError:
        ok = False
    # Fed as a size and as a price (twice: the second time the price key comes from the memo), a
    # string and its Decimal give the same book, or are both refused.
    for role in ("size", "price"):
        fast = OrderBookL2("X")
        # The snapshot's "100" puts that price in the key memo: the size then meets the fast check.
        fast.apply_snapshot_levels([("100", "1")], [("1E+39", "1")], sequence=1)
        fast_in = [("100", text)] if role == "size" else [(text, "2")]
        if not ok:
            with pytest.raises(ParseError):
                fast.apply_levels(fast_in, [], sequence=2)
            continue
        slow = OrderBookL2("X")
        slow.apply_snapshot_levels([("100", "1")], [("1E+39", "1")], sequence=1)
        slow_in = [("100", d)] if role == "size" else [(d, "2")]
        for seq in (2, 3):
            outcomes: list[ApplyResult | None] = []
            for bk, levels in ((fast, fast_in), (slow, slow_in)):
                try:
                    outcomes.append(bk.apply_levels(levels, [], sequence=seq))
                except ParseError:
                    outcomes.append(None)
            assert outcomes[0] is outcomes[1]
            assert fast.state is slow.state
            assert fast.bids() == slow.bids()
            assert fast.snapshot(5) == slow.snapshot(5)
            if outcomes[0] is None:
                break


def test_snapshot_encoding_edges_match_protobuf() -> None:
    book = OrderBookL2("ÉTH-€", "vénue")
    long_price = "123456789012345678901234567890.123456789012345678"  # long strings: 2-byte lengths
    long_size = "0." + "1" * 97  # 99 characters: near cqvx.num.MAX_LENGTH, a 2-byte level length
    book.apply_snapshot_levels([(long_price, long_size), ("5", "1")], [("1" + "0" * 39, "0.5")])
    ref = orderbook_pb2.OrderBook(venue="vénue", symbol="ÉTH-€")
    ref.bids.add(price=long_price, quantity=long_size)
    ref.bids.add(price="5", quantity="1")
    ref.asks.add(price="1" + "0" * 39, quantity="0.5")
    assert book.snapshot(None) == ref and not book.snapshot(3).HasField("timestamp")
    for seconds, nanos in [(0, 0), (-1, 999_999_999), (1_700_000_000, 5), (253402300799, 0)]:
        for seq in (0, 1, 127, 128, 2**63, 2**64 - 1):
            ts = Timestamp(seconds=seconds, nanos=nanos)
            book.apply_snapshot_levels([("5", "1")], [("6", "2")], sequence=seq, timestamp=ts)
            want = orderbook_pb2.OrderBook(venue="vénue", symbol="ÉTH-€", sequence=seq)
            want.timestamp.CopyFrom(ts)
            want.bids.add(price="5", quantity="1")
            want.asks.add(price="6", quantity="2")
            got = book.snapshot(20)
            assert got == want and got.HasField("timestamp")
            assert got.SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True)
    book.venue = "other"  # public attributes: the next snapshot follows them
    assert book.snapshot(1).venue == "other"
    book.apply_snapshot_levels([("5", "1")], [("6", "2")], sequence=2**64)
    with pytest.raises(ValueError):  # out of uint64 range: protobuf refuses it, as before
        book.snapshot(1)


def test_top_cache_follows_updates_at_and_around_the_boundary() -> None:
    book = OrderBookL2("X")
    book.apply_snapshot_levels(
        [(str(100 - i), "1") for i in range(10)], [(str(200 + i), "1") for i in range(10)], sequence=1
    )
    seq = 1

    def step(bids: list[tuple[str, str]], asks: tuple[tuple[str, str], ...] = ()) -> None:
        nonlocal seq
        seq += 1
        assert book.apply_levels(bids, asks, sequence=seq) is ApplyResult.APPLIED

    def top3() -> list[tuple[str, str]]:
        return [(lv.price, lv.quantity) for lv in book.snapshot(3).bids]

    assert top3() == [("100", "1"), ("99", "1"), ("98", "1")]
    assert book.bids(3) == [(D(100), D(1)), (D(99), D(1)), (D(98), D(1))]
    step([("99", "4")])  # a size change inside the cached top
    assert book.bids(3) == [(D(100), D(1)), (D(99), D(4)), (D(98), D(1))]
    assert top3() == [("100", "1"), ("99", "4"), ("98", "1")]
    step([("99", "1")])
    step([("97", "5")])  # below the cached top: the cache stays right
    assert top3() == [("100", "1"), ("99", "1"), ("98", "1")]
    step([("98", "7")])  # the boundary level itself
    assert top3() == [("100", "1"), ("99", "1"), ("98", "7")]
    assert book.bids(2) == [(D(100), D(1)), (D(99), D(1))]
    step([("99", "0")])  # removing a level pulls the next one up
    assert top3() == [("100", "1"), ("98", "7"), ("97", "5")]
    step([("100.5", "2")])  # a new best level
    assert top3() == [("100.5", "2"), ("100", "1"), ("98", "7")]
    assert book.bids(5)[3:] == [(D(97), D(5)), (D(96), D(1))]
    step([("96", "0"), ("95", "0"), ("94", "0"), ("93", "0"), ("92", "0"), ("91", "0")])
    assert book.bids(5) == [(D("100.5"), D(2)), (D(100), D(1)), (D(98), D(7)), (D(97), D(5))]
    step([("1", "3")])  # a short side: any new level joins the cached top
    assert book.bids(5)[-1] == (D(1), D(3))
    assert top3() == [("100.5", "2"), ("100", "1"), ("98", "7")]
    step([("100.25", "1")], (("199.999999999", "4"),))  # a finer price rescales every key
    assert top3() == [("100.5", "2"), ("100.25", "1"), ("100", "1")]
    assert [(lv.price, lv.quantity) for lv in book.snapshot(2).asks] == [("199.999999999", "4"), ("200", "1")]


def test_price_key_memo_is_bounded_and_stays_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(book_mod, "_KEY_MEMO_MAX", 8)
    book = OrderBookL2("X")
    book.apply_snapshot_levels([], [("1000", "1")], sequence=1)
    model: dict[Decimal, Decimal] = {}
    for seq in range(2, 200):
        price = D(seq % 37) / 4 + 1
        size = D(seq % 5)
        _model_apply(model, [(price, size)])
        assert book.apply_levels([(format(price, "f"), str(size))], [], sequence=seq) is ApplyResult.APPLIED
        assert len(book._keymemo) <= 8
    assert book.bids() == sorted(model.items(), reverse=True)


@pytest.mark.parametrize(
    "levels",
    [
        [("1" * 150, "1")],  # more digits than any price has: no decimal.Inexact leaking out
        [("1E+999999999", "1")],
        [("1E+500000", "1")],  # refused quickly, not turned into a 500000-digit int
        [(D("1E+500000"), "1")],
        [("100", "1E+500000")],
        [("100", D("1E+500000"))],
        [("1" + "0" * 40, "1")],
        [("100", "1" + "0" * 40)],
        [("100",)],  # not a pair
        [("100", "1", "2")],
        ["100"],
        [(D("sNaN"), "1")],
        [("100", D("sNaN"))],
        [(["100"], "1")],
    ],
)
def test_malformed_levels_are_parse_errors_and_leave_the_book(levels: list[object]) -> None:
    book = OrderBookL2("X")
    with pytest.raises(ParseError):
        book.apply_snapshot_levels(levels, [])  # type: ignore[arg-type]
    assert book.state is BookState.EMPTY
    book.apply_snapshot_levels([("99", "1")], [("101", "1")], sequence=1)
    before = book.snapshot(None)
    with pytest.raises(ParseError):
        book.apply_levels([("98", "1"), *levels], [], sequence=2)  # type: ignore[list-item]
    assert book.snapshot(None) == before
    assert book.needs_resync and book.reason is ResyncReason.INVALIDATED


def test_numbers_of_other_types_are_stored_as_decimals() -> None:
    book = OrderBookL2("X")
    ints: list[Any] = [(100, 2)]
    assert book.apply_snapshot_levels(ints, [(D("100.5"), "1E+1")], sequence=1) is ApplyResult.APPLIED
    ints = [(99, "3")]
    assert book.apply_levels(ints, [], sequence=2) is ApplyResult.APPLIED
    for p, s in (*book.bids(), *book.asks()):
        assert type(p) is Decimal and type(s) is Decimal
    assert book.asks() == [(D("100.5"), D(10))]
    assert [(lv.price, lv.quantity) for lv in book.snapshot(5).asks] == [("100.5", "10")]
