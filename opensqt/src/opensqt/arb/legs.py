"""One leg order, exactly once: look up by client order id, place only when the venue does not know it,
settle an unknown outcome by lookup, and report what EXECUTED.

Rules (ARCHITECTURE.md "order outcomes"):

* The client order id is derived from the intent by the caller (:func:`leg_id`); this module never makes
  one up.  Every call starts with a lookup, so a step that DBOS runs again after a crash finds the order
  the dead process placed instead of placing a second one.
* Legs are limit IOC at a bounded price (:func:`opensqt.arb.sizing.bounded_price`, i.e. the shared
  slippage guard) from a book read just before placing; a denied bound places nothing ("rejected").
* A placement answer that is not an answer (timeout, lost reply, unparseable) is UNRESOLVED: looked up
  until the venue shows it or ``landing_window`` seconds have passed since the send; only then does "not
  found" mean it never landed.  A lookup error keeps it unresolved (retried), never read as "rejected".
* An order still open after its IOC should have ended is cancelled by its id and read back.
* The result is a plain JSON dict (DBOS records it): decimals as canonical strings.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from cqc.venues.v1 import order_pb2
from cqvx.client import VenueClient
from cqvx.errors import NotFound, ParseError, VenueError
from cqvx.num import ZERO, dec, dec_or_none, dec_str
from cqvx.types import OPEN_STATUSES, TERMINAL_STATUSES
from opensqt.arb.sizing import LegRules, bounded_price
from opensqt.engine.executor import Confirmed, OrderExecutor, Rejected
from opensqt.model.client_ids import client_order_id
from opensqt.risk.exposure import Denied
from opensqt.risk.slippage import book_levels

__all__ = ["LegOrder", "LegResult", "execute_leg", "leg_id"]

log = structlog.get_logger("opensqt.arb.legs")

BUY = order_pb2.ORDER_SIDE_BUY
SELL = order_pb2.ORDER_SIDE_SELL
_POLL = 0.05
_BOOK_DEPTH = 5  # the bound needs both touches; a few levels more cost nothing


def leg_id(workflow_id: str, leg: str, attempt: int, side: int) -> str:
    """The deterministic client order id of one leg attempt of one workflow (``osq`` + 26 base32 chars:
    fits every venue's id limits, :mod:`opensqt.model.client_ids`)."""
    return client_order_id(f"arb|{workflow_id}|{leg}", 0, side, attempt)


@dataclass(frozen=True, slots=True)
class LegOrder:
    symbol: str
    side: int
    quantity: Decimal
    cid: str
    rules: LegRules
    slippage: Decimal
    reduce_only: bool = False
    margin: bool = False  # spot margin (Order.margin): a SELL borrows the base, a BUY repays it


@dataclass(frozen=True, slots=True)
class LegResult:
    cid: str
    symbol: str
    side: int
    requested: Decimal
    executed: Decimal
    average_price: Decimal | None
    fees: Decimal
    fee_asset: str
    outcome: str  # "filled" | "partial" | "none" (terminal, nothing filled) | "rejected" | "lost"
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": self.cid,
            "symbol": self.symbol,
            "side": self.side,
            "requested": dec_str(self.requested),
            "executed": dec_str(self.executed),
            "average_price": dec_str(self.average_price),
            "fees": dec_str(self.fees),
            "fee_asset": self.fee_asset,
            "outcome": self.outcome,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LegResult:
        return cls(
            d["cid"],
            d["symbol"],
            int(d["side"]),
            dec(d["requested"]),
            dec(d["executed"]),
            dec_or_none(d["average_price"]),
            dec(d["fees"]),
            d["fee_asset"],
            d["outcome"],
            d.get("reason", ""),
        )


def _result(leg: LegOrder, order: order_pb2.Order) -> LegResult:
    executed = dec_or_none(order.filled_quantity, "filled_quantity") or ZERO
    outcome = "filled" if executed >= leg.quantity else "partial" if executed > 0 else "none"
    return LegResult(
        leg.cid,
        leg.symbol,
        leg.side,
        leg.quantity,
        executed,
        dec_or_none(order.average_fill_price, "average_fill_price"),
        dec_or_none(order.total_fees, "total_fees") or ZERO,
        order.fee_asset,
        outcome,
    )


def _nothing(leg: LegOrder, outcome: str, reason: str) -> LegResult:
    return LegResult(leg.cid, leg.symbol, leg.side, leg.quantity, ZERO, None, ZERO, "", outcome, reason)


async def _lookup(client: VenueClient, leg: LegOrder) -> order_pb2.Order | None:
    """The venue's order under the leg's id; None when the venue does not know it.  Lookup errors are
    retried (a lookup is safe); they never mean "not there"."""
    delay = _POLL
    while True:
        try:
            return await client.get_order(symbol=leg.symbol, client_order_id=leg.cid)
        except NotFound:
            return None
        except (VenueError, ParseError) as exc:
            log.warning("arb leg lookup failed; retrying", cid=leg.cid, error=str(exc))
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)


