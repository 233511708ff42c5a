"""Balances (total, locked, available) and linear perpetual positions of the simulated account.

One unified account: every asset has one balance; perpetuals are margined in their quote (settle)
asset, and their initial margin sits in that asset's ``locked`` amount beside the holds of open
orders.  Margin is isolated per position, which gives the simple closed-form liquidation price below.
Fees are always paid in the quote/settle asset.

Spot margin: an asset may be borrowed up to its limit (``SimConfig.margin_limits``); the borrowed units
are added to ``total`` (they are in the account until sold) and owed in ``borrowed``, so equity in the
asset is ``total - borrowed`` and ``available`` never goes negative.  A repayment takes units out of
``total`` and ``borrowed`` alike.  No interest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from cqvx.errors import InsufficientFunds
from cqvx.num import ZERO, dec_str

__all__ = ["Balance", "Ledger", "Position"]


@dataclass(slots=True)
class Balance:
    total: Decimal = ZERO
    locked: Decimal = ZERO
    borrowed: Decimal = ZERO  # owed (spot margin); part of total until sold

    @property
    def available(self) -> Decimal:
        return self.total - self.locked


@dataclass(slots=True)
class Position:
    symbol: str
    settle_asset: str
    leverage: Decimal
    maintenance_rate: Decimal
    quantity: Decimal = ZERO  # signed: > 0 long, < 0 short
    entry_price: Decimal = ZERO
    margin: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    updated_ns: int = 0

    def unrealized(self, mark: Decimal) -> Decimal:
        return (mark - self.entry_price) * self.quantity

    def maintenance(self, mark: Decimal) -> Decimal:
        return abs(self.quantity) * mark * self.maintenance_rate

    def liquidation_price(self) -> Decimal | None:
        """Mark price at which equity (margin + uPnL) equals maintenance margin (isolated, linear)."""
        q = abs(self.quantity)
        if not q:
            return None
        m = self.maintenance_rate
        if self.quantity > 0:
            price = (self.entry_price * q - self.margin) / (q * (1 - m))
        else:
            price = (self.entry_price * q + self.margin) / (q * (1 + m))
        return max(ZERO, price)


class Ledger:
    """Balances and positions; every mutation keeps ``0 <= locked <= total`` or raises."""

    def __init__(self, venue: str, balances: dict[str, Decimal]) -> None:
        self.venue = venue
        self.balances: dict[str, Balance] = {a: Balance(Decimal(v)) for a, v in sorted(balances.items())}
        self.positions: dict[str, Position] = {}
        self.changed_assets: set[str] = set()

    def balance(self, asset: str) -> Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = Balance()
        return bal

    def lock(self, asset: str, amount: Decimal, what: str | Callable[[], str]) -> None:
        """Hold ``amount`` of ``asset``; ``what`` names the holder in a refusal (a callable: made then)."""
        bal = self.balances.get(asset) or self.balance(asset)
        if amount > bal.total - bal.locked:
            name = what if isinstance(what, str) else what()
            raise InsufficientFunds(
                f"insufficient {asset}: {name} needs {dec_str(amount)}, available {dec_str(bal.available)}",
                venue=self.venue,
            )
        bal.locked += amount
        self.changed_assets.add(asset)

    def unlock(self, asset: str, amount: Decimal) -> None:
        if amount:
            bal = self.balances.get(asset) or self.balance(asset)
            locked = bal.locked - amount
            bal.locked = locked if locked > 0 else ZERO  # = max(ZERO, locked), without the call
            self.changed_assets.add(asset)

    def credit(self, asset: str, amount: Decimal) -> None:
        """Add (or with a negative amount, remove) funds."""
        if amount:
            self.balance(asset).total += amount
            self.changed_assets.add(asset)

    def require(self, asset: str, amount: Decimal, what: str) -> None:
        bal = self.balance(asset)
        if amount > bal.available:
            raise InsufficientFunds(
                f"insufficient {asset}: {what} needs {dec_str(amount)}, available {dec_str(bal.available)}",
                venue=self.venue,
            )

    def borrow(self, asset: str, amount: Decimal, limit: Decimal) -> None:
        """Borrow ``amount`` of ``asset`` (spot margin) within ``limit`` (the most owed at once)."""
        bal = self.balance(asset)
        if bal.borrowed + amount > limit:
            owed = dec_str(bal.borrowed + amount)
            raise InsufficientFunds(
                f"borrow limit: {asset} owed would be {owed}, limit {dec_str(limit)}",
                venue=self.venue,
            )
        bal.total += amount
        bal.borrowed += amount
        self.changed_assets.add(asset)

    def repay(self, asset: str, amount: Decimal) -> Decimal:
        """Repay up to ``amount`` of what is owed in ``asset`` from its free units; returns the repaid."""
        bal = self.balance(asset)
        paid = min(amount, bal.borrowed, max(ZERO, bal.available))
        if paid > 0:
            bal.total -= paid
            bal.borrowed -= paid
            self.changed_assets.add(asset)
        return paid

    def position(self, symbol: str, settle: str, leverage: Decimal, mmr: Decimal) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol, settle, leverage, mmr)
        return pos

    def apply_perp_fill(self, pos: Position, signed_qty: Decimal, price: Decimal, now_ns: int) -> Decimal:
        """Apply a fill to a position; moves margin and realized PnL; returns the realized PnL."""
        settle = pos.settle_asset
        realized = ZERO
        q = pos.quantity
        if q and (q > 0) != (signed_qty > 0):
            closing = min(abs(signed_qty), abs(q))
            direction = 1 if q > 0 else -1
            realized = (price - pos.entry_price) * closing * direction
            released = pos.margin * closing / abs(q)
            pos.margin -= released
            self.unlock(settle, released)
            self.credit(settle, realized)
            pos.realized_pnl += realized
            pos.quantity = q + (closing if q < 0 else -closing)
            opening = abs(signed_qty) - closing
            if not pos.quantity:
                pos.entry_price = ZERO
                self.unlock(settle, pos.margin)
                pos.margin = ZERO
            if opening:
                sign = 1 if signed_qty > 0 else -1
                pos.quantity = opening * sign
                pos.entry_price = price
                self._add_margin(pos, price * opening / pos.leverage)
        else:
            new_q = q + signed_qty
            pos.entry_price = (pos.entry_price * abs(q) + price * abs(signed_qty)) / abs(new_q)
            pos.quantity = new_q
            self._add_margin(pos, price * abs(signed_qty) / pos.leverage)
        pos.updated_ns = now_ns
        return realized

    def _add_margin(self, pos: Position, amount: Decimal) -> None:
        # The order's own hold was released just before, so this lock always fits; clamp to be safe
        # against a price better than the order's limit having been reserved.
        bal = self.balance(pos.settle_asset)
        amount = min(amount, max(ZERO, bal.available))
        bal.locked += amount
        pos.margin += amount
        self.changed_assets.add(pos.settle_asset)
