"""Startup safety checks (reference §3.1), as a pure function over what the engine fetched.

The original skips every check when the account already holds a position ("the user knows the risk");
we keep that rule but still run the checks that protect against a broken configuration (price sanity,
instrument rules), since those do not depend on the user's risk appetite.

The leverage check always runs, on the account's REAL leverage as the venue reports it (the highest
``leverage`` of its positions; ``None`` when the venue reports none, e.g. no open position): a position
held at more than ``risk.max_leverage`` is exactly the risk the limit is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from opensqt.model.quantities import base_quantity
from opensqt.strategy.grid import GridParams, InstrumentRules

__all__ = ["Check", "StartupCheckFailed", "startup_checks"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


class StartupCheckFailed(RuntimeError):
    def __init__(self, failed: list[Check]) -> None:
        super().__init__("; ".join(f"{c.name}: {c.detail}" for c in failed))
        self.failed = failed


def startup_checks(
    *,
    price: Decimal,
    available_quote: Decimal,
    has_position: bool,
    params: GridParams,
    rules: InstrumentRules,
    fee_rate: Decimal,
    position_safety_check: int,
    leverage: Decimal | None = None,
    max_leverage: Decimal = Decimal(10),
) -> list[Check]:
    checks: list[Check] = []

    def add(name: str, ok: bool, detail: str) -> None:
        checks.append(Check(name, ok, detail))

    # -- configuration sanity (always)
    add("price", price > 0, f"current price {price}")
    lowest = price - params.buy_window * params.interval
    add(
        "price_interval",
        params.interval >= rules.tick_size and lowest > 0,
        f"interval {params.interval}, tick {rules.tick_size}, lowest buy level {lowest}",
    )
    qty = base_quantity(params.order_quantity, price, rules.lot_size) if price > 0 else Decimal(0)
    add(
        "instrument_rules",
        qty > 0 and qty >= rules.min_quantity and qty * price >= rules.min_notional,
        f"order_quantity {params.order_quantity} -> {qty} base at {price} "
        f"(min quantity {rules.min_quantity}, min notional {rules.min_notional})",
    )
    add(
        "grid_mode",
        not params.neutral or rules.derivatives,
        "neutral mode needs a derivatives instrument" if params.neutral else "long",
    )
    add(
        "leverage",
        leverage is None or leverage <= max_leverage,
        f"leverage {leverage if leverage is not None else 'not reported'} (max {max_leverage})",
    )
    if has_position:
        add("account", True, "existing position: balance and fee checks skipped, as in the original")
        return checks

    # -- account and profitability (skipped when a position exists)
    add("balance", available_quote > 0, f"available {available_quote}")
    lev = leverage if leverage is not None and leverage > 0 else Decimal(1)
    affordable = int(available_quote * lev / params.order_quantity) if params.order_quantity else 0
    add(
        "position_safety_check",
        affordable >= position_safety_check,
        f"{affordable} orders affordable, {position_safety_check} required",
    )
    buy, sell = price, price + params.interval
    if price > 0:
        amount = params.order_quantity
        q = amount / buy
        profit = q * sell - amount
        fees = amount * fee_rate + q * sell * fee_rate
        add("fees", profit - fees > 0, f"profit per round trip {profit:.6f} vs fees {fees:.6f}")
    return checks
