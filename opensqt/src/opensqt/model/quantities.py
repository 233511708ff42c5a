"""Order quantities of the fixed-amount grid: pure Decimal arithmetic, always rounded DOWN to the lot.

``trading.order_quantity`` is a QUOTE amount; the base quantity of an order at ``price`` is
``round_quantity(amount / price, lot)``.  A quantity is never rounded up (it could exceed what the
account holds or what the grid decided).
"""

from __future__ import annotations

from decimal import Decimal

from cqvx.num import round_quantity

__all__ = ["base_quantity"]


def base_quantity(quote_amount: Decimal, price: Decimal, lot_size: Decimal) -> Decimal:
    """The fixed-amount grid's base quantity, rounded DOWN to the lot: the one place it is computed."""
    if price <= 0:
        raise ValueError("price must be > 0")
    return round_quantity(quote_amount / price, lot_size)
