"""The signer protocol the HTTP transport calls once per attempt.

The transport serialises the body once and passes the very bytes it will send, with the request
target (path including any query string) exactly as it will appear on the wire; a signer never
re-serialises anything, so the signature always covers what the venue receives.  Signing happens per
attempt, so every retry carries a fresh timestamp or token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "PathSigner", "Signer", "split_path"]

# Wall-clock time in integer nanoseconds; integer arithmetic keeps millisecond stamps exact.
Clock = Callable[[], int]
wall_clock: Clock = time.time_ns


@runtime_checkable
class Signer(Protocol):
    def sign(self, method: str, path: str, body: bytes) -> dict[str, str]:
        """Headers to add to a request with this method, path-with-query and exact body bytes."""
        ...


@runtime_checkable
class PathSigner(Protocol):
    """A scheme that signs by adding query parameters (Binance); the transport sends the returned path."""

    def sign_path(self, method: str, path: str, body: bytes) -> tuple[str, dict[str, str]]: ...


def split_path(path: str) -> tuple[str, str]:
    """``"/a/b?x=1"`` -> ``("/a/b", "x=1")``."""
    bare, _, query = path.partition("?")
    return bare, query
