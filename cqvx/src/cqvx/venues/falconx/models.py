"""Wire schemas of the FalconX REST API (msgspec Structs; unknown fields are tolerated).

Every number is a ``msgspec.Raw``: FalconX sends prices and balances as JSON numbers (the official
client's examples: ``"buy_price": 12650``, ``"balance": 187.624207``) and quantities as strings
(``"value": "10"``); :mod:`cqvx.venues.falconx.parse` reads each one from its raw text into an exact
Decimal through :func:`cqvx.num.dec`, never through a float.  Shapes: official client docstrings
(PyPI ``falconx``) and venues.md §3.2 / §11 (``error`` is ``{code, reason}`` per the Go client;
responses may also carry ``warnings``, ``position_in`` and ``position_out``).
"""

from __future__ import annotations

import msgspec

__all__ = ["NULL", "Balance", "FxError", "Pair", "Quantity", "Quote", "Status", "TokenPair"]

# An absent number reads as JSON null (msgspec cannot type ``Raw | None``: null would be the None).
NULL = msgspec.Raw(b"null")


class TokenPair(msgspec.Struct, frozen=True):
    base_token: str
    quote_token: str


class Pair(TokenPair, frozen=True):
    """An entry of GET /v1/pairs."""


class Quantity(msgspec.Struct, frozen=True):
    token: str
    value: msgspec.Raw


class FxError(msgspec.Struct, frozen=True):
    code: str | int | None = None
    reason: str | None = None


class Status(msgspec.Struct, frozen=True):
    """The envelope every object response carries: ``status`` success/failure and ``error``."""

    status: str | None = None
    error: FxError | str | None = None


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    """A quote (POST /v1/quotes, GET /v1/quotes/{id}), an executed quote (POST /v1/quotes/execute,
    GET /v1/quotes history) or an order (POST /v1/order): one shape with optional parts."""

    status: str | None = None
    error: FxError | str | None = None
    fx_quote_id: str
    token_pair: TokenPair
    quantity_requested: Quantity
    side_requested: str
    t_quote: str
    t_expiry: str
    buy_price: msgspec.Raw = NULL
    sell_price: msgspec.Raw = NULL
    platform: str | None = None
    is_filled: bool = False
    side_executed: str | None = None
    price_executed: msgspec.Raw = NULL
    t_execute: str | None = None
    client_order_id: str | None = None
    # POST /v1/order and /v3/order additions.
    order_type: str | None = None
    time_in_force: str | None = None
    limit_price: msgspec.Raw = NULL
    fee_usd: msgspec.Raw = NULL


class Balance(msgspec.Struct, frozen=True):
    """An entry of GET /v1/balances; a negative balance is valid (credit lines, venues.md §11)."""

    token: str
    balance: msgspec.Raw
    platform: str | None = None
