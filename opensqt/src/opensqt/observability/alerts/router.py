"""The alert router: de-duplication by key, a rate limit per sink, background delivery.

* De-duplication: an alert whose ``key`` was sent less than ``dedup_seconds`` ago is dropped (a breaker
  that flaps, a feed that stays down: one message per window).
* Rate limit: per sink at most ``rate_limit`` alerts per ``rate_period_seconds`` (sliding window); the
  excess is dropped and counted (``alerts_dropped``), so a storm cannot flood a channel.
* Delivery runs in background tasks; :meth:`AlertRouter.drain` waits for them (tests, shutdown).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import structlog

from opensqt.observability.alerts.config import AlertsConfig
from opensqt.observability.alerts.sinks import AlertSendFailed, Sink, SlackSink, TelegramSink, WebhookSink

__all__ = ["Alert", "AlertRouter", "build_router"]

log = structlog.get_logger("opensqt.alerts")

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Alert:
    key: str  # de-duplication key, e.g. "breaker:drawdown:BTC-USD"
    severity: Severity
    title: str
    text: str
    symbol: str = ""
    ts: float = 0.0

    def line(self) -> str:
        where = f" [{self.symbol}]" if self.symbol else ""
        return f"[{self.severity.upper()}]{where} {self.title}: {self.text}"

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "severity": self.severity,
            "title": self.title,
            "text": self.text,
            "symbol": self.symbol,
            "ts": self.ts,
        }


class AlertRouter:
    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        dedup_seconds: float = 300.0,
        rate_limit: int = 10,
        rate_period: float = 60.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.sinks = list(sinks)
        self.dedup_seconds = dedup_seconds
        self.rate_limit = rate_limit
        self.rate_period = rate_period
        self.timeout = timeout
        self._clock, self._wall = clock, wall
        self._last_sent: dict[str, float] = {}
        self._windows: dict[str, deque[float]] = {s.name: deque() for s in self.sinks}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.history: deque[Alert] = deque(maxlen=100)  # accepted alerts, newest last (/status)
        self.sent: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.dropped = 0
        self.duplicates = 0

    def fire(self, key: str, severity: Severity, title: str, text: str, *, symbol: str = "") -> bool:
        """Queue an alert; False when de-duplicated.  Never raises, never blocks."""
        now = self._clock()
        last = self._last_sent.get(key)
        if last is not None and now - last < self.dedup_seconds:
            self.duplicates += 1
            return False
        self._last_sent[key] = now
        alert = Alert(key, severity, title, text, symbol, self._wall())
        self.history.append(alert)
        log.warning("alert", key=key, severity=severity, title=title, text=text)
        for sink in self.sinks:
            window = self._windows[sink.name]
            while window and now - window[0] >= self.rate_period:
                window.popleft()
            if len(window) >= self.rate_limit:
                self.dropped += 1
                continue
            window.append(now)
            try:
                task = asyncio.get_running_loop().create_task(self._deliver(sink, alert))
            except RuntimeError:  # no loop (a synchronous caller): logged above, not delivered
                self.dropped += 1
                continue
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _deliver(self, sink: Sink, alert: Alert) -> None:
        try:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            await sink.send(self._session, alert)
            self.sent[sink.name] = self.sent.get(sink.name, 0) + 1
        except (AlertSendFailed, TimeoutError) as exc:
            self.failed[sink.name] = self.failed.get(sink.name, 0) + 1
            log.warning("alert not delivered", sink=sink.name, key=alert.key, error=str(exc) or "timeout")

    async def drain(self) -> None:
        """Wait for every queued delivery."""
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def status(self) -> dict[str, Any]:
        return {
            "sinks": [s.name for s in self.sinks],
            "sent": dict(self.sent),
            "failed": dict(self.failed),
            "dropped": self.dropped,
            "duplicates": self.duplicates,
            "recent": [a.as_json() for a in list(self.history)[-10:]],
        }


def build_router(
    config: AlertsConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> AlertRouter:
    """The router of the ``risk.alerts`` section (no sink configured: alerts are only logged)."""
    sinks: list[Sink] = []
    if config.webhook is not None:
        sinks.append(WebhookSink(config.webhook.url))
    if config.slack is not None:
        sinks.append(SlackSink(config.slack.url))
    if config.telegram is not None:
        t = config.telegram
        sinks.append(TelegramSink(t.bot_token, t.chat_id, t.api_base))
    return AlertRouter(
        sinks,
        dedup_seconds=float(config.dedup_seconds),
        rate_limit=config.rate_limit,
        rate_period=float(config.rate_period_seconds),
        timeout=float(config.timeout_seconds),
        clock=clock,
        wall=wall,
    )
