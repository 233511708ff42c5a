"""Coinbase Advanced Trade (``/api/v3/brokerage`` REST + WebSocket) as a :class:`cqvx.client.VenueClient`.

Read top to bottom like the request path: config -> auth -> endpoints -> models -> parse -> errors ->
client -> stream.
"""

from cqvx.venues.coinbase.client import CoinbaseClient
from cqvx.venues.coinbase.config import CoinbaseConfig
from cqvx.venues.coinbase.parse import FuturesBalanceSummary

__all__ = ["CoinbaseClient", "CoinbaseConfig", "FuturesBalanceSummary"]
