"""Deterministic client order ids: one id per order intent, recomputable after a crash.

Pure (no I/O).  ``osq`` + 26 base32 characters of a SHA-256 over ``strategy|symbol|epoch|level|side|cycle``.
"""

from __future__ import annotations

import base64
import hashlib
import re

from cqc.venues.v1 import order_pb2

__all__ = [
    "CID_PREFIX",
    "REDUCE_PREFIX",
    "client_order_id",
    "is_our_client_order_id",
    "reduce_client_order_id",
]

BUY = order_pb2.ORDER_SIDE_BUY
SELL = order_pb2.ORDER_SIDE_SELL

CID_PREFIX = "osq"
REDUCE_PREFIX = "osr"  # position reductions on a breaker trip: never a grid slot's, never adopted by one
_CID_RE = re.compile(r"^osq[a-z2-7]{26}$")


def client_order_id(namespace: str, level: int, side: int, cycle: int) -> str:
    """Deterministic id of one order intent: ``osq`` + 26 base32 chars of a SHA-256 (29 chars).

    ``namespace`` is ``strategy|symbol|epoch`` (the epoch is a random value created once with the state
    store, so a fresh store never collides with ids a previous run used at the same venue).  The id fits
    every venue we know (<= 32 chars, ``[a-z0-9]``: OKX 32 alphanumeric, Gate 30, Binance 36), and a
    retry after a crash recomputes exactly the same id from the persisted (level, side, cycle).
    """
    if side not in (BUY, SELL):
        raise ValueError(f"side must be BUY or SELL, got {side}")
    digest = hashlib.sha256(f"{namespace}|{level}|{side}|{cycle}".encode()).digest()
    return CID_PREFIX + base64.b32encode(digest).decode("ascii")[:26].lower()


def is_our_client_order_id(cid: str) -> bool:
    """True for ids this engine generates (the reconciler never touches anyone else's orders)."""
    return bool(_CID_RE.match(cid))


def reduce_client_order_id(namespace: str, seq: int, attempt: int) -> str:
    """Deterministic id of attempt ``attempt`` of reduction ``seq`` (engine/reducer.py): ``osr`` + 26
    base32 chars.  A restart recomputes the same id, so an attempt whose outcome is unknown is looked
    up, never sent twice; the grid's id pattern does not match it, so no slot ever adopts it."""
    digest = hashlib.sha256(f"{namespace}|reduce|{seq}|{attempt}".encode()).digest()
    return REDUCE_PREFIX + base64.b32encode(digest).decode("ascii")[:26].lower()
