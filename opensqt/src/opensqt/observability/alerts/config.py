"""The ``risk.alerts`` configuration section (read by :mod:`opensqt.config`).

Secrets (webhook URLs carry their own token; the Telegram bot token) are :data:`SecretField` values:
``{env: NAME}``, ``{file: PATH}`` or ``${VAR}``; they are never shown in dumps, logs or ``/status``.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from cqvx.secrets import Secret
from cqvx.venues.sections import SecretField

__all__ = ["AlertsConfig", "SlackConfig", "TelegramConfig", "WebhookConfig"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _hidden(value: Secret | None) -> str | None:
    return None if value is None else "<redacted>"


class WebhookConfig(_Model):
    """A generic JSON webhook: POST ``{"key", "severity", "title", "text", "symbol", "ts"}``."""

    url: SecretField

    @field_serializer("url")
    def _h(self, v: Secret) -> str | None:
        return _hidden(v)


class SlackConfig(_Model):
    """A Slack incoming webhook (POST ``{"text": ...}``); the URL is the secret."""

    url: SecretField

    @field_serializer("url")
    def _h(self, v: Secret) -> str | None:
        return _hidden(v)


class TelegramConfig(_Model):
    """A Telegram bot: POST ``{api_base}/bot<token>/sendMessage`` with ``{"chat_id", "text"}``."""

    bot_token: SecretField
    chat_id: str = Field(min_length=1, max_length=64)
    api_base: str = Field(default="https://api.telegram.org", pattern=r"^https?://")

    @field_serializer("bot_token")
    def _h(self, v: Secret) -> str | None:
        return _hidden(v)


class AlertsConfig(_Model):
    webhook: WebhookConfig | None = None
    slack: SlackConfig | None = None
    telegram: TelegramConfig | None = None
    # The same alert key is sent at most once per this window (de-duplication).
    dedup_seconds: Decimal = Field(default=Decimal(300), ge=0)
    # Per sink: at most ``rate_limit`` alerts per ``rate_period_seconds``; the rest are dropped (counted).
    rate_limit: int = Field(default=10, ge=1, le=1000)
    rate_period_seconds: Decimal = Field(default=Decimal(60), gt=0)
    timeout_seconds: Decimal = Field(default=Decimal(10), gt=0, le=120)
    # A venue feed (price or order stream) down longer than this raises an alert.
    disconnected_seconds: Decimal = Field(default=Decimal(60), gt=0)
    # A slot UNRESOLVED longer than this raises an alert.
    unresolved_seconds: Decimal = Field(default=Decimal(120), gt=0)
