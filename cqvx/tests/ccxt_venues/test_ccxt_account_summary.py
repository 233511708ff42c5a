"""Account summary (margin balance, margin mode) of OKX, Bitget and Gate through unmodified ccxt over
loopback against the fakes, whose account replies are computed from the simulated venue: with an open
position and a mark move, the margin balance is the sim's wallet + unrealized PnL.  And the quirk
lines are strict: a missing or garbage key in the venue's reply is a ParseError, never 0.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqc.portfolio.v1 import position_pb2
from cqc.venues.v1 import order_pb2
from cqvx.errors import ParseError
from cqvx.secrets import Secret
from cqvx.testing.fake_ccxt import _sim_shapes as sim_shapes
from cqvx.testing.fake_ccxt._base import SimFake
from cqvx.testing.fake_ccxt.gate import USER_ID
from cqvx.testing.fake_ccxt.harness import MARKET_TYPES, fake_class
from cqvx.testing.harnesses import quiet_sim_config
from cqvx.venues.ccxt import CcxtClient, CcxtConfig
from cqvx.venues.ccxt.account import SUMMARY_FIELDS, settle_currency
from cqvx.venues.ccxt.quirks import quirks_for
from cqvx.venues.sim import SimClock, SimVenue

KEY, SECRET, PASSPHRASE = "k-summary", "s-summary", "p-summary"
SYMBOL = "BTC-USDT-PERP"
VENUES = ["okx", "bitget", "gate"]
# venue -> the keys its line reads (in the body the path leads to), as the docs name them.
READS = {
    "okx": ("eq", "cashBal", "availEq", "upl"),
    "bitget": ("accountEquity", "available", "unrealizedPL"),
    "gate": ("total", "unrealised_pnl", "available", "position_margin", "order_margin"),
}
# venue -> the fields the line leaves unset (not documented for the mode; see quirks.py).
UNSET = {
    "okx": {"initial_margin", "maintenance_margin"},
    "bitget": {"initial_margin", "maintenance_margin"},
    "gate": {"maintenance_margin"},
}


@pytest.fixture
async def fakes() -> AsyncIterator[list[SimFake]]:
    started: list[SimFake] = []
    yield started
    for fake in started:
        await fake.stop()


async def _start(fakes: list[SimFake], venue: str, settle: str = "") -> tuple[SimFake, CcxtClient]:
    fake = fake_class(venue)(KEY, SECRET, PASSPHRASE, sim=SimVenue(quiet_sim_config(), clock=SimClock()))
    await fake.start()
    fakes.append(fake)
    config = CcxtConfig(
        venue,
        Secret(KEY),
        Secret(SECRET),
        Secret(PASSPHRASE),
        uid=USER_ID if venue == "gate" else "",
        market_types=MARKET_TYPES[venue],
        settle=settle,
        rest_url=fake.url,
        read_retries=0,
        timeout_s=5,
        rate_limit=False,
    )
    client = CcxtClient(config)
    await client.start()
    return fake, client


async def _open_long(fake: SimFake, client: CcxtClient, venue: str) -> None:
    """A filled buy (a position) plus a resting buy (order margin), then the mark moves up."""
    book = await fake.sim.get_order_book(SYMBOL, 1)
    ask, bid = Decimal(book.asks[0].price), Decimal(book.bids[0].price)
    prefix = "t-" if venue == "gate" else ""
    for coid, price in (("taker1", ask), ("rest1", bid - 100)):
        await client.place_order(
            order_pb2.Order(
                symbol=SYMBOL,
                client_order_id=prefix + coid,
                side=order_pb2.ORDER_SIDE_BUY,
                order_type=order_pb2.ORDER_TYPE_LIMIT,
                quantity="0.01",
                price=str(price),
            )
        )
    fake.sim.set_price(SYMBOL, ask + 500)


@pytest.mark.parametrize("venue", VENUES)
async def test_margin_balance_is_wallet_plus_upnl_from_the_sim(fakes: list[SimFake], venue: str) -> None:
    fake, client = await _start(fakes, venue)
    try:
        await _open_long(fake, client, venue)
        summary = await client.get_account_summary()
        m = await sim_shapes.margin(fake.sim, fake.perp_symbols())
        assert m.upl > 0 and m.position_im > 0 and m.order_im > 0, "the scenario must hold a position"
        assert Decimal(summary.unrealized_pnl) == m.upl
        assert Decimal(summary.wallet_balance) == m.wallet
        assert Decimal(summary.margin_balance) == m.wallet + m.upl
        assert Decimal(summary.available_balance) == m.available
        if venue == "gate":
            assert Decimal(summary.initial_margin) == m.position_im + m.order_im
        for name in UNSET[venue]:
            assert getattr(summary, name) == "", f"{name} is not documented for {venue}: unset"
        assert summary.margin_modes.get(SYMBOL) in (
            position_pb2.MARGIN_MODE_CROSS,
            position_pb2.MARGIN_MODE_ISOLATED,
        )
        assert summary.margin_mode == summary.margin_modes[SYMBOL]
    finally:
        await client.aclose()


@pytest.mark.parametrize("venue", VENUES)
def test_each_line_names_the_documented_fields_only(venue: str) -> None:
    keys = dict(quirks_for(venue).summary_keys)
    assert set(keys) == set(SUMMARY_FIELDS) - UNSET[venue]
    named = {k.removeprefix("-") for v in keys.values() for k in ((v,) if isinstance(v, str) else v)}
    assert named == set(READS[venue])


_GARBAGE = st.one_of(
    st.none(),
    st.just(""),
    st.booleans(),
    st.text(max_size=8).filter(lambda t: not t.strip().lstrip("-").replace(".", "", 1).isdigit()),
    st.just("NaN"),
    st.just("1e999999"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_DROP = object()
PATHS = {
    "okx": "/api/v5/account/balance",
    "bitget": "/api/v2/mix/account/accounts",
    "gate": "/api/v4/futures/usdt/accounts",
}


async def _honest(fake: SimFake, venue: str) -> Any:
    """The fake's own reply to the account read (its envelope), to corrupt one key of."""
    dialect: Any = fake
    if venue == "okx":
        return dialect.ok(await dialect._balance(None, {}))
    if venue == "bitget":
        return dialect.ok(await dialect._accounts(None, {"productType": "USDT-FUTURES"}))
    request = make_mocked_request("GET", PATHS[venue], match_info={"settle": "usdt"})
    return dialect.ok(await dialect._accounts(request, {}))


