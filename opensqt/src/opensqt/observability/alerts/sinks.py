"""The alert sinks: one JSON POST each.

* webhook: ``{"key", "severity", "title", "text", "symbol", "ts"}`` to the configured URL;
* Slack incoming webhook: ``{"text": ...}`` (https://api.slack.com/messaging/webhooks);
* Telegram Bot API ``sendMessage``: POST ``https://api.telegram.org/bot<token>/sendMessage`` with
  ``{"chat_id", "text"}`` (https://core.telegram.org/bots/api#sendmessage); a reply ``{"ok": false}``
  is a failure.

The URL (and the bot token inside the Telegram URL) is a :class:`~cqvx.secrets.Secret`: revealed only
to build the request, never in an exception, a log line or ``repr``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from cqvx.secrets import Secret

if TYPE_CHECKING:
    from opensqt.observability.alerts.router import Alert

__all__ = ["AlertSendFailed", "Sink", "SlackSink", "TelegramSink", "WebhookSink"]


class AlertSendFailed(RuntimeError):
    """A sink could not deliver; the message names the sink and the HTTP status, never the URL."""


class Sink(Protocol):
    name: str  # bounded metric label: webhook | slack | telegram

    async def send(self, session: aiohttp.ClientSession, alert: Alert) -> None: ...


async def _post(session: aiohttp.ClientSession, sink: str, url: Secret, body: dict[str, Any]) -> Any:
    try:
        async with session.post(url.reveal(), json=body) as resp:
            if resp.status >= 300:
                raise AlertSendFailed(f"{sink}: HTTP {resp.status}")
            if resp.content_type == "application/json":
                return await resp.json()
            return None
    except aiohttp.ClientError as exc:
        # aiohttp's messages can carry the URL: keep only the class name.
        raise AlertSendFailed(f"{sink}: {type(exc).__name__}") from None


class WebhookSink:
    name = "webhook"

    def __init__(self, url: Secret) -> None:
        self._url = url

    async def send(self, session: aiohttp.ClientSession, alert: Alert) -> None:
        await _post(session, self.name, self._url, alert.as_json())


class SlackSink:
    name = "slack"

    def __init__(self, url: Secret) -> None:
        self._url = url

    async def send(self, session: aiohttp.ClientSession, alert: Alert) -> None:
        await _post(session, self.name, self._url, {"text": alert.line()})


class TelegramSink:
    name = "telegram"

    def __init__(self, token: Secret, chat_id: str, api_base: str = "https://api.telegram.org") -> None:
        self._url = Secret(f"{api_base.rstrip('/')}/bot{token.reveal()}/sendMessage")
        self._chat_id = chat_id

    async def send(self, session: aiohttp.ClientSession, alert: Alert) -> None:
        reply = await _post(session, self.name, self._url, {"chat_id": self._chat_id, "text": alert.line()})
        if isinstance(reply, dict) and reply.get("ok") is False:
            raise AlertSendFailed(f"telegram: refused ({str(reply.get('description', ''))[:80]})")