async def _final(client: VenueClient, leg: LegOrder, order: order_pb2.Order, wait: float) -> LegResult:
    """Wait for a terminal status (an IOC ends at once); cancel what is still open after ``wait``."""
    deadline = time.monotonic() + wait
    while order.status not in TERMINAL_STATUSES:
        if time.monotonic() >= deadline and order.status in OPEN_STATUSES:
            try:
                order = await client.cancel_order(symbol=leg.symbol, client_order_id=leg.cid)
            except NotFound:
                pass
            except VenueError as exc:
                log.warning("arb leg cancel failed", cid=leg.cid, error=str(exc))
            deadline = time.monotonic() + wait
        await asyncio.sleep(_POLL)
        found = await _lookup(client, leg)
        if found is not None:
            order = found
    return _result(leg, order)


async def execute_leg(
    client: VenueClient, executor: OrderExecutor, leg: LegOrder, *, landing_window: float
) -> LegResult:
    """Place ``leg`` once (or find it placed) and return what executed."""
    existing = await _lookup(client, leg)
    if existing is not None:
        return await _final(client, leg, existing, 5.0)
    if leg.quantity <= 0:
        return _nothing(leg, "none", "zero quantity")
    is_buy = leg.side == BUY
    try:
        bids, asks = book_levels(await client.get_order_book(leg.symbol, depth=_BOOK_DEPTH))
    except (VenueError, ParseError) as exc:
        return _nothing(leg, "rejected", f"no price: {exc}")
    price = bounded_price(bids, asks, is_buy=is_buy, slippage=leg.slippage, rules=leg.rules)
    if isinstance(price, Denied):
        return _nothing(leg, "rejected", f"slippage guard: {price.detail}")
    order = order_pb2.Order(
        client_order_id=leg.cid,
        symbol=leg.symbol,
        side=order_pb2.OrderSide.ValueType(leg.side),
        order_type=order_pb2.ORDER_TYPE_LIMIT,
        time_in_force=order_pb2.TIME_IN_FORCE_IOC,
        quantity=dec_str(leg.quantity),
        price=dec_str(price),
        reduce_only=leg.reduce_only,
        margin=leg.margin,
    )
    sent = time.monotonic()
    (outcome,) = await executor.place([order])
    if isinstance(outcome, Rejected):
        return _nothing(leg, "rejected", f"{outcome.error.kind.value}: {outcome.error}")
    if isinstance(outcome, Confirmed):
        found = await _lookup(client, leg)
        if found is not None:
            return await _final(client, leg, found, 5.0)
    # Unresolved (or confirmed but not yet visible): the venue decides; wait out the landing window.
    while time.monotonic() - sent < landing_window:
        found = await _lookup(client, leg)
        if found is not None:
            return await _final(client, leg, found, 5.0)
        await asyncio.sleep(min(1.0, _POLL * 4))
    return _nothing(leg, "lost", "not at the venue after the landing window")
