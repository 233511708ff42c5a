"""Settings of the Coinbase Prime adapter.

Credentials (never logged) are the portfolio-scoped key set Prime issues (venues.md §2.2; official SDK
``prime_sdk/credentials.py``): access key, passphrase, signing key (used as raw UTF-8 bytes, NOT
base64-decoded), the portfolio id every trading path is scoped to, and the service account id the
WebSocket subscribe signs.

Rate limits (https://docs.cdp.coinbase.com/prime/rest-api/rate-limits, venues.md §2.3): 100 requests
per second per IP (exceeding it answers 429 with a 30 s cool-off) and 25 per second per portfolio with
a burst of 50.  Both buckets are shared through :data:`cqvx.transport.ratelimit.limiters`: the IP bucket
by every Prime client of the process, the portfolio bucket by every client on the same portfolio.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from cqvx.secrets import Secret

__all__ = ["PrimeConfig"]


@dataclass(frozen=True, slots=True)
class PrimeConfig:
    # REST origin; every path carries its own "/v1" prefix and the prefix is signed (venues.md §2.1).
    rest_url: str = "https://api.prime.coinbase.com"
    ws_url: str = "wss://ws-feed.prime.coinbase.com"

    access_key: str = ""
    passphrase: Secret | None = field(default=None, repr=False)
    signing_key: Secret | None = field(default=None, repr=False)
    portfolio_id: str = ""
    svc_account_id: str = ""

    # Documented limits (module docstring).
    ip_requests_per_second: float = 100.0
    portfolio_requests_per_second: float = 25.0
    portfolio_burst: float = 50.0

    timeout_s: float = 10.0
    retries: int = 3
    retry_base_delay_s: float = 0.25

    # How far back get_order(client_order_id=...) and an unresolved create search the order history.
    lookup_window_s: float = 24 * 3600.0
    # Page size of list calls (open orders, history, fills, products).
    page_size: int = 100
    # Call order_preview before every create and refuse locally when the preview fails.
    preview_before_place: bool = False
    # WebSocket (l2_data book): reconnect schedule and heartbeat silence that forces a reconnect.
    ws_reconnect_initial_s: float = 1.0
    ws_reconnect_max_s: float = 30.0
    ws_heartbeat_timeout_s: float = 30.0
    # Balance type of get_balances (TRADING_BALANCES, VAULT_BALANCES, TOTAL_BALANCES, ...).
    balance_type: str = "TRADING_BALANCES"

    @property
    def has_credentials(self) -> bool:
        return (
            bool(self.access_key)
            and self.passphrase is not None
            and self.signing_key is not None
            and bool(self.portfolio_id)
        )

    def with_credentials(
        self,
        access_key: str,
        passphrase: Secret | str,
        signing_key: Secret | str,
        portfolio_id: str,
        svc_account_id: str = "",
    ) -> PrimeConfig:
        p = passphrase if isinstance(passphrase, Secret) else Secret(passphrase)
        s = signing_key if isinstance(signing_key, Secret) else Secret(signing_key)
        return replace(
            self,
            access_key=access_key,
            passphrase=p,
            signing_key=s,
            portfolio_id=portfolio_id,
            svc_account_id=svc_account_id,
        )
