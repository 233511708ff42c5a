from __future__ import annotations

import pytest

from cqc.markets.v1 import instrument_pb2
from cqvx.errors import InvalidRequest
from cqvx.symbols import SymbolMap, parse_symbol


def test_parse_canonical_ids() -> None:
    assert parse_symbol("BTC-USD").instrument_type == instrument_pb2.INSTRUMENT_TYPE_SPOT
    perp = parse_symbol("BTC-USDT-PERP")
    assert (perp.base, perp.quote, perp.instrument_type) == (
        "BTC",
        "USDT",
        instrument_pb2.INSTRUMENT_TYPE_PERPETUAL,
    )
    fut = parse_symbol("ETH-USD-20261225")
    assert fut.expiry == "20261225" and str(fut) == "ETH-USD-20261225"


@pytest.mark.parametrize("bad", ["BTCUSD", "btc-usd", "BTC-USD-PERPX", "", "BTC--USD"])
def test_parse_rejects_non_canonical(bad: str) -> None:
    with pytest.raises(InvalidRequest, match="canonical"):
        parse_symbol(bad)


def test_symbol_map_is_bidirectional_and_names_unknowns() -> None:
    m = SymbolMap("binance", [("BTC-USDT", "BTCUSDT"), ("BTC-USDT-PERP", "BTCUSDT_PERP")])
    assert m.to_venue("BTC-USDT") == "BTCUSDT"
    assert m.to_canonical("BTCUSDT_PERP") == "BTC-USDT-PERP"
    assert "BTC-USDT" in m and len(m) == 2
    with pytest.raises(InvalidRequest, match="ETH-USDT"):
        m.to_venue("ETH-USDT")
