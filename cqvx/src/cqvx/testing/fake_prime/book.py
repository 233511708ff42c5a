"""The fake Prime's state: orders, fills, balances and quotes, and how orders fill (no HTTP here).

Matching is deliberately simple: every product has a mid ``price``; a MARKET order fills at it, a
LIMIT buy at or above it (a sell at or below) fills at it, anything else rests.  TWAP/VWAP orders rest
and fill only through :meth:`PrimeState.child_fill` (the test plays the algorithm).  A buy needs
quote balance (amount - holds) for its notional, a sell base balance for its size; resting orders
hold what they need.  Fees: commission = ``commission_rate`` x notional, exchange fee =
``exchange_fee_rate`` x notional.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["FakeOrder", "PrimeState", "Refusal"]


class Refusal(Exception):
    """An order the venue refuses: (HTTP status, code, subcode, message)."""

    def __init__(self, status: int, code: str, subcode: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.subcode = subcode
        self.message = message


@dataclass
class FakeOrder:
    id: str
    client_order_id: str
    product_id: str
    side: str
    type: str
    base_quantity: Decimal
    limit_price: Decimal | None
    created_at: str
    time_in_force: str = "GOOD_UNTIL_CANCELLED"
    status: str = "OPEN"
    filled_quantity: Decimal = Decimal(0)
    filled_value: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    exchange_fee: Decimal = Decimal(0)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self, portfolio_id: str) -> dict[str, Any]:
        avg = self.filled_value / self.filled_quantity if self.filled_quantity else Decimal(0)
        out: dict[str, Any] = {
            "id": self.id,
            "user_id": "fake-user",
            "portfolio_id": portfolio_id,
            "product_id": self.product_id,
            "side": self.side,
            "client_order_id": self.client_order_id,
            "type": self.type,
            "base_quantity": str(self.base_quantity),
            "quote_value": "",
            "status": self.status,
            "time_in_force": self.time_in_force,
            "created_at": self.created_at,
            "filled_quantity": str(self.filled_quantity),
            "filled_value": str(self.filled_value),
            "average_filled_price": str(avg),
            "commission": str(self.commission),
            "exchange_fee": str(self.exchange_fee),
        }
        if self.limit_price is not None:
            out["limit_price"] = str(self.limit_price)
        out.update(self.extra)
        return out


class PrimeState:
    def __init__(self) -> None:
        self.prices: dict[str, Decimal] = {"BTC-USD": Decimal("50000"), "ETH-USD": Decimal("3000")}
        self.balances: dict[str, Decimal] = {
            "USD": Decimal("1000000"),
            "BTC": Decimal("10"),
            "ETH": Decimal("100"),
        }
        self.orders: dict[str, FakeOrder] = {}
        self.fills: list[dict[str, Any]] = []
        self.commission_rate = Decimal("0.001")
        self.exchange_fee_rate = Decimal("0.0002")

    # --- balances -----------------------------------------------------------------------------------

    def holds(self, asset: str) -> Decimal:
        total = Decimal(0)
        for o in self.orders.values():
            if o.status != "OPEN":
                continue
            base, quote = o.product_id.split("-")
            left = o.base_quantity - o.filled_quantity
            if o.side == "BUY" and asset == quote:
                total += left * (o.limit_price or self.prices[o.product_id])
            elif o.side == "SELL" and asset == base:
                total += left
        return total

    def available(self, asset: str) -> Decimal:
        return self.balances.get(asset, Decimal(0)) - self.holds(asset)

    # --- orders -----------------------------------------------------------------------------------

    def orders_with_client_id(self, coid: str) -> int:
        return sum(1 for o in self.orders.values() if o.client_order_id == coid)

    def create(self, body: dict[str, Any], now: str) -> FakeOrder:
        product = str(body.get("product_id", ""))
        if product not in self.prices:
            raise Refusal(400, "VALIDATION_ERROR", "", f"unknown product {product}")
        coid = str(body.get("client_order_id") or "")
        if not coid:
            raise Refusal(400, "REQUIRED_FIELD_MISSING", "", "client_order_id is required")
        if any(o.client_order_id == coid and o.status in ("OPEN", "PENDING") for o in self.orders.values()):
            raise Refusal(
                400, "VALIDATION_ERROR", "DUPLICATE_CLIENT_ORDER_ID", "client_order_id must be unique"
            )
        kind = str(body.get("type", ""))
        if kind not in ("MARKET", "LIMIT", "STOP_LIMIT", "TWAP", "VWAP", "BLOCK"):
            raise Refusal(400, "VALIDATION_ERROR", "", f"unsupported type {kind}")
        try:
            qty = Decimal(str(body["base_quantity"]))
        except (KeyError, ArithmeticError, ValueError):
            raise Refusal(400, "VALIDATION_ERROR", "", "base_quantity is required") from None
        limit = Decimal(str(body["limit_price"])) if body.get("limit_price") else None
        if kind in ("LIMIT", "STOP_LIMIT", "TWAP", "VWAP") and limit is None:
            raise Refusal(400, "REQUIRED_FIELD_MISSING", "", "limit_price is required")
        if kind in ("TWAP", "VWAP") and not body.get("start_time"):
            raise Refusal(400, "REQUIRED_FIELD_MISSING", "", "start_time is required")
        side = str(body.get("side", ""))
        base, quote = product.split("-")
        price = self.prices[product]
        need = qty * (limit or price) if side == "BUY" else qty
        if need > self.available(quote if side == "BUY" else base):
            raise Refusal(400, "FAILED_PRECONDITION", "INSUFFICIENT_FUNDS", "insufficient funds")
        order = FakeOrder(
            id=str(uuid.uuid4()),
            client_order_id=coid,
            product_id=product,
            side=side,
            type=kind,
            base_quantity=qty,
            limit_price=limit,
            created_at=now,
            time_in_force=str(
                body.get("time_in_force")
                or ("IMMEDIATE_OR_CANCEL" if kind == "MARKET" else "GOOD_UNTIL_CANCELLED")
            ),
        )
        for key in ("start_time", "expiry_time", "historical_pov", "stop_price", "post_only"):
            if key in body:
                order.extra[key] = body[key]
        self.orders[order.id] = order
        crosses = limit is None or (limit >= price if side == "BUY" else limit <= price)
        if kind in ("MARKET", "BLOCK") or (kind == "LIMIT" and crosses and not body.get("post_only")):
            self.fill(order, qty, price, now)
        elif kind == "LIMIT" and order.time_in_force in ("IMMEDIATE_OR_CANCEL", "FILL_OR_KILL"):
            order.status = "CANCELLED"
        return order

    def fill(self, order: FakeOrder, qty: Decimal, price: Decimal, now: str) -> dict[str, Any]:
        base, quote = order.product_id.split("-")
        notional = qty * price
        commission = notional * self.commission_rate
        fee = notional * self.exchange_fee_rate
        sign = Decimal(1) if order.side == "BUY" else Decimal(-1)
        self.balances[base] = self.balances.get(base, Decimal(0)) + sign * qty
        self.balances[quote] = self.balances.get(quote, Decimal(0)) - sign * notional - commission - fee
        order.filled_quantity += qty
        order.filled_value += notional
        order.commission += commission
        order.exchange_fee += fee
        if order.filled_quantity >= order.base_quantity:
            order.status = "FILLED"
        f = {
            "id": str(uuid.uuid4()),
            "order_id": order.id,
            "product_id": order.product_id,
            "side": order.side,
            "filled_quantity": str(qty),
            "filled_value": str(notional),
            "price": str(price),
            "time": now,
            "commission": str(commission),
            "venue": "fake",
            "venue_fees": str(fee),
        }
        self.fills.append(f)
        return f

    def child_fill(self, order_id: str, qty: Decimal, price: Decimal, now: str) -> dict[str, Any]:
        """One slice of an algorithmic order fills (the test plays the algorithm)."""
        return self.fill(self.orders[order_id], qty, price, now)
