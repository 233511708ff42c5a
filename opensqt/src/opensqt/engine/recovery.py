"""Restart and position recovery, and the startup checks (docs/engine.md "Position recovery").

* :meth:`Recovery.recover` (every start): every slot with an order is settled by one lookup (the
  reconciler's ``resolve``): a PENDING intent is treated as UNRESOLVED, "found" adopts the venue's state
  and fills, "not found" keeps it UNRESOLVED until the landing window since the restart has passed
  (later reconciler passes look again).  A store with slots is then compared with the venue's position:
  a divergence (e.g. the venue lost its state) opens the breaker before the first placement.
* :meth:`Recovery.recover_position` (a fresh store only, ``trading.recover_position``): what the venue
  already holds becomes FILLED slots, so the grid closes that inventory instead of ignoring it.  Two
  steps: :meth:`Recovery.read_position` (venue I/O only) and :meth:`Recovery.commit_position` (the anchor
  first, then the slots; a no-op when the symbol has slots already, so a crash anywhere re-runs it
  safely).  No order is placed here: the next tick places the closing sells.  In a fleet the two steps
  run as the DBOS workflow ``recover-position:<account>:<symbol>:<store epoch>`` (:attr:`runner`, set by
  the fleet; engine/workflows.py): a store's position is recovered exactly once, and a kill -9 in the
  middle is finished by the next process.
* :meth:`Recovery.run_startup_checks`: the §3.1 checks (pure rule in ``risk/startup.py``) over what the
  venue reports; a failed check raises ``StartupCheckFailed``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import structlog

from cqvx.client import SupportsPositions, VenueClient
from cqvx.num import ZERO, dec_or_none, dec_str, round_price, round_quantity
from cqvx.symbols import parse_symbol
from opensqt.config import Config
from opensqt.engine.context import EngineStats, GridContext
from opensqt.engine.ledger import SlotLedger
from opensqt.engine.price_monitor import PriceMonitor
from opensqt.engine.reconciler import Reconciler
from opensqt.engine.venue_queries import first_price, venue_inventory
from opensqt.model.slots import Slot
from opensqt.risk.startup import Check, StartupCheckFailed, startup_checks
from opensqt.strategy.grid import inventory_slots

__all__ = ["Recovery"]

log = structlog.get_logger("opensqt.engine")


class Recovery:
    def __init__(
        self,
        ctx: GridContext,
        *,
        config: Config,
        client: VenueClient,
        ledger: SlotLedger,
        reconciler: Reconciler,
        monitor: PriceMonitor,
        stats: EngineStats,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.symbol = ctx.symbol
        self.client = client
        self.ledger = ledger
        self.reconciler = reconciler
        self.monitor = monitor
        self.stats = stats
        # The fleet's durable runner of the position recovery (called with the store epoch); None: in place.
        self.runner: Callable[[str], Awaitable[dict[str, Any]]] | None = None

    async def _price(self) -> Decimal:
        return self.monitor.latest or await first_price(self.client, self.symbol)

    async def recover(self) -> None:
        """After a restart: settle every slot that has an order, one lookup each; then, when the store
        holds slots, compare its position with the venue's before anything is placed (a divergence
        opens the breaker at once: paused, the reason names ``opensqt resync``)."""
        for cid in self.ledger.order_ids():
            await self.reconciler.resolve(cid)
        if self.ledger.slots and self.ctx.rules is not None:
            await self.reconciler.check_position_at_start()

    @property
    def epoch(self) -> str:
        """The store generation the ledger loaded (the last part of the id namespace)."""
        return self.ctx.namespace.rsplit("|", 1)[-1]

    async def recover_position(self) -> list[Slot]:
        """Fresh state store, existing venue position: create its FILLED slots (original
        initializeSellSlotsFromPosition)."""
        if self.runner is not None:
            out = await self.runner(self.epoch)
            if not out.get("skipped"):
                # The workflow may have committed through an earlier engine of this symbol (it restarted
                # meanwhile): what counts is the store.
                return await self._reload()
        qty, entry, price = await self.read_position()
        return await self.commit_position(qty, entry, price)

    async def _reload(self) -> list[Slot]:
        """The anchor and slots the store holds, into this engine's memory (only when it has none)."""
        ledger = self.ledger
        st = ledger.store.store
        async with ledger.lock:
            if self.ctx.anchor is None:
                anchor = await ledger.store.run(st.get_meta, f"anchor:{self.symbol}")
                self.ctx.anchor = Decimal(anchor) if anchor else None
            if not ledger.slots:
                ledger.slots.update(await ledger.store.run(st.load_slots, self.symbol))
            return list(ledger.slots.values())

    async def read_position(self) -> tuple[Decimal, Decimal, Decimal]:
        """What the venue holds beyond the slots (quantity rounded to the lot; 0: nothing to take over),
        its entry price (0: not reported) and the takeover price.  Venue I/O only."""
        rules, params = self.ctx.rules, self.ctx.params
        assert rules is not None
        qty, entry = await venue_inventory(
            self.client,
            self.symbol,
            rules,
            base_reserve=self.config.trading.base_reserve,
            held=self.ledger.position(),
        )
        qty = round_quantity(abs(qty), rules.lot_size) * (1 if qty >= 0 else -1)
        if qty == 0:
            return ZERO, ZERO, ZERO
        if qty < 0 and not params.neutral:
            log.warning("venue holds a short position; long grid mode leaves it alone", quantity=str(qty))
            return ZERO, ZERO, ZERO
        return qty, entry or ZERO, await self._price()

    async def commit_position(self, qty: Decimal, entry: Decimal, price: Decimal) -> list[Slot]:
        """Commit the slots holding ``qty`` (from :meth:`read_position`); nothing when the symbol has
        slots already (a re-run after a crash) or ``qty`` is 0."""
        rules, params = self.ctx.rules, self.ctx.params
        assert rules is not None
        if qty == 0 or self.ledger.slots:
            return []
        if self.ctx.anchor is None:
            # The anchor is committed first: a crash before the slots are saved re-runs this recovery
            # with the same anchor (the store still has no slots).
            await self.ledger.set_anchor(round_price(price, rules.tick_size, is_buy=True))
        anchor = self.ctx.anchor
        assert anchor is not None
        # Spot reports no entry: the inventory is valued at the takeover price (the anchor).
        slots = inventory_slots(qty, anchor, params, rules, entry_price=entry if entry else anchor)
        async with self.ledger.lock:
            if self.ledger.slots:
                return []
            await self.ledger.save_new(slots)
        self.stats.recovered_slots = len(slots)
        log.info(
            "recovered venue position into sell slots",
            symbol=self.symbol,
            quantity=dec_str(qty),
            slots=len(slots),
            anchor=str(anchor),
        )
        return slots

    async def run_startup_checks(self) -> list[Check]:
        rules = self.ctx.rules
        assert rules is not None
        price = await self._price()
        quote = parse_symbol(self.symbol).quote
        available = ZERO
        for bal in await self.client.get_balances():
            if bal.asset == quote:
                available += dec_or_none(bal.available, "available") or ZERO
        has_position = any(s.position != 0 for s in self.ledger.slots.values())
        leverage: Decimal | None = None  # the venue's, from its positions (risk/startup.py)
        if isinstance(self.client, SupportsPositions):
            for pos in await self.client.get_positions([self.symbol]):
                if dec_or_none(pos.quantity, "quantity"):
                    has_position = True
                    lev = dec_or_none(pos.leverage, "leverage")
                    if lev is not None and (leverage is None or lev > leverage):
                        leverage = lev
        fee = self.config.venue.fee_rate
        if fee is None:
            fee = rules.maker_fee
        checks = startup_checks(
            price=price,
            available_quote=available,
            has_position=has_position,
            params=self.ctx.params,
            rules=rules,
            fee_rate=fee,
            position_safety_check=self.config.trading.position_safety_check,
            leverage=leverage,
            max_leverage=self.config.risk.max_leverage,
        )
        self.ctx.checks = checks
        failed = [c for c in checks if not c.ok]
        if failed:
            raise StartupCheckFailed(failed)
        return checks
