"""The account's funding payments through the ccxt adapter (``SupportsFundingPayments``), ccxt unmodified
over loopback, against the wire-level fakes: Binance's income history (``GET /fapi/v1/income``,
``incomeType=FUNDING_FEE``), Bybit's UTA transaction log (``GET /v5/account/transaction-log``,
``type=SETTLEMENT``), OKX's bills (``GET /api/v5/account/bills-archive``, ``type=8``), Bitget's mix account
bills (``GET /api/v2/mix/account/bill``, ``businessType=contract_settle_fee``) and Gate's futures account
book (``GET /futures/usdt/account_book``, ``type=fund``).  The truth is the simulated venue's own record
of what it settled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from cqc.portfolio.v1 import transaction_pb2
from cqc.venues.v1 import order_pb2, venue_pb2
from cqvx.client import SupportsFundingPayments
from cqvx.secrets import Secret
from cqvx.testing.fake_binance import FakeBinance
from cqvx.testing.fake_ccxt._base import SimFake
from cqvx.testing.fake_ccxt.gate import USER_ID
from cqvx.testing.fake_ccxt.harness import MARKET_TYPES, fake_class
from cqvx.venues.ccxt import CcxtClient, CcxtConfig
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec

D = Decimal
PERP = "BTC-USDT-PERP"
KEY, SECRET, PASSPHRASE = "funding-key", "funding-secret", "funding-pass"


@dataclass
class Venue:
    sim: SimVenue
    client: CcxtClient


def _sim() -> SimVenue:
    # Wall-clock speed: the venues are asked up to "now", so settlements must not run ahead of it.
    spot = InstrumentSpec(symbol="BTC-USDT", initial_price=D(60000))
    perp = InstrumentSpec(
        symbol=PERP, initial_price=D(60000), max_leverage=D(20), follows="BTC-USDT",
        funding_interval_seconds=2, base_funding_rate=D("0.001"),
    )  # fmt: skip
    return SimVenue.default(seed=3, speed=1, instruments=(spot, perp), warmup_seconds=0)


@pytest.fixture(params=["binance", "bybit", "okx", "bitget", "gate"])
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    name = request.param
    sim = _sim()
    fake: FakeBinance | SimFake = (
        FakeBinance(KEY, SECRET, sim=sim)
        if name == "binance"
        else fake_class(name)(KEY, SECRET, PASSPHRASE, sim=sim)
    )
    await fake.start()  # its url has the port from here on
    config = CcxtConfig(
        name, Secret(KEY), Secret(SECRET), Secret(PASSPHRASE), rest_url=fake.url, rate_limit=False,
        market_types=MARKET_TYPES.get(name, ()), uid=USER_ID if name == "gate" else "",
    )  # fmt: skip
    client = CcxtClient(config)
    try:
        await client.start()
        yield Venue(sim, client)
    finally:
        await client.aclose()
        await fake.stop()


async def _settlements(sim: SimVenue, n: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sim.funding_payments) < n:
        assert time.monotonic() < deadline, f"{len(sim.funding_payments)} settlements, wanted {n}"
        await asyncio.sleep(0.05)


async def test_funding_payments_are_the_venues_settlements_signed_received_positive(venue: Venue) -> None:
    client, sim = venue.client, venue.sim
    assert isinstance(client, SupportsFundingPayments)
    # What a connector serves: RemoteVenue implements SupportsFundingPayments from this capability.
    assert venue_pb2.CAPABILITY_FUNDING_PAYMENTS in client.capabilities()
    start = sim.clock.now()
    coid = "t-fund1" if client.venue == "gate" else "fund1"  # Gate's text needs "t-"
    await client.place_order(  # a short: a positive rate is received
        order_pb2.Order(
            client_order_id=coid, symbol=PERP, side=order_pb2.ORDER_SIDE_SELL,
            order_type=order_pb2.ORDER_TYPE_MARKET, quantity="0.01",
        )
    )  # fmt: skip
    await _settlements(sim, 2)
    paid = await client.get_funding_payments(PERP, start=start)
    truth = [p for p in sim.funding_payments if p.symbol == PERP]
    assert len(paid) >= 2
    by_time = {p.at_ns // 1_000_000: p for p in truth}
    for t in paid:
        ms = t.timestamp.seconds * 1000 + t.timestamp.nanos // 1_000_000
        assert ms in by_time, f"a payment at {ms} the venue never settled"
        assert t.transaction_type == transaction_pb2.TRANSACTION_TYPE_FUNDING
        received = -by_time[ms].paid
        # Binance writes income with 8 decimals ("-0.37500000" in its docs); the others in full.
        assert t.asset == "USDT" and D(t.amount) > 0 and abs(D(t.amount) - received) < D("1e-8")
    times = [(t.timestamp.seconds, t.timestamp.nanos) for t in paid]
    assert times == sorted(times) and len({t.transaction_id for t in paid}) == len(paid)
    later = await client.get_funding_payments(PERP, start=paid[-1].timestamp.ToDatetime())
    assert [t.transaction_id for t in later][:1] == [paid[-1].transaction_id]
