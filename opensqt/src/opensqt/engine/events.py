"""The engine's event sink: observers told that the engine's state may have changed, and why.

The engine never imports what watches it (the live page, a recorder): the app subscribes a plain
callable.  A notice carries only the reason (``price``, ``report``, ``placed``, ``cancels``, ``reconcile``,
``risk``); the observer reads what it needs from the engine's public views.  Observers run inline and
must be cheap; one that raises is logged and kept out of the trading path (a watcher never stops trading).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

__all__ = ["EngineEvents", "Listener"]

log = structlog.get_logger("opensqt.engine")

Listener = Callable[[str], None]


class EngineEvents:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, reason: str) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(reason)
            except Exception:  # a watcher must never break the engine
                log.exception("engine event listener failed", reason=reason)
