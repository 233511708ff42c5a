"""The fake's transaction lifecycle on a controllable clock (states from the OpenAPI document's
``PushableTransactionState``; happy path observed in recorded responses, venues.md §4.2:
``waiting_for_approval -> approved -> signed -> pushed_to_blockchain -> mined -> completed``).

A transaction's future is a list of ``(at, state)`` steps; reading it applies every step whose time has
come on :class:`FakeClock`, so tests move chain time explicitly (``clock.advance(5)``) or let it run at
``rate`` fake seconds per real second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["AFTER_APPROVAL", "FakeClock", "FakeTx"]

# Seconds after approval at which each later state is reached.
AFTER_APPROVAL: tuple[tuple[float, str], ...] = (
    (1.0, "signed"),
    (2.0, "pushed_to_blockchain"),
    (4.0, "mined"),
    (6.0, "completed"),
)
_EPOCH = datetime(2026, 12, 1, tzinfo=UTC)


class FakeClock:
    """Fake seconds: ``advance`` moves it; ``rate`` > 0 also lets it run with real time."""

    def __init__(self, rate: float = 0.0) -> None:
        self.rate = rate
        self._offset = 0.0
        self._start = time.monotonic()

    def now(self) -> float:
        return self._offset + (time.monotonic() - self._start) * self.rate

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def iso(self, at: float | None = None) -> str:
        moment = _EPOCH + timedelta(seconds=self.now() if at is None else at)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class FakeTx:
    id: str
    body: dict[str, Any]
    vault: dict[str, Any]
    asset: dict[str, Any]  # the owned asset's asset_info
    idempotence_id: str
    created: float
    state: str = "waiting_for_approval"
    approval: str = "created"  # ApprovalRequestState
    approver_state: str = "pending"
    error: str = ""
    hash: str = ""
    history: list[tuple[float, str | None, str]] = field(default_factory=list)
    steps: list[tuple[float, str]] = field(default_factory=list)
    modified: float = 0.0

    def move(self, at: float, state: str) -> None:
        self.history.append((at, self.state if self.history else None, state))
        self.state = state
        self.modified = at

    def advance_to(self, now: float) -> list[str]:
        """Apply due steps; returns the states entered."""
        entered = []
        while self.steps and self.steps[0][0] <= now:
            at, state = self.steps.pop(0)
            self.move(at, state)
            entered.append(state)
        return entered
