"""``opensqt live`` as a process of its own: follow an engine's live feed and fan it out again.

Design (the simplest that keeps "no venue connection of its own"): the engine already turns its state,
the venue's candles and balances into protocol messages (the embedded page, ``/ws``).  The standalone
server is one more client of that feed: it applies every message to its own :class:`LiveFeed` (so its
clients get the same history and snapshot on connect) and broadcasts it to its own hub.  It holds no
venue credentials and opens no venue or connector stream; the engine's one hub only ever serves this
relay, however many pages watch.  Upstream loss: the relay reconnects with :class:`cqvx.backoff.Backoff`
(the upstream's snapshot on reconnect replaces the open orders, so nothing stale survives) and
``/health`` reports ``degraded`` meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp
import structlog

from cqvx.backoff import Backoff
from cqvx.secrets import Secret
from opensqt.live.feed import LiveFeed
from opensqt.live.protocol import TYPES

__all__ = ["Relay"]

log = structlog.get_logger("opensqt.live")


class Relay:
    def __init__(
        self,
        feed: LiveFeed,
        upstream: str,
        *,
        token: Secret | None = None,
        backoff: Backoff | None = None,
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        self.feed = feed
        self.url = _ws_url(upstream)
        self.token = token
        self.backoff = backoff or Backoff(initial=0.5, maximum=10.0)
        self.connected = False
        self.connects = 0
        self._on_message = on_message

    async def run(self) -> None:
        """Follow the upstream until cancelled."""
        headers = {"Authorization": f"Bearer {self.token.reveal()}"} if self.token is not None else {}
        failures = 0
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.ws_connect(self.url, headers=headers, heartbeat=20.0) as ws:
                        self.connected = True
                        self.connects += 1
                        failures = 0
                        log.info("live relay connected", upstream=self.url)
                        async for msg in ws:
                            if msg.type is not aiohttp.WSMsgType.TEXT:
                                break
                            self._relay(msg.data)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.info("live relay: upstream unavailable", upstream=self.url, error=str(exc)[:200])
                finally:
                    self.connected = False
                failures += 1
                await self.backoff.sleep(failures)

    def _relay(self, text: str) -> None:
        try:
            env = json.loads(text)
            kind, data = env["type"], env["data"]
        except (ValueError, KeyError, TypeError):
            log.warning("live relay: malformed upstream message dropped")
            return
        if kind not in TYPES:
            return  # a newer engine's message type: not part of this page's protocol
        self.feed.publish(kind, data)
        if self._on_message is not None:
            self._on_message(kind)


def _ws_url(upstream: str) -> str:
    """``http://host:port`` (the engine's HTTP address, as it prints it) -> ``ws://host:port/ws``."""
    url = upstream.rstrip("/")
    if url.startswith("http://"):
        url = "ws://" + url.removeprefix("http://")
    elif url.startswith("https://"):
        url = "wss://" + url.removeprefix("https://")
    elif not url.startswith(("ws://", "wss://")):
        url = "ws://" + url
    return url if url.endswith("/ws") else url + "/ws"
