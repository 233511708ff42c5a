"""Settings of the FalconX adapter.

Credentials (never logged): an API key, a base64 secret and a passphrase, all three required
(venues.md §3.1; the official client refuses to start without them).

Rate limits: FalconX does not publish numbers on its public docs page; the limits of an account are
returned by ``GET /v1/rate_limit`` (official client ``get_rate_limits``; venues.md §10 item 4).  The
defaults below are deliberately conservative client-side budgets; raise them to what that endpoint
reports for the key.  Quotes have their own (smaller) budget because they are the expensive calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from cqvx.secrets import Secret

__all__ = ["FalconXConfig"]


@dataclass(frozen=True, slots=True)
class FalconXConfig:
    # REST base (venues.md §3.1); paths carry their own /v1 or /v3 prefix, and the prefix is signed.
    rest_url: str = "https://api.falconx.io"

    api_key: str = ""
    secret: Secret | None = field(default=None, repr=False)
    passphrase: Secret | None = field(default=None, repr=False)

    # The ``platform`` filter of balances and executed-quote history (browser | api | margin).
    platform: str = "api"

    # Client-side budgets, requests per second per key (see the module docstring).
    requests_per_second: float = 5.0
    quotes_per_second: float = 2.0

    timeout_s: float = 10.0
    retries: int = 3
    retry_base_delay_s: float = 0.25

    # How far back get_order(client_order_id=...) and an unresolved placement search the history.
    lookup_window_s: float = 24 * 3600.0
    # A lost execute reply is resolved by polling the quote until it is filled, or until it is past
    # its expiry by ``expiry_grace_s`` (then it can no longer execute), for at most this long.
    resolve_timeout_s: float = 30.0
    resolve_poll_s: float = 0.25
    expiry_grace_s: float = 1.0

    @property
    def has_credentials(self) -> bool:
        return bool(self.api_key) and bool(self.secret) and self.passphrase is not None

    def with_credentials(self, api_key: str, secret: Secret | str, passphrase: Secret | str) -> FalconXConfig:
        s = secret if isinstance(secret, Secret) else Secret(secret)
        p = passphrase if isinstance(passphrase, Secret) else Secret(passphrase)
        return replace(self, api_key=api_key, secret=s, passphrase=p)
