"""The ``fordefi`` config section (registered in :mod:`cqvx.venues.registry`).

Example (connector YAML)::

    fordefi-main:
      type: fordefi
      credentials:
        access_token: {env: FORDEFI_API_USER_TOKEN}     # the API User's access token
        signing_key: {file: /run/secrets/fordefi.pem}   # the API User's P-256 private key (PEM)
      poll: {initial_s: 2, max_s: 30}                   # await_terminal polling schedule

Everything else defaults to :class:`~cqvx.venues.fordefi.config.FordefiConfig` (the real API).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from cqvx.venues.fordefi.config import FordefiConfig
from cqvx.venues.sections import SecretField, Section

__all__ = ["FordefiCredentials", "FordefiPoll", "FordefiSection"]

_D = FordefiConfig()


class FordefiCredentials(Section):
    access_token: SecretField
    signing_key: SecretField


class FordefiPoll(Section):
    initial_s: float = Field(default=_D.poll_initial_s, gt=0)
    max_s: float = Field(default=_D.poll_max_s, gt=0)
    multiplier: float = Field(default=_D.poll_multiplier, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> FordefiPoll:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be >= initial_s")
        return self


class FordefiSection(Section):
    credentials: FordefiCredentials | None = None
    rest_url: str = _D.rest_url
    rps: float = Field(default=_D.rps, gt=0)
    timeout_s: float = Field(default=_D.timeout_s, gt=0)
    retries: int = Field(default=_D.retries, ge=0)
    retry_base_delay_s: float = Field(default=_D.retry_base_delay_s, ge=0)
    poll: FordefiPoll = Field(default_factory=FordefiPoll)

    def to_config(self) -> FordefiConfig:
        creds = self.credentials
        return FordefiConfig(
            rest_url=self.rest_url,
            access_token=creds.access_token if creds else None,
            signing_key=creds.signing_key if creds else None,
            rps=self.rps,
            timeout_s=self.timeout_s,
            retries=self.retries,
            retry_base_delay_s=self.retry_base_delay_s,
            poll_initial_s=self.poll.initial_s,
            poll_max_s=self.poll.max_s,
            poll_multiplier=self.poll.multiplier,
        )
