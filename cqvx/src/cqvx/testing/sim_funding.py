"""The ``funding_history`` and ``funding_payments`` conformance hooks of every harness backed by a
simulated venue (the sim itself and the wire-level fakes in front of one): settle by jumping the sim's
clock one funding interval, and read the settlement and the account's payment from the sim's own record."""

from __future__ import annotations

from cqc.markets.v1 import funding_pb2
from cqc.portfolio.v1 import transaction_pb2
from cqvx.num import dec_str
from cqvx.timeutil import set_timestamp_ns
from cqvx.venues.sim import SimVenue

__all__ = ["SimFundingHooks"]


class SimFundingHooks:
    sim: SimVenue
    funding_symbol: str = "BTC-USDT-PERP"

    async def settle_funding(self) -> None:
        await self.sim.jump(self.sim.engine.specs[self.funding_symbol].funding_interval_seconds)

    async def last_settlement(self) -> funding_pb2.FundingRate:
        # The sim's current reading names its last settlement: funding_time and the settled rate.
        return await self.sim.get_funding_rate(self.funding_symbol)

    async def last_funding_payment(self) -> transaction_pb2.Transaction:
        mine = [p for p in self.sim.funding_payments if p.symbol == self.funding_symbol]
        if not mine:
            raise AssertionError(f"the venue settled no payment on {self.funding_symbol}")
        pay = mine[-1]
        tx = transaction_pb2.Transaction(
            transaction_type=transaction_pb2.TRANSACTION_TYPE_FUNDING,
            asset=pay.asset,
            amount=dec_str(-pay.paid),
        )
        set_timestamp_ns(tx.timestamp, pay.at_ns)
        return tx
