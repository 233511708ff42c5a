"""The ``prime`` config section (registered in :mod:`cqvx.venues.registry`).

Example (connector YAML)::

    prime-main:
      type: prime
      credentials:
        access_key: {env: PRIME_ACCESS_KEY}
        passphrase: {env: PRIME_PASSPHRASE}
        signing_key: {env: PRIME_SIGNING_KEY}
        portfolio_id: {env: PRIME_PORTFOLIO_ID}
        svc_account_id: {env: PRIME_SVC_ACCOUNT_ID}
      rate_limits: {portfolio_requests_per_second: 25, portfolio_burst: 50}

Everything else defaults to :class:`~cqvx.venues.prime.config.PrimeConfig` (the real API).
"""

from __future__ import annotations

from pydantic import Field

from cqvx.venues.prime.config import PrimeConfig
from cqvx.venues.sections import SecretField, Section, TextField

__all__ = ["PrimeCredentials", "PrimeRateLimits", "PrimeSection"]

_D = PrimeConfig()


class PrimeCredentials(Section):
    access_key: TextField
    passphrase: SecretField
    signing_key: SecretField
    portfolio_id: TextField
    svc_account_id: TextField = ""


class PrimeRateLimits(Section):
    ip_requests_per_second: float = Field(default=_D.ip_requests_per_second, gt=0)
    portfolio_requests_per_second: float = Field(default=_D.portfolio_requests_per_second, gt=0)
    portfolio_burst: float = Field(default=_D.portfolio_burst, gt=0)


class PrimeSection(Section):
    credentials: PrimeCredentials | None = None
    rest_url: str = _D.rest_url
    ws_url: str = _D.ws_url
    rate_limits: PrimeRateLimits = Field(default_factory=PrimeRateLimits)
    timeout_s: float = Field(default=_D.timeout_s, gt=0)
    retries: int = Field(default=_D.retries, ge=0)
    retry_base_delay_s: float = Field(default=_D.retry_base_delay_s, ge=0)
    lookup_window_s: float = Field(default=_D.lookup_window_s, gt=0)
    page_size: int = Field(default=_D.page_size, gt=0, le=1000)
    preview_before_place: bool = _D.preview_before_place
    balance_type: str = _D.balance_type
    ws_reconnect_initial_s: float = Field(default=_D.ws_reconnect_initial_s, ge=0)
    ws_reconnect_max_s: float = Field(default=_D.ws_reconnect_max_s, gt=0)
    ws_heartbeat_timeout_s: float = Field(default=_D.ws_heartbeat_timeout_s, gt=0)

    def to_config(self) -> PrimeConfig:
        cfg = PrimeConfig(
            rest_url=self.rest_url,
            ws_url=self.ws_url,
            ip_requests_per_second=self.rate_limits.ip_requests_per_second,
            portfolio_requests_per_second=self.rate_limits.portfolio_requests_per_second,
            portfolio_burst=self.rate_limits.portfolio_burst,
            timeout_s=self.timeout_s,
            retries=self.retries,
            retry_base_delay_s=self.retry_base_delay_s,
            lookup_window_s=self.lookup_window_s,
            page_size=self.page_size,
            preview_before_place=self.preview_before_place,
            balance_type=self.balance_type,
            ws_reconnect_initial_s=self.ws_reconnect_initial_s,
            ws_reconnect_max_s=self.ws_reconnect_max_s,
            ws_heartbeat_timeout_s=self.ws_heartbeat_timeout_s,
        )
        creds = self.credentials
        if creds is None:
            return cfg
        return cfg.with_credentials(
            creds.access_key, creds.passphrase, creds.signing_key, creds.portfolio_id, creds.svc_account_id
        )
