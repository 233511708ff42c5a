"""The ``falconx`` config section (registered in :mod:`cqvx.venues.registry`).

Example (connector YAML)::

    fx-main:
      type: falconx
      credentials:
        api_key: {env: FX_API_KEY}
        secret: {env: FX_API_SECRET}          # base64, as FalconX issues it
        passphrase: {env: FX_PASSPHRASE}
      rate_limits: {requests_per_second: 5, quotes_per_second: 2}

Everything else defaults to :class:`~cqvx.venues.falconx.config.FalconXConfig` (the real API).
"""

from __future__ import annotations

from pydantic import Field

from cqvx.venues.falconx.config import FalconXConfig
from cqvx.venues.sections import SecretField, Section, TextField

__all__ = ["FalconXCredentials", "FalconXRateLimits", "FalconXSection"]

_D = FalconXConfig()


class FalconXCredentials(Section):
    api_key: TextField
    secret: SecretField
    passphrase: SecretField


class FalconXRateLimits(Section):
    requests_per_second: float = Field(default=_D.requests_per_second, gt=0)
    quotes_per_second: float = Field(default=_D.quotes_per_second, gt=0)


class FalconXSection(Section):
    credentials: FalconXCredentials | None = None
    rest_url: str = _D.rest_url
    platform: str = _D.platform
    rate_limits: FalconXRateLimits = Field(default_factory=FalconXRateLimits)
    timeout_s: float = Field(default=_D.timeout_s, gt=0)
    retries: int = Field(default=_D.retries, ge=0)
    retry_base_delay_s: float = Field(default=_D.retry_base_delay_s, ge=0)
    lookup_window_s: float = Field(default=_D.lookup_window_s, gt=0)
    resolve_timeout_s: float = Field(default=_D.resolve_timeout_s, gt=0)
    resolve_poll_s: float = Field(default=_D.resolve_poll_s, gt=0)
    expiry_grace_s: float = Field(default=_D.expiry_grace_s, ge=0)

    def to_config(self) -> FalconXConfig:
        cfg = FalconXConfig(
            rest_url=self.rest_url,
            platform=self.platform,
            requests_per_second=self.rate_limits.requests_per_second,
            quotes_per_second=self.rate_limits.quotes_per_second,
            timeout_s=self.timeout_s,
            retries=self.retries,
            retry_base_delay_s=self.retry_base_delay_s,
            lookup_window_s=self.lookup_window_s,
            resolve_timeout_s=self.resolve_timeout_s,
            resolve_poll_s=self.resolve_poll_s,
            expiry_grace_s=self.expiry_grace_s,
        )
        creds = self.credentials
        if creds is None:
            return cfg
        return cfg.with_credentials(creds.api_key, creds.secret, creds.passphrase)
