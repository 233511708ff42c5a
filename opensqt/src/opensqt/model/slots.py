"""Grid slots: the Super Slot state machine and the margin lock (client order ids: ``client_ids.py``).

A slot is one grid level (an integer ``level``: price = anchor + level * interval).  It holds at most one
order at a time and a signed position (base units; > 0 long, < 0 short in neutral mode).

States (reference §2.1, plus the two the original lacked):

* ``FREE``             no order in flight; the strategy may act on the slot.
* ``PENDING``          the intent is recorded and the placement sent, not yet acknowledged.
* ``LOCKED``           a live venue order is bound to the slot.
* ``CANCEL_REQUESTED`` a cancel was sent for the bound order; waiting for the venue's answer.
* ``UNRESOLVED``       the placement's outcome is unknown (timeout / disconnect); it is resolved by
                       looking the order up, never by re-sending.  A lookup's "not found" is no proof
                       while the request may still land (``NOT_SEEN``: the slot stays UNRESOLVED); only
                       after the landing window (docs/engine.md) is it ``ABSENT``.

``ABSENT`` does not consume the cycle: the next submit of the same side at the slot reuses the SAME client
order id, so a request that lands later after all is answered by the venue as a duplicate (and bound by
the executor's lookup), never placed as a second order.

Every transition is in :data:`TRANSITIONS`; anything else raises :class:`IllegalTransition` and leaves the
slot untouched.  Fills accumulate per order and can never exceed the order quantity.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from cqc.venues.v1 import order_pb2
from opensqt.model.client_ids import CID_PREFIX, client_order_id, is_our_client_order_id

__all__ = [
    "CID_PREFIX",
    "TRANSITIONS",
    "FillResult",
    "IllegalTransition",
    "MarginLock",
    "OrderIntent",
    "Slot",
    "SlotEvent",
    "SlotState",
    "client_order_id",
    "is_our_client_order_id",
]

BUY = order_pb2.ORDER_SIDE_BUY
SELL = order_pb2.ORDER_SIDE_SELL
ZERO = Decimal(0)

# ------------------------------------------------------------------------------------ state machine


class SlotState(enum.StrEnum):
    FREE = "FREE"
    PENDING = "PENDING"
    LOCKED = "LOCKED"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    UNRESOLVED = "UNRESOLVED"


class SlotEvent(enum.StrEnum):
    SUBMIT = "submit"  # intent recorded, placement about to be sent
    ACK = "ack"  # the venue confirmed the order (REST answer, NEW report, or lookup found it open)
    REJECT = "reject"  # the placement was refused (taxonomy error, or local denial)
    TIMEOUT = "timeout"  # outcome unknown
    ABSENT = "absent"  # not found after the landing window: the placement never happened
    NOT_SEEN = "not_seen"  # not found, but the request may still land: stay UNRESOLVED, look again later
    FILL_PARTIAL = "fill_partial"
    FILL_COMPLETE = "fill_complete"
    CANCEL_REQUEST = "cancel_request"
    CANCEL_FAILED = "cancel_failed"  # the cancel was refused; the order is still working
    CLOSED = "closed"  # terminal without (complete) fill: cancelled, expired, rejected, failed
    ADOPT = "adopt"  # the reconciler bound a live venue order of ours that no slot knew


S, E = SlotState, SlotEvent
TRANSITIONS: dict[tuple[SlotState, SlotEvent], SlotState] = {
    (S.FREE, E.SUBMIT): S.PENDING,
    (S.FREE, E.ADOPT): S.LOCKED,
    (S.PENDING, E.ACK): S.LOCKED,
    (S.PENDING, E.REJECT): S.FREE,
    (S.PENDING, E.TIMEOUT): S.UNRESOLVED,
    # The order stream can beat the REST answer (instant fill / instant cancel).
    (S.PENDING, E.FILL_PARTIAL): S.LOCKED,
    (S.PENDING, E.FILL_COMPLETE): S.FREE,
    (S.PENDING, E.CLOSED): S.FREE,
    (S.UNRESOLVED, E.ACK): S.LOCKED,
    (S.UNRESOLVED, E.ABSENT): S.FREE,
    (S.UNRESOLVED, E.NOT_SEEN): S.UNRESOLVED,
    # Stuck in flight beyond the bound (the reconciler): the outcome is unknown, resolve by lookup.
    (S.PENDING, E.NOT_SEEN): S.UNRESOLVED,
    (S.UNRESOLVED, E.FILL_PARTIAL): S.LOCKED,
    (S.UNRESOLVED, E.FILL_COMPLETE): S.FREE,
    (S.UNRESOLVED, E.CLOSED): S.FREE,
    (S.LOCKED, E.ACK): S.LOCKED,  # a NEW report after the REST answer
    (S.LOCKED, E.FILL_PARTIAL): S.LOCKED,
    (S.LOCKED, E.FILL_COMPLETE): S.FREE,
    (S.LOCKED, E.CANCEL_REQUEST): S.CANCEL_REQUESTED,
    (S.LOCKED, E.CLOSED): S.FREE,
    (S.CANCEL_REQUESTED, E.ACK): S.CANCEL_REQUESTED,
    (S.CANCEL_REQUESTED, E.FILL_PARTIAL): S.CANCEL_REQUESTED,
    (S.CANCEL_REQUESTED, E.FILL_COMPLETE): S.FREE,
    (S.CANCEL_REQUESTED, E.CANCEL_FAILED): S.LOCKED,
    (S.CANCEL_REQUESTED, E.CLOSED): S.FREE,
}
del S, E


class IllegalTransition(RuntimeError):
    """An event that the slot's current state does not allow (a bug or a confused venue)."""


