"""Settings of the Coinbase Advanced Trade adapter, and where credentials come from.

Credentials (read by :meth:`CoinbaseConfig.from_env`, never logged):

* ``COINBASE_API_KEY_NAME`` + ``COINBASE_API_KEY_SECRET`` (or ``COINBASE_API_KEY_SECRET_FILE``): a CDP
  key (name ``organizations/{org}/apiKeys/{id}`` or a bare id; secret an EC P-256 PEM or a base64
  Ed25519 key) or a legacy API key + HMAC secret; or
* ``COINBASE_KEY_FILE``: the JSON key file the CDP portal downloads (``{"name"|"id", "privateKey"}``).

``key_kind`` picks the signing scheme; ``"auto"`` decides from the key material (see
:func:`cqvx.venues.coinbase.auth.detect_key_kind`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cqvx.secrets import MissingSecret, Secret, load_secret

__all__ = ["CoinbaseConfig", "KeyKind"]

KeyKind = Literal["auto", "cdp", "legacy"]


@dataclass(frozen=True, slots=True)
class CoinbaseConfig:
    # Endpoints (venues.md §1.1; websocket-overview page lists both WS hosts).
    rest_url: str = "https://api.coinbase.com"
    ws_market_url: str = "wss://advanced-trade-ws.coinbase.com"
    ws_user_url: str = "wss://advanced-trade-ws-user.coinbase.com"
    # Host named in the JWT ``uri`` claim; the real API host even when rest_url points at a proxy.
    jwt_host: str = "api.coinbase.com"

    key_name: str = ""
    key_secret: Secret | None = field(default=None, repr=False)
    key_kind: KeyKind = "auto"

    # REST rate limits: 30 req/s per user on private endpoints, 10 req/s per IP on public ones
    # (Advanced Trade REST rate-limits page; venues.md §1.5).  burst=rate keeps at most one second's
    # worth in flight.
    private_rps: float = 30.0
    public_rps: float = 10.0
    # WebSocket: unauthenticated messages 8/s per IP and connections 8/s per IP
    # (https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-rate-limits).
    ws_messages_per_s: float = 8.0

    timeout_s: float = 10.0
    retries: int = 3
    retry_base_delay_s: float = 0.25

    # The server drops a connection that has not subscribed within 5 s (websocket-overview page);
    # the stream sends its subscriptions right after connecting, well inside this deadline.
    subscribe_deadline_s: float = 5.0
    # Heartbeats arrive every second once subscribed; silence this long forces a reconnect.
    heartbeat_timeout_s: float = 10.0
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 30.0

    # GET /accounts allows up to 250 per page; orders and fills pages use the same size.
    page_limit: int = 250
    # How far back an order is searched by client order id when the placement outcome is unknown.
    lookup_window_s: float = 24 * 3600.0
    # batch_cancel accepts at most 100 order ids per request.
    cancel_batch_max: int = 100
    # Remembered fill ids per order stream (de-duplication across reconnects).
    fill_dedup_size: int = 100_000
    # Execution reports one subscriber may have queued; beyond it the stream ends with Unavailable
    # (never a silent drop) and the consumer re-subscribes and reconciles.
    executions_queue_max: int = 10_000
    # subscribe_positions polls the positions endpoints this often (CoinbaseClient.subscribe_positions).
    positions_poll_s: float = 5.0
    # Derivatives: US futures through the CFM account, and perpetuals on Coinbase International
    # (INTX) through the perpetuals portfolio with this uuid ("" = no INTX portfolio; the perpetuals
    # endpoints of https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/perpetuals).
    cfm_enabled: bool = True
    intx_portfolio_uuid: str = ""

    @property
    def has_credentials(self) -> bool:
        return bool(self.key_name) and self.key_secret is not None and bool(self.key_secret)

    def with_credentials(
        self, key_name: str, key_secret: Secret | str, kind: KeyKind = "auto"
    ) -> CoinbaseConfig:
        secret = key_secret if isinstance(key_secret, Secret) else Secret(key_secret)
        return replace(self, key_name=key_name, key_secret=secret, key_kind=kind)

    @classmethod
    def from_env(
        cls, *, environ: Mapping[str, str] | None = None, prefix: str = "COINBASE_", **overrides: object
    ) -> CoinbaseConfig:
        """Credentials from the environment; raises :class:`MissingSecret` naming the missing variable."""
        env = os.environ if environ is None else environ
        base = cls(**overrides)  # type: ignore[arg-type]
        key_file = env.get(f"{prefix}KEY_FILE")
        if key_file:
            name, secret = _read_key_file(Path(key_file))
            return replace(base, key_name=name, key_secret=secret)
        name_var = f"{prefix}API_KEY_NAME"
        name = env.get(name_var, "")
        if not name:
            raise MissingSecret(
                f"environment variable {name_var} is not set (or set {prefix}KEY_FILE to a CDP key file)"
            )
        secret = load_secret(f"{prefix}API_KEY_SECRET", environ=env)
        kind = env.get(f"{prefix}KEY_KIND", "auto")
        if kind not in ("auto", "cdp", "legacy"):
            raise MissingSecret(f"{prefix}KEY_KIND must be auto, cdp or legacy")
        return replace(base, key_name=name, key_secret=secret, key_kind=kind)  # type: ignore[arg-type]


def _read_key_file(path: Path) -> tuple[str, Secret]:
    """The CDP portal's key file: ``{"name": ..., "privateKey": ...}`` (newer files use ``"id"``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingSecret(f"key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError):
        # Never include the content: it is a private key.
        raise MissingSecret(f"key file {path} is not a readable JSON key file") from None
    if not isinstance(data, dict):
        raise MissingSecret(f"key file {path} is not a JSON object")
    name = data.get("name") or data.get("id")
    private = data.get("privateKey")
    if not isinstance(name, str) or not name:
        raise MissingSecret(f"key file {path} has no 'name' (or 'id')")
    if not isinstance(private, str) or not private:
        raise MissingSecret(f"key file {path} has no 'privateKey'")
    return name, Secret(private)
