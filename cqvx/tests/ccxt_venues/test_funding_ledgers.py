"""The funding-fee ledgers of OKX, Bitget and Gate (the quirk table's ``LedgerRead`` lines, read by
:func:`cqvx.venues.ccxt.parse.parse_ledger_page`): the canonical payloads in ``fixtures/`` (documented
fields, see SOURCES.md) parse to the funding rows of the one instrument, signed + received; the fakes
answer in those shapes (their rows carry no key the documented row lacks, and every key the adapter
reads); garbage is only ever a ParseError."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import order_pb2
from cqvx.errors import ParseError
from cqvx.testing.fake_ccxt.harness import CcxtFakeHarness
from cqvx.venues.ccxt import CcxtClient, parse
from cqvx.venues.ccxt.quirks import LedgerRead, quirks_for

FIX = Path(__file__).parent / "fixtures"
# venue -> (fixture, the BTC perpetual's venue id)
CASES = {
    "okx": ("okx_bills_funding.json", "BTC-USDT-SWAP"),
    "bitget": ("bitget_account_bill_funding.json", "BTCUSDT"),
    "gate": ("gate_account_book_funding.json", "BTC_USDT"),
}


def _read(venue: str) -> LedgerRead:
    read = quirks_for(venue).ledger
    assert read is not None and quirks_for(venue).funding_payments == "ledger"
    return read


def _rows(venue: str, raw: Any) -> list[dict[str, Any]]:
    for step in _read(venue).rows_path:
        raw = raw[step]
    assert isinstance(raw, list)
    return raw


@pytest.mark.parametrize("venue", sorted(CASES))
def test_the_documented_ledger_reads_as_the_instruments_funding_signed_received(venue: str) -> None:
    fixture, venue_id = CASES[venue]
    raw = json.loads((FIX / fixture).read_text())
    rows, count, cursor = parse.parse_ledger_page(raw, _read(venue), venue_id, "USDT", venue)
    assert count == 4  # every row counts for paging, whatever its type
    assert [(t.amount, t.asset) for t in rows] == [("0.0215", "USDT"), ("-0.0125", "USDT")]
    assert [t.timestamp.seconds for t in rows] == [1714032000, 1714003200]
    assert rows[0].transaction_id != rows[1].transaction_id
    if venue == "gate":  # seconds with a fraction, kept to the microsecond
        assert rows[0].timestamp.nanos == 123_456_000
    # the next page's cursor: the last row's id (OKX "after"), the reply's endId (Bitget, the same
    # id); Gate pages by offset (the row count above)
    assert cursor == _rows(venue, raw)[-1][_read(venue).id_key]


@pytest.mark.parametrize("venue", sorted(CASES))
async def test_the_fakes_answer_in_the_documented_shape(venue: str) -> None:
    fixture, venue_id = CASES[venue]
    documented = set(_rows(venue, json.loads((FIX / fixture).read_text()))[0])
    read = _read(venue)
    harness = CcxtFakeHarness(venue)
    await harness.start()
    client = await harness.new_client()
    assert isinstance(client, CcxtClient)
    try:
        await client.start()
        coid = "t-ledger1" if venue == "gate" else "ledger1"
        await client.place_order(harness.position_order(coid, order_pb2.ORDER_SIDE_BUY, Decimal("0.01")))
        await harness.settle_funding()
        market = client._ex.markets[client._ex.markets_by_id[venue_id][0]["symbol"]]
        fill = {k: v for k, v in market.items() if isinstance(v, str)}
        params = dict(read.params) | {p: t.format_map(fill) for p, t in read.market_params}
        raw = await getattr(client._ex, read.method)(params)
        served = _rows(venue, raw)
        assert served, "the fake listed no funding row after a settlement"
        for row in served:
            assert set(row) <= documented, f"undocumented keys {set(row) - documented}"
            wanted = {read.id_key, read.amount_key, read.time_key, read.type_key, read.symbol_key}
            assert wanted - {""} <= set(row)
            assert row[read.type_key] == read.type_value and row[read.symbol_key] == venue_id
    finally:
        await client.aclose()
        await harness.close()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(CASES)), _json, st.dictionaries(st.text(max_size=10), _json, max_size=4))
def test_ledger_garbage_raises_only_parse_error(venue: str, raw: Any, patch: dict[str, Any]) -> None:
    fixture, venue_id = CASES[venue]
    read = _read(venue)
    doc = json.loads((FIX / fixture).read_text())
    row = _rows(venue, doc)[0]
    keys = [read.id_key, read.amount_key, read.time_key, read.type_key, read.symbol_key, read.asset_key]
    patched = row | {k: v for k, v in zip(keys, patch.values(), strict=False) if k}
    wrapped: Any = [patched]
    for step in reversed(read.rows_path):
        wrapped = {step: wrapped}
    for candidate in (raw, wrapped, {read.rows_path[0]: raw} if read.rows_path else [raw]):
        with contextlib.suppress(ParseError):
            parse.parse_ledger_page(candidate, read, venue_id, "USDT", venue)


@pytest.mark.parametrize("venue", sorted(CASES))
async def test_every_page_and_window_is_read(venue: str) -> None:
    """More settlements than one page holds (limit 100), over more than Bitget's 30-day window: every
    one is read once, oldest first, as the venue recorded it."""
    harness = CcxtFakeHarness(venue)
    await harness.start()
    client = await harness.new_client()
    assert isinstance(client, CcxtClient)
    try:
        await client.start()
        coid = "t-pages1" if venue == "gate" else "pages1"
        await client.place_order(harness.position_order(coid, order_pb2.ORDER_SIDE_BUY, Decimal("0.01")))
        start = harness.sim.clock.now()
        for _ in range(105):
            await harness.settle_funding()
        truth = [p for p in harness.sim.funding_payments if p.symbol == harness.funding_symbol]
        assert len(truth) == 105
        paid = await client.get_funding_payments(harness.funding_symbol, start=start)
        assert [t.timestamp.ToNanoseconds() // 1_000_000 for t in paid] == [
            p.at_ns // 1_000_000 for p in truth
        ]
        assert [Decimal(t.amount) for t in paid] == [-p.paid for p in truth]
        assert len({t.transaction_id for t in paid}) == 105
    finally:
        await client.aclose()
        await harness.close()
