"""OrderBookL2's one-level fast path and top-N read cache against a reference Decimal book.

Most venue messages at high rates carry one level; the book validates and writes such a level in
place (cqvx.book).  These properties pin that path to the same results as a plain dict of Decimals,
for every spelling of the numbers and with reads at a fixed depth interleaved (the cached top).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqvx.book import ApplyResult, BookState, OrderBookL2, ResyncReason
from cqvx.errors import ParseError

D = Decimal
DEPTH = 5

# A size as a venue may spell it: plain, padded, zero in several forms, or (rarely) an exponent or a
# Decimal, which must take the exact path and still agree.
size_text = st.one_of(
    st.integers(1, 5000).map(lambda i: f"{i // 1000}.{i % 1000:03d}"),
    st.integers(1, 50).map(str),
    st.sampled_from(["0", "0.0", "0.000", "00", "0."]),
    st.integers(1, 50).map(lambda i: f"{i}E-1"),
    st.integers(1, 50).map(lambda i: D(i) / 4),
)
# (is bid, cents from the mid, size): bids below 100.00, asks above, never crossing.
one_level = st.tuples(st.booleans(), st.integers(1, 12), size_text)
step = st.one_of(one_level, st.just("read"))


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(step, max_size=80))
def test_one_level_messages_match_a_decimal_reference(steps: list[object]) -> None:
    book = OrderBookL2("X", "v")
    bids: dict[Decimal, Decimal] = {D("99.99"): D(1)}
    asks: dict[Decimal, Decimal] = {D("100.01"): D(1)}
    assert book.apply_snapshot_levels([("99.99", "1")], [("100.01", "1")], sequence=1) is ApplyResult.APPLIED
    seq = 1
    for item in steps:
        if item == "read":
            assert book.bids(DEPTH) == sorted(bids.items(), reverse=True)[:DEPTH]
            assert book.asks(DEPTH) == sorted(asks.items())[:DEPTH]
            continue
        assert isinstance(item, tuple)
        is_bid, cents, size = item
        price = D(100) + (-cents if is_bid else cents) / D(100)
        # The same price spelled twice ways: the memo must map both to one level.
        price_text = format(price, "f") if cents % 2 else format(price, "f") + "0"
        qty = size if type(size) is Decimal else D(size)
        model = bids if is_bid else asks
        if qty:
            model[price] = qty
        else:
            model.pop(price, None)
        seq += 1
        level = [(price_text, size)]
        result = book.apply_levels(level if is_bid else [], [] if is_bid else level, sequence=seq)
        assert result is ApplyResult.APPLIED
        got_b = book.bids(DEPTH)
        got_b.clear()  # the caller's copy: the cache must not see it
    assert book.bids() == sorted(bids.items(), reverse=True)
    assert book.asks() == sorted(asks.items())
    assert book.bids(DEPTH) == sorted(bids.items(), reverse=True)[:DEPTH]
    assert all(type(p) is Decimal and type(s) is Decimal for p, s in book.bids())


@pytest.mark.parametrize("bad", ["-1", "1e", "", ".", "\u0663", " 1", "1_0", "nan", "1" * 41])
def test_one_level_garbage_size_raises_and_invalidates(bad: str) -> None:
    book = OrderBookL2("X")
    book.apply_snapshot_levels([("99", "1")], [("101", "1")], sequence=1)
    book.bids(DEPTH)
    book.apply_levels([("99", "2")], [], sequence=2)  # the price is remembered now
    before = book.snapshot(None)
    with pytest.raises(ParseError):
        book.apply_levels([("99", bad)], [], sequence=3)
    assert book.snapshot(None) == before
    assert book.needs_resync and book.reason is ResyncReason.INVALIDATED


def test_one_level_messages_keep_sequence_and_crossed_checks() -> None:
    book = OrderBookL2("X")
    book.apply_snapshot_levels([("99", "1")], [("101", "1")], sequence=1)
    assert book.apply_levels([("99", "2")], [], sequence=2) is ApplyResult.APPLIED
    assert book.apply_levels([("99", "3")], [], sequence=2) is ApplyResult.STALE
    assert book.bids() == [(D(99), D(2))]
    assert book.apply_levels([("101", "5")], [], sequence=3) is ApplyResult.CROSSED
    assert book.needs_resync and book.reason is ResyncReason.CROSSED
    assert book.apply_levels([("98", "1")], [], sequence=4) is ApplyResult.REFUSED
    book.apply_snapshot_levels([("99", "1")], [("101", "1")], sequence=10)
    assert book.apply_levels([], [("101", "2")], sequence=12) is ApplyResult.GAP
    assert book.asks() == [(D(101), D(1))]


# One op of a random session against both entry points: a one-level update (side, cents from 100,
# spelling, size), a new snapshot, a finer price (the key scale grows), a skipped sequence number.
spelled_level = st.tuples(st.booleans(), st.integers(1, 12), st.integers(0, 2), size_text)
session_op = st.one_of(
    spelled_level,
    spelled_level,
    spelled_level,
    st.just("snapshot"),
    st.just("finer"),
    st.just("gap"),
    st.just("read"),
)


def _spell(price: Decimal, how: int) -> str:
    text = format(price, "f")
    return (text, text + "0", text + "00")[how]


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(session_op, max_size=120))
def test_apply_level_matches_apply_levels_and_a_reference(ops: list[object]) -> None:
    """apply_level and apply_levels give the same results and books, equal to a dict of Decimals.

    Spellings vary per message, levels are removed and come back (a removed level's memo entry
    must never be written through), snapshots replace the book, a finer price rescales the keys.
    """
    one = OrderBookL2("X")
    many = OrderBookL2("X")
    model: dict[bool, dict[Decimal, Decimal]] = {}
    seq = 0
    size: str | Decimal

    def snapshot() -> None:
        nonlocal seq
        seq += 1
        model[True] = {D("99.99"): D(1), D("99.98"): D(2)}
        model[False] = {D("100.01"): D(1)}
        for book in (one, many):
            assert (
                book.apply_snapshot_levels([("99.99", "1"), ("99.98", "2")], [("100.01", "1")], sequence=seq)
                is ApplyResult.APPLIED
            )

    snapshot()
    for op in ops:
        if op == "snapshot":
            snapshot()
            continue
        if op == "read":
            for book in (one, many):
                assert book.bids(DEPTH) == sorted(model[True].items(), reverse=True)[:DEPTH]
                assert book.asks(DEPTH) == sorted(model[False].items())[:DEPTH]
            continue
        if op == "gap":
            seq += 2
            r1 = one.apply_level(True, "99.99", "1", seq)
            r2 = many.apply_levels([("99.99", "1")], [], sequence=seq)
            assert r1 is r2 is ApplyResult.GAP
            snapshot()
            continue
        if op == "finer":
            is_bid, price, size = True, D("99.995"), "0.5"
            text = "99.995"
        else:
            assert isinstance(op, tuple)
            is_bid, cents, how, size = op
            price = D(100) + (-cents if is_bid else cents) / D(100)
            text = _spell(price, how)
        qty = size if type(size) is Decimal else D(size)
        if qty:
            model[is_bid][price] = qty
        else:
            model[is_bid].pop(price, None)
        seq += 1
        level = [(text, size)]
        r1 = one.apply_level(is_bid, text, size, seq)
        r2 = many.apply_levels(level if is_bid else [], [] if is_bid else level, sequence=seq)
        assert r1 is r2 is ApplyResult.APPLIED
    for book in (one, many):
        assert book.bids() == sorted(model[True].items(), reverse=True)
        assert book.asks() == sorted(model[False].items())
        assert book.last_sequence == seq and not book.needs_resync


def test_apply_level_never_writes_through_a_removed_level() -> None:
    book = OrderBookL2("X")
    book.apply_snapshot_levels([("99.0", "1")], [("101", "1")], sequence=1)
    assert book.apply_level(True, "99.0", "0", 2) is ApplyResult.APPLIED  # removed
    assert book.apply_level(True, "99.00", "3", 3) is ApplyResult.APPLIED  # back, other spelling
    assert book.apply_level(True, "99.0", "4", 4) is ApplyResult.APPLIED  # first spelling again
    assert book.bids() == [(D(99), D(4))]
    assert book.apply_level(True, "99.00", "0", 5) is ApplyResult.APPLIED
    assert book.apply_level(True, "99.0", "5", 6) is ApplyResult.APPLIED
    assert book.bids() == [(D(99), D(5))]
    assert book.depth == (1, 1)


def test_apply_level_sequence_and_state_checks() -> None:
    book = OrderBookL2("X")
    assert book.apply_level(True, "99", "1", 1) is ApplyResult.REFUSED  # no snapshot yet
    assert book.apply_level(True, "99", "1") is ApplyResult.REFUSED  # nor without a sequence
    book.apply_snapshot_levels([("99", "1")], [("101", "1")], sequence=1)
    assert book.apply_level(True, "99", "2", 2) is ApplyResult.APPLIED
    assert book.apply_level(True, "99", "3", 2) is ApplyResult.STALE
    assert book.apply_level(True, "99", "3") is ApplyResult.APPLIED  # none given: no check
    assert book.last_sequence == 2
    # Writing the public attributes re-arms (or disarms) the one-compare sequence check.
    book.last_sequence = 10
    assert book.apply_level(True, "99", "4", 3) is ApplyResult.STALE
    assert book.apply_level(True, "99", "4", 11) is ApplyResult.APPLIED
    book.invalidate()
    assert book.apply_level(True, "99", "5", 12) is ApplyResult.REFUSED
    book.state = BookState.LIVE
    assert book.apply_level(True, "99", "5", 12) is ApplyResult.APPLIED
    assert book.apply_level(True, "99", "6", 14) is ApplyResult.GAP
    assert book.apply_level(True, "99", "6", 15) is ApplyResult.REFUSED
    assert book.bids() == [(D(99), D(5))]
    with pytest.raises(ParseError):
        book.apply_snapshot_levels([("99", "1")], [("101", "x")], sequence=20)
    assert book.apply_level(False, "101", "1", 21) is ApplyResult.REFUSED


@pytest.mark.parametrize("bad", ["-1", "1e", "", ".", "\u0663", " 1", "1_0", "nan", "1" * 41, "1..2"])
def test_apply_level_garbage_size_raises_and_invalidates(bad: str) -> None:
    book = OrderBookL2("X")
    book.apply_snapshot_levels([("99", "1")], [("101", "1")], sequence=1)
    before = book.snapshot(None)
    with pytest.raises(ParseError):
        book.apply_level(True, "99", bad, 2)
    assert book.snapshot(None) == before
    assert book.needs_resync and book.reason is ResyncReason.INVALIDATED
