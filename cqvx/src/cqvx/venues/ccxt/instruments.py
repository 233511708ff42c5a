"""One ccxt market -> a cqc ``Instrument`` with the trading rules (tick, lot, minimums, fees).

Quantities are in base units (ccxt's amounts are contracts on derivatives: multiplied by the
contract size).  ccxt reports precision as a step (``TICK_SIZE`` mode, e.g. Binance ``0.1``) or as a
number of decimal places (``DECIMAL_PLACES``); both become a step here.  A value ccxt does not have
stays empty (the grid then refuses to size orders on it rather than guess).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cqc.markets.v1 import instrument_pb2
from cqvx.num import dec, dec_str
from cqvx.venues.ccxt.parse import num

__all__ = ["instrument_of"]

_DECIMAL_PLACES = 2  # ccxt.base.decimal_to_precision.DECIMAL_PLACES


def _step(value: object, field: str, venue: str, mode: int) -> str:
    text = num(value, field, venue)
    if not text:
        return ""
    if mode == _DECIMAL_PLACES:
        return dec_str(Decimal(1).scaleb(-int(dec(text))))
    return text


def _base(text: str, size: Decimal) -> str:
    return dec_str(dec(text) * size) if text else ""


def instrument_of(
    market: Mapping[str, Any],
    *,
    canonical: str,
    venue: str,
    venue_symbol: str,
    instrument_type: int,
    contract_size: Decimal,
    precision_mode: int,
) -> instrument_pb2.Instrument:
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    amount = limits.get("amount") or {}
    cost = limits.get("cost") or {}
    return instrument_pb2.Instrument(
        symbol=canonical,
        venue=venue,
        venue_symbol=venue_symbol,
        instrument_type=instrument_type,  # type: ignore[arg-type]
        base_asset=str(market.get("base") or ""),
        quote_asset=str(market.get("quote") or ""),
        settle_asset=str(market.get("settle") or ""),
        tick_size=_step(precision.get("price"), "precision.price", venue, precision_mode),
        lot_size=_base(
            _step(precision.get("amount"), "precision.amount", venue, precision_mode), contract_size
        ),
        min_quantity=_base(num(amount.get("min"), "limits.amount.min", venue), contract_size),
        max_quantity=_base(num(amount.get("max"), "limits.amount.max", venue), contract_size),
        min_notional=num(cost.get("min"), "limits.cost.min", venue),
        contract_size=dec_str(contract_size),
        maker_fee=num(market.get("maker"), "maker", venue),
        taker_fee=num(market.get("taker"), "taker", venue),
        is_inverse=bool(market.get("inverse")),
        status=instrument_pb2.INSTRUMENT_STATUS_TRADING
        if market.get("active") is not False
        else instrument_pb2.INSTRUMENT_STATUS_HALTED,
    )