@dataclass(slots=True)
class OrderIntent:
    """The one order bound to a slot (or being placed for it)."""

    client_order_id: str
    side: int
    price: Decimal
    quantity: Decimal
    cycle: int
    post_only: bool
    reduce_only: bool
    order_id: str = ""
    filled: Decimal = ZERO
    fill_cost: Decimal = ZERO  # sum(qty * price) over fills, for the average fill price

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled


@dataclass(frozen=True, slots=True)
class FillResult:
    quantity: Decimal  # the fill actually applied
    complete: bool
    realized_pnl: Decimal  # quote PnL realized by the closing part of this fill (0 for an opening fill)


@dataclass(slots=True)
class Slot:
    level: int
    state: SlotState = SlotState.FREE
    position: Decimal = ZERO  # signed base quantity held by this slot
    entry_price: Decimal = ZERO  # average price of the open position
    cycle: int = 0  # number of orders ever submitted for this slot; part of the client order id
    post_only_rejects: int = 0  # consecutive post-only rejections (reset by any fill)
    order: OrderIntent | None = None
    history: list[SlotState] = field(default_factory=list, repr=False, compare=False)

    # ---- helpers

    def copy(self) -> Slot:
        return replace(self, order=replace(self.order) if self.order else None, history=[])

    def _go(self, event: SlotEvent) -> SlotState:
        target = TRANSITIONS.get((self.state, event))
        if target is None:
            raise IllegalTransition(f"slot {self.level}: {event.value} not allowed in {self.state.value}")
        return target

    def _require_order(self, event: SlotEvent) -> OrderIntent:
        if self.order is None:  # pragma: no cover - guarded by the table (only FREE has no order)
            raise IllegalTransition(f"slot {self.level}: {event.value} with no order bound")
        return self.order

    def _set(self, state: SlotState) -> None:
        self.history.append(self.state)
        self.state = state
        if state is SlotState.FREE:
            self.order = None

    # ---- events

    def submit(
        self,
        *,
        namespace: str,
        side: int,
        price: Decimal,
        quantity: Decimal,
        post_only: bool,
        reduce_only: bool,
    ) -> OrderIntent:
        """Bind a new order intent (FREE -> PENDING); the caller persists it BEFORE sending it."""
        target = self._go(SlotEvent.SUBMIT)
        if quantity <= 0 or price <= 0:
            raise ValueError(f"slot {self.level}: price and quantity must be > 0")
        cycle = self.cycle + 1
        intent = OrderIntent(
            client_order_id=client_order_id(namespace, self.level, side, cycle),
            side=side,
            price=price,
            quantity=quantity,
            cycle=cycle,
            post_only=post_only,
            reduce_only=reduce_only,
        )
        self.cycle = cycle
        self.order = intent
        self._set(target)
        return intent

    def adopt(self, intent: OrderIntent) -> None:
        """Bind a live venue order found by the reconciler (FREE -> LOCKED); its fills are applied after."""
        target = self._go(SlotEvent.ADOPT)
        if intent.filled != 0 or intent.quantity <= 0:
            raise ValueError(f"slot {self.level}: an adopted intent starts unfilled with quantity > 0")
        self.cycle = max(self.cycle, intent.cycle)
        self.order = intent
        self._set(target)

    def ack(self, order_id: str = "") -> None:
        target = self._go(SlotEvent.ACK)
        order = self._require_order(SlotEvent.ACK)
        if order_id:
            order.order_id = order_id
        self._set(target)

    def reject(self, *, post_only_reject: bool = False) -> None:
        target = self._go(SlotEvent.REJECT)
        self._note_post_only(post_only_reject)
        self._set(target)

    def timeout(self) -> None:
        self._set(self._go(SlotEvent.TIMEOUT))

    def absent(self) -> None:
        """Proven never placed: FREE, and the cycle is given back so that the next submit of the same
        side reuses the same client order id (a late landing then answers as a duplicate)."""
        target = self._go(SlotEvent.ABSENT)
        order = self._require_order(SlotEvent.ABSENT)
        if order.cycle == self.cycle:
            self.cycle = order.cycle - 1
        self._set(target)

    def not_seen(self) -> None:
        """Not found, but the request may still land (UNRESOLVED stays; PENDING becomes UNRESOLVED)."""
        self._set(self._go(SlotEvent.NOT_SEEN))

    def external_fill(self, side: int, quantity: Decimal, price: Decimal) -> Decimal:
        """A fill of an order of ours that is NOT bound to this slot (a late order the slot moved on
        from, cancelled by the reconciler): it moves the position all the same; returns realized PnL.
        No state change: the slot's own order, if any, is untouched."""
        if quantity <= 0:
            raise ValueError(f"slot {self.level}: fill quantity must be > 0")
        return self._apply_position(quantity if side == BUY else -quantity, price)

    def assume(self, other: Slot) -> None:
        """Take over the state computed on a trial copy (after it was committed to the store)."""
        if other.level != self.level:
            raise ValueError("assume: another level")
        self.history.extend(other.history)  # the trial's path starts at our current state
        self.state = other.state
        self.position = other.position
        self.entry_price = other.entry_price
        self.cycle = other.cycle
        self.post_only_rejects = other.post_only_rejects
        self.order = other.order

    def request_cancel(self) -> None:
        self._set(self._go(SlotEvent.CANCEL_REQUEST))

    def cancel_failed(self) -> None:
        self._set(self._go(SlotEvent.CANCEL_FAILED))

    def close(self, *, post_only_reject: bool = False) -> None:
        """Terminal without complete fill (cancelled / expired / rejected / failed)."""
        target = self._go(SlotEvent.CLOSED)
        self._note_post_only(post_only_reject)
        self._set(target)

    def fill(self, quantity: Decimal, price: Decimal) -> FillResult:
        """Apply one fill of the bound order; raises on overfill and leaves the slot unchanged."""
        if quantity <= 0:
            raise ValueError(f"slot {self.level}: fill quantity must be > 0")
        order = self.order
        if order is None:
            raise IllegalTransition(f"slot {self.level}: fill with no order bound")
        new_filled = order.filled + quantity
        if new_filled > order.quantity:
            raise IllegalTransition(
                f"slot {self.level}: fill {quantity} exceeds the order's remaining {order.remaining}"
            )
        complete = new_filled == order.quantity
        target = self._go(SlotEvent.FILL_COMPLETE if complete else SlotEvent.FILL_PARTIAL)
        order.filled = new_filled
        order.fill_cost += quantity * price
        realized = self._apply_position(quantity if order.side == BUY else -quantity, price)
        self.post_only_rejects = 0
        self._set(target)
        return FillResult(quantity, complete, realized)

    def _apply_position(self, delta: Decimal, price: Decimal) -> Decimal:
        """Move the position by a signed fill; returns realized PnL of the part that closes exposure."""
        pos = self.position
        realized = ZERO
        if pos == 0 or (pos > 0) == (delta > 0):  # opening / adding: weighted average entry
            new = pos + delta
            self.entry_price = (abs(pos) * self.entry_price + abs(delta) * price) / abs(new)
            self.position = new
            return realized
        closing = min(abs(delta), abs(pos))
        direction = Decimal(1) if pos > 0 else Decimal(-1)
        realized = closing * (price - self.entry_price) * direction
        new = pos + delta
        if new == 0:
            self.entry_price = ZERO
        elif (new > 0) != (pos > 0):  # flipped through zero: the rest opens at this price
            self.entry_price = price
        self.position = new
        return realized

    def _note_post_only(self, post_only_reject: bool) -> None:
        if post_only_reject:
            self.post_only_rejects += 1

    # ---- queries

    @property
    def free(self) -> bool:
        return self.state is SlotState.FREE

    def use_post_only(self, max_rejects: int) -> bool:
        """Post-only until ``max_rejects`` consecutive post-only rejections, then a plain limit order."""
        return self.post_only_rejects < max_rejects


# ------------------------------------------------------------------------------------- margin lock


class MarginLock:
    """After an insufficient-funds answer, no placement for ``duration`` seconds (explicit state, §12.7)."""

    def __init__(self, duration: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.duration = duration
        self._clock = clock
        self._until: float | None = None
        self.triggered_count = 0

    def trigger(self) -> None:
        self._until = self._clock() + self.duration
        self.triggered_count += 1

    @property
    def locked(self) -> bool:
        if self._until is None:
            return False
        if self._clock() >= self._until:
            self._until = None  # expired: clear, as the original does on the next tick
            return False
        return True

    @property
    def remaining(self) -> float:
        return max(0.0, self._until - self._clock()) if self.locked and self._until is not None else 0.0