def _usdt_rows(venue: str, body: Any) -> list[dict[str, Any]]:
    if venue == "okx":
        return [d for d in body["data"][0]["details"] if d["ccy"] == "USDT"]
    if venue == "bitget":
        return [r for r in body["data"] if r["marginCoin"] == "USDT"]
    return [body]


def _cases(venue: str) -> list[tuple[str, object]]:
    """Hypothesis draws (key, garbage-or-dropped) pairs; the async test then serves each one."""
    drawn: list[tuple[str, object]] = []

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(key=st.sampled_from(READS[venue]), value=st.one_of(_GARBAGE, st.just(_DROP)))
    def draw(key: str, value: object) -> None:
        drawn.append((key, value))

    draw()
    drawn += [(key, _DROP) for key in READS[venue]] + [(key, "") for key in READS[venue]]
    return drawn


@pytest.mark.parametrize("venue", VENUES)
async def test_garbage_or_missing_keys_raise_only_parse_error(fakes: list[SimFake], venue: str) -> None:
    fake, client = await _start(fakes, venue)
    try:
        await _open_long(fake, client, venue)
        await client.get_account_summary()  # the honest reply parses

        for key, value in _cases(venue):
            body = await _honest(fake, venue)
            for row in _usdt_rows(venue, body):
                if value is _DROP:
                    row.pop(key)
                else:
                    row[key] = value
            fake.fail(PATHS[venue], status=200, body=json.dumps(body).encode(), method="GET")
            with pytest.raises(ParseError):
                await client.get_account_summary()
    finally:
        await client.aclose()


@pytest.mark.parametrize("venue", ["okx", "bitget"])
async def test_no_settle_currency_row_is_a_parse_error(fakes: list[SimFake], venue: str) -> None:
    fake, client = await _start(fakes, venue)
    try:
        body = await _honest(fake, venue)
        for row in _usdt_rows(venue, body):
            row["ccy" if venue == "okx" else "marginCoin"] = "USDC"
        fake.fail(PATHS[venue], status=200, body=json.dumps(body).encode(), method="GET")
        with pytest.raises(ParseError, match="USDT"):
            await client.get_account_summary()
    finally:
        await client.aclose()


@pytest.mark.parametrize("venue", ["okx", "bitget"])
async def test_the_settle_currency_is_the_configs_or_the_markets_never_written_in(
    fakes: list[SimFake], venue: str
) -> None:
    """The line names no currency: unset, it is the loaded derivatives' one (USDT: the summary reads the
    USDT row); set to USDC, the USDC row is read (and Bitget is asked for productType=USDC-FUTURES)."""
    fake, client = await _start(fakes, venue)
    try:
        assert await settle_currency(client) == "USDT"
        await client.get_account_summary()
    finally:
        await client.aclose()
    fake, client = await _start(fakes, venue, settle="USDC")
    try:
        assert await settle_currency(client) == "USDC"
        body = await _honest(fake, venue)
        with pytest.raises(ParseError, match="USDC"):  # the honest reply has no USDC row
            fake.fail(PATHS[venue], status=200, body=json.dumps(body).encode(), method="GET")
            await client.get_account_summary()
        for row in _usdt_rows(venue, body):
            row["ccy" if venue == "okx" else "marginCoin"] = "USDC"
        fake.fail(PATHS[venue], status=200, body=json.dumps(body).encode(), method="GET")
        summary = await client.get_account_summary()
        assert summary.wallet_balance != ""
        if venue == "bitget":
            asked = [r.path_qs for r in fake.requests_to(PATHS[venue], "GET")]
            assert asked and all("productType=USDC-FUTURES" in q for q in asked[-2:]), asked
    finally:
        await client.aclose()
