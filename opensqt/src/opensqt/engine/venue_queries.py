"""Read-only questions the engine asks a venue: instrument rules, a first price, the held inventory.

Plain functions over a cqvx ``VenueClient`` (any venue class; optional capabilities are probed with the
``Supports*`` protocols).  Nothing here changes state.
"""

from __future__ import annotations

from decimal import Decimal

import structlog

from cqc.portfolio.v1 import position_pb2
from cqvx.client import SupportsInstruments, SupportsPositions, SupportsPrices, VenueClient
from cqvx.num import ZERO, dec, dec_or_none
from cqvx.symbols import parse_symbol
from opensqt.engine.price_monitor import price_of
from opensqt.risk.startup import Check, StartupCheckFailed
from opensqt.strategy.grid import InstrumentRules

__all__ = ["first_price", "load_rules", "venue_inventory"]

log = structlog.get_logger("opensqt.engine")


async def load_rules(client: VenueClient, symbol: str) -> InstrumentRules:
    """The instrument's tick, lot and fees; a venue without the symbol fails the startup check."""
    if isinstance(client, SupportsInstruments):
        for inst in await client.get_instruments([symbol]):
            if inst.symbol == symbol:
                return InstrumentRules.from_instrument(inst)
    raise StartupCheckFailed([Check("instrument", False, f"venue has no instrument {symbol}")])


async def first_price(client: VenueClient, symbol: str) -> Decimal:
    """A price before the stream delivered one: the latest price, else the top-of-book mid."""
    if isinstance(client, SupportsPrices):
        p = price_of(await client.get_latest_price(symbol))
        if p is not None:
            return p
    book = await client.get_order_book(symbol, 1)
    if book.bids and book.asks:
        return (dec(book.bids[0].price) + dec(book.asks[0].price)) / 2
    raise StartupCheckFailed([Check("price", False, "no price available from the venue")])


async def venue_inventory(
    client: VenueClient,
    symbol: str,
    rules: InstrumentRules,
    *,
    base_reserve: Decimal | None,
    held: Decimal,
) -> tuple[Decimal, Decimal | None]:
    """The position the venue holds for the symbol (signed base units) and its entry price.

    Perpetuals: ``get_positions``.  Spot: the base balance above ``base_reserve`` and above ``held`` (what
    the slots already hold); ``base_reserve`` unset = the holdings are the user's, nothing is taken."""
    if rules.derivatives:
        if not isinstance(client, SupportsPositions):
            return ZERO, None
        qty, entry = ZERO, None
        for pos in await client.get_positions([symbol]):
            if pos.symbol and pos.symbol != symbol:
                continue
            q = dec_or_none(pos.quantity, "quantity") or ZERO
            if pos.side == position_pb2.POSITION_SIDE_SHORT:
                q = -abs(q)
            qty += q
            entry = dec_or_none(pos.entry_price, "entry_price") or entry
        return qty, entry
    if base_reserve is None:
        log.info("spot holdings not taken over: set trading.base_reserve to let the grid sell them")
        return ZERO, None
    base = parse_symbol(symbol).base
    total = ZERO
    for bal in await client.get_balances():
        if bal.asset == base:
            total += dec_or_none(bal.total, "total") or ZERO
    excess = total - base_reserve - held
    return (excess if excess > 0 else ZERO), None
