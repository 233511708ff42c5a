"""What the fake holds: products with their external liquidity, WebSocket connections, wire helpers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

P = "/api/v3/brokerage"
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_ZERO = Decimal(0)


def _s(d: Decimal) -> str:
    if not d:
        return "0"
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class FakeProduct:
    product_id: str
    base_increment: str = "0.00000001"
    quote_increment: str = "0.01"
    base_min_size: str = "0.00000001"
    base_max_size: str = "3400"
    quote_min_size: str = "1"
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    # A futures product: its ``future_product_details`` object (products reference); None for spot.
    future: dict[str, Any] | None = None
    # The quote currency when the id does not name it (futures: USD; INTX perpetuals: USDC).
    quote_currency: str = ""
    product_venue: str = ""  # "FCM" (US futures), "INTX" (perpetuals), "" for spot

    @property
    def base(self) -> str:
        if self.future is not None:
            return str(self.future.get("contract_root_unit", ""))
        return self.product_id.split("-")[0]

    @property
    def quote(self) -> str:
        if self.quote_currency:
            return self.quote_currency
        return "USD" if self.future is not None else self.product_id.split("-")[1]

    def wire(self) -> dict[str, Any]:
        mid = ""
        if self.bids and self.asks:
            mid = _s((max(self.bids) + min(self.asks)) / 2)
        return {
            "product_id": self.product_id,
            "price": mid,
            "volume_24h": "100",
            "base_increment": self.base_increment,
            "quote_increment": self.quote_increment,
            "price_increment": self.quote_increment,
            "quote_min_size": self.quote_min_size,
            "quote_max_size": "1000000",
            "base_min_size": self.base_min_size,
            "base_max_size": self.base_max_size,
            "status": "online",
            "cancel_only": False,
            "limit_only": False,
            "post_only": False,
            "trading_disabled": False,
            "is_disabled": False,
            "product_type": "SPOT" if self.future is None else "FUTURE",
            "quote_currency_id": self.quote,
            "base_currency_id": self.base if self.future is None or self.product_venue == "INTX" else "",
            "product_venue": self.product_venue or ("FCM" if self.future is not None else "CBE"),
            "future_product_details": self.future,
        }


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    kind: Literal["market", "user"]
    seq: int = -1
    skip: int = 0
    subs: dict[str, set[str]] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _AuthError(Exception):
    pass


def _default_products() -> list[FakeProduct]:
    return [
        FakeProduct(
            "BTC-USD",
            bids={Decimal("49990"): Decimal("1.5"), Decimal("49980"): Decimal("2")},
            asks={Decimal("50010"): Decimal("1.2"), Decimal("50020"): Decimal("3")},
        ),
        FakeProduct(
            "ETH-USD",
            base_increment="0.0001",
            bids={Decimal("2999"): Decimal("10")},
            asks={Decimal("3001"): Decimal("12")},
        ),
    ]
