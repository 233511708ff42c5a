"""The ``coinbase`` config section (registered in :mod:`cqvx.venues.registry`).

Example (connector YAML; a process may hold several, one per account, each with its own key and so
its own private rate-limit budget)::

    cb-main:
      type: coinbase
      credentials:
        key_name: {env: CB_MAIN_KEY_NAME}     # or a plain string / ${VAR}
        key_secret: {env: CB_MAIN_KEY_SECRET} # or {file: /run/secrets/cb_main}
      # or: credentials: {key_file: /run/secrets/cdp_api_key.json}   (the CDP portal's JSON file)
      rate_limits: {private_rps: 15}          # stay under a share of the venue's limit
      derivatives:                            # optional; positions read from both when set
        cfm: true                             # US futures (CFM) account
        intx_portfolio_uuid: 1f2e...          # perpetuals portfolio on Coinbase International

Everything else defaults to :class:`~cqvx.venues.coinbase.config.CoinbaseConfig` (the real API).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from cqvx.secrets import MissingSecret
from cqvx.venues.coinbase.config import CoinbaseConfig, KeyKind, _read_key_file
from cqvx.venues.sections import SecretField, Section, TextField

__all__ = ["CoinbaseCredentials", "CoinbaseDerivatives", "CoinbaseRateLimits", "CoinbaseSection"]

_D = CoinbaseConfig()


class CoinbaseCredentials(Section):
    """A CDP key (``key_name`` + ``key_secret``), a legacy key + HMAC secret, or a CDP key file."""

    key_name: TextField = ""
    key_secret: SecretField | None = None
    key_kind: KeyKind = "auto"
    key_file: Path | None = None

    @field_validator("key_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                _read_key_file(value)
            except MissingSecret as err:
                raise ValueError(err.message) from None
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CoinbaseCredentials:
        if self.key_file is not None:
            if self.key_name or self.key_secret is not None:
                raise ValueError("give either key_file or key_name + key_secret, not both")
            return self
        if not self.key_name:
            raise ValueError("key_name: required (or key_file)")
        if self.key_secret is None:
            raise ValueError("key_secret: required (or key_file)")
        return self


class CoinbaseRateLimits(Section):
    """Client-side budgets (requests per second); lower them to leave room for other clients of a key."""

    private_rps: float = Field(default=_D.private_rps, gt=0)
    public_rps: float = Field(default=_D.public_rps, gt=0)
    ws_messages_per_s: float = Field(default=_D.ws_messages_per_s, gt=0)


class CoinbaseDerivatives(Section):
    """Which derivatives accounts the positions capability reads: the US futures (CFM) account and
    the INTX perpetuals portfolio named by its uuid (List Perpetuals Positions reference)."""

    cfm: bool = _D.cfm_enabled
    intx_portfolio_uuid: TextField = _D.intx_portfolio_uuid

    @field_validator("intx_portfolio_uuid")
    @classmethod
    def _uuid(cls, value: str) -> str:
        if value and not all(c.isascii() and (c.isalnum() or c == "-") for c in value):
            raise ValueError("intx_portfolio_uuid: letters, digits and '-' only (a portfolio uuid)")
        return value


class CoinbaseSection(Section):
    credentials: CoinbaseCredentials | None = None
    derivatives: CoinbaseDerivatives = Field(default_factory=CoinbaseDerivatives)
    rest_url: str = _D.rest_url
    ws_market_url: str = _D.ws_market_url
    ws_user_url: str = _D.ws_user_url
    jwt_host: str = _D.jwt_host
    rate_limits: CoinbaseRateLimits = Field(default_factory=CoinbaseRateLimits)
    timeout_s: float = Field(default=_D.timeout_s, gt=0)
    retries: int = Field(default=_D.retries, ge=0)
    retry_base_delay_s: float = Field(default=_D.retry_base_delay_s, ge=0)
    reconnect_initial_s: float = Field(default=_D.reconnect_initial_s, gt=0)
    reconnect_max_s: float = Field(default=_D.reconnect_max_s, gt=0)
    heartbeat_timeout_s: float = Field(default=_D.heartbeat_timeout_s, gt=0)

    def to_config(self) -> CoinbaseConfig:
        cfg = CoinbaseConfig(
            rest_url=self.rest_url,
            ws_market_url=self.ws_market_url,
            ws_user_url=self.ws_user_url,
            jwt_host=self.jwt_host,
            private_rps=self.rate_limits.private_rps,
            public_rps=self.rate_limits.public_rps,
            ws_messages_per_s=self.rate_limits.ws_messages_per_s,
            timeout_s=self.timeout_s,
            retries=self.retries,
            retry_base_delay_s=self.retry_base_delay_s,
            reconnect_initial_s=self.reconnect_initial_s,
            reconnect_max_s=self.reconnect_max_s,
            heartbeat_timeout_s=self.heartbeat_timeout_s,
            cfm_enabled=self.derivatives.cfm,
            intx_portfolio_uuid=self.derivatives.intx_portfolio_uuid,
        )
        creds = self.credentials
        if creds is None:
            return cfg
        if creds.key_file is not None:
            name, secret = _read_key_file(creds.key_file)
            return replace(cfg, key_name=name, key_secret=secret)
        assert creds.key_secret is not None  # _one_source
        return cfg.with_credentials(creds.key_name, creds.key_secret, creds.key_kind)
