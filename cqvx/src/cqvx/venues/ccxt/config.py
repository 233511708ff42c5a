"""Runtime configuration of a ccxt-backed client, and the ccxt instance built from it.

One owner per mechanism (docs/venues.md):

* Rate limiting: ccxt (``enableRateLimit=True``): it knows each venue's per-endpoint weights.  The
  adapter adds no limiter of its own, so the two never stack.
* Retries: the adapter.  ccxt's ``maxRetriesOnFailure`` is forced to 0; the adapter repeats only
  reads whose error is ``retry_safe`` (``read_retries`` times, with :class:`cqvx.backoff.Backoff`)
  and never repeats a placement or cancel.
* Logging: ccxt's ``verbose`` is forced off and its logger is replaced by one whose filter removes
  every credential value from each record, so nothing ccxt logs carries a key, secret or passphrase.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cqvx.secrets import Secret
from cqvx.venues.ccxt.quirks import VenueQuirks

__all__ = ["CcxtConfig", "RedactingFilter", "build_exchange"]


@dataclass(frozen=True, slots=True)
class CcxtConfig:
    venue: str  # the quirk table's key: binance, bybit, okx, bitget, gate
    api_key: Secret | None = None
    secret: Secret | None = None
    passphrase: Secret | None = None  # OKX and Bitget ("password" in ccxt)
    # The account's user id (ccxt's ``uid`` credential): Gate's futures order channel names it in its
    # subscribe payload (https://www.gate.com/docs/developers/futures/ws/en/#orders-api).
    uid: str = ""
    market_types: tuple[str, ...] = ()  # () = the quirk table's default
    # The settle currency the account summary reads (OKX's details row, Bitget's productType and account
    # row); "" = the one settle currency of the loaded derivative markets (.account).
    settle: str = ""
    rest_url: str = ""  # overrides every ccxt ``urls['api']`` entry (fakes, testnets)
    timeout_s: float = 10.0
    read_retries: int = 2
    retry_initial_s: float = 0.2
    retry_max_s: float = 2.0
    stream_retry_max_s: float = 30.0  # the stream relay's backoff cap (re-opening a WebSocket)
    positions_poll_s: float = 5.0  # subscribe_positions polls get_positions
    listen_key_keepalive_s: float | None = None  # None = the quirk table's interval (tests shorten it)
    ws_url: str = ""  # overrides the scheme and host of every ``ws``/``wss`` url of ccxt's ``urls['api']``
    sandbox: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # extra ccxt options (documented ones only)
    # ccxt's own limiter (the one rate-limit owner); off only against a loopback fake, which has no
    # limits of its own (not settable from a config file).
    rate_limit: bool = True

    def secrets(self) -> list[str]:
        return [s.reveal() for s in (self.api_key, self.secret, self.passphrase) if s]


class RedactingFilter(logging.Filter):
    """Replaces every given value in a record's final message with ``***``."""

    def __init__(self, values: list[str]) -> None:
        super().__init__()
        self._values = [v for v in values if v]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for value in self._values:
            message = message.replace(value, "***")
        record.msg, record.args = message, ()
        return True


def _override_urls(api: Any, base: str, scheme: str = "http") -> Any:
    """Every ``scheme`` url (``http``: REST, ``ws``: WebSocket) of ccxt's ``urls['api']`` with its
    scheme and host replaced (paths kept)."""
    if isinstance(api, dict):
        return {k: _override_urls(v, base, scheme) for k, v in api.items()}
    if isinstance(api, str) and api.startswith(scheme):
        parts, to = urlsplit(api), urlsplit(base)
        return urlunsplit((to.scheme, to.netloc, parts.path, parts.query, parts.fragment))
    return api


def build_exchange(config: CcxtConfig, quirks: VenueQuirks) -> Any:
    """A configured ``ccxt.pro`` exchange instance (no I/O)."""
    import ccxt.pro  # here, not at module level: see the package docstring

    types = list(config.market_types or quirks.market_types)
    options: dict[str, Any] = {
        "fetchCurrencies": False,  # currencies need wallet endpoints; markets carry what we use
        "fetchMarkets": {"types": types},
        "maxRetriesOnFailure": 0,  # the adapter owns retries
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    }
    if "spot" not in types:
        # Derivatives only: calls that take no symbol (balance, open orders) must go to the
        # derivatives account, not ccxt's default spot one.
        options["defaultType"] = "swap"
    keepalive = config.listen_key_keepalive_s or quirks.listen_key_keepalive_s
    if quirks.listen_key_keepalive_s is not None and keepalive:
        options["listenKeyRefreshRate"] = int(keepalive * 1000)
    options.update(dict(quirks.ccxt_options))
    options.update(config.options)
    params: dict[str, Any] = {
        "enableRateLimit": config.rate_limit,
        "timeout": int(config.timeout_s * 1000),
        "verbose": False,
        "options": options,
    }
    if config.api_key:
        params["apiKey"] = config.api_key.reveal()
    if config.secret:
        params["secret"] = config.secret.reveal()
    if config.passphrase:
        params["password"] = config.passphrase.reveal()
    if config.uid:
        params["uid"] = config.uid
    exchange = getattr(ccxt.pro, quirks.ccxt_id)(params)
    exchange.number = str  # unified structures carry decimal text, never floats (parse.py)
    if config.sandbox:
        exchange.set_sandbox_mode(True)
    if config.rest_url:
        exchange.urls["api"] = _override_urls(exchange.urls["api"], config.rest_url)
    if config.ws_url:
        # Not only ``urls['api']['ws']``: Gate keeps its futures WebSocket urls under ``swap``.
        exchange.urls["api"] = _override_urls(exchange.urls["api"], config.ws_url, "ws")
    logger = logging.getLogger(f"cqvx.venues.ccxt.{quirks.venue}.{id(exchange)}")
    logger.addFilter(RedactingFilter(config.secrets()))
    exchange.logger = logger
    exchange.log = lambda *args: None  # ccxt's verbose printer; verbose is off, and stays silent
    return exchange
