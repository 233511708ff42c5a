"""The engine's HTTP endpoints: ``/health`` (liveness), ``/status`` (JSON per component), ``/metrics``.

(The WebSocket hub and the browser page of reference §5 are in :mod:`.hub` and :mod:`.server`.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

__all__ = ["StatusServer"]


class StatusServer:
    def __init__(
        self,
        status: Callable[[], dict[str, Any]],
        metrics: Callable[[], bytes],
        healthy: Callable[[], tuple[bool, dict[str, str]]],
    ) -> None:
        self._status = status
        self._metrics = metrics
        self._healthy = healthy
        self._runner: web.AppRunner | None = None
        self.port = 0
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/status", self._status_handler)
        app.router.add_get("/metrics", self._metrics_handler)
        self.app = app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, _request: web.Request) -> web.Response:
        ok, components = self._healthy()
        body = {
            "status": "ok" if ok else "unhealthy",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "components": components,
        }
        return web.json_response(body, status=200 if ok else 503)

    async def _status_handler(self, _request: web.Request) -> web.Response:
        return web.json_response(self._status())

    async def _metrics_handler(self, _request: web.Request) -> web.Response:
        resp = web.Response(body=self._metrics())
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        resp.charset = "utf-8"
        return resp
