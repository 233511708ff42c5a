"""The capability table: one matrix column per capability, and the tag tying a test to its column.

Rules: a capability is ✓ only when every test tagged with it passed; a test tagged with an unknown
key is a programming error (raised at import).  Add a capability here first, then its tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["CAPABILITIES", "capability", "capability_of"]

F = TypeVar("F", bound=Callable[..., Any])

# (key, column title, what passing proves).  The order is the column order of the matrix.
CAPABILITIES: tuple[tuple[str, str, str], ...] = (
    ("place", "place", "place_order returns an ExecutionReport with our client order id, OPEN/PENDING_NEW"),
    ("get", "get", "get_order by venue order id and by client order id"),
    ("list", "list", "get_orders lists the open order"),
    (
        "order_history",
        "history",
        "get_orders with every status lists a cancelled order as CANCELLED beside an open one",
    ),
    ("cancel", "cancel", "cancel_order by either id ends CANCELLED"),
    ("cancel_not_found", "cancel unknown", "cancelling an unknown order raises NotFound"),
    ("duplicate", "duplicate id", "a reused client order id leaves one order at the venue"),
    ("insufficient_funds", "no funds", "an unfundable order raises InsufficientFunds"),
    (
        "rate_limited",
        "rate limited",
        "a 429 the venue really served is retried transparently or raised as RateLimited(retry_after)",
    ),
    ("book_snapshot", "book snapshot", "get_order_book is sorted, uncrossed and respects depth"),
    ("book_resync", "book resync", "subscribe_order_book recovers after a dropped stream and a sequence gap"),
    ("trade_stream", "trades", "subscribe_trades delivers a public trade"),
    (
        "executions",
        "executions",
        "subscribe_executions delivers each fill the venue made exactly once (quantities add up, "
        "no trade id twice)",
    ),
    (
        "exec_reconnect",
        "exec reconnect",
        "after the stream's connection is cut, a fill made meanwhile is delivered exactly once and the "
        "stream keeps delivering",
    ),
    (
        "exec_gap",
        "exec gap",
        "a fill whose update was lost in transit is delivered exactly once later, or a Gap is announced "
        "and get_order shows it",
    ),
    (
        "batch_place",
        "batch place",
        "place_orders answers per item, in order; a refused item is its taxonomy error and does not "
        "sink the others",
    ),
    (
        "batch_cancel",
        "batch cancel",
        "cancel_orders answers per item, in order; an unknown order is NotFound and the others are cancelled",
    ),
    (
        "cancel_all",
        "cancel all",
        "cancel_all_orders cancels exactly the open orders of the symbol (and side) and returns them",
    ),
    (
        "positions",
        "positions",
        "after a perpetual fill get_positions shows its side, size and entry; flat is no position or "
        "size zero",
    ),
    (
        "funding_history",
        "funding history",
        "get_funding_rate_history lists settled rates oldest first; a new settlement shows with the "
        "venue's rate and time",
    ),
    (
        "funding_payments",
        "funding payments",
        "get_funding_payments lists the account's funding payments oldest first; a settlement on an open "
        "position shows with the venue's signed amount (+ received), asset and time",
    ),
    ("health", "health", "health() reports reachable with a latency >= 0"),
    ("close", "close", "aclose ends active streams and is idempotent"),
)
_CAPABILITY_KEYS = frozenset(key for key, _, _ in CAPABILITIES)

_ATTR = "_cqvx_capability"


def capability(name: str) -> Callable[[F], F]:
    """Tag a conformance test with the capability (matrix column) it proves."""
    if name not in _CAPABILITY_KEYS:
        raise ValueError(f"unknown capability {name!r}")

    def mark(fn: F) -> F:
        setattr(fn, _ATTR, name)
        return fn

    return mark


def capability_of(fn: object) -> str | None:
    value = getattr(fn, _ATTR, None)
    return value if isinstance(value, str) else None
