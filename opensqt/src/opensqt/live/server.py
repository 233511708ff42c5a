"""The live page's HTTP routes: ``/`` (the page), ``/static/*`` (its built bundle), ``/ws`` (the hub), and,
for the standalone ``opensqt live`` process, ``/health`` and ``/metrics``.

The page is built by ``make live-page`` (esbuild bundles ``opensqt/web/live/`` with lightweight-charts
from npm into :data:`STATIC`; the output is not committed).  Without a build ``/`` answers 503 saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from opensqt.live.feed import LiveFeed
from opensqt.live.hub import Hub, HubLimits, require_token_for

__all__ = ["STATIC", "LiveServer", "add_live_routes"]

STATIC = Path(__file__).resolve().parent / "static"
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self' ws: wss:; img-src 'self' data:; media-src 'self' data:"
)


def add_live_routes(app: web.Application, hub: Hub, static: Path = STATIC) -> None:
    async def page(_request: web.Request) -> web.StreamResponse:
        index = static / "index.html"
        if not index.is_file():
            return web.Response(
                status=503, text="the live page is not built: run `make live-page` (npm + esbuild)\n"
            )
        return web.FileResponse(index, headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"})

    app.router.add_get("/", page)
    app.router.add_get("/live", page)
    app.router.add_get("/ws", hub.handle)

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = static / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    app.router.add_get("/static/{name}", asset)


class LiveServer:
    """The standalone server of ``opensqt live``: the page, the hub, ``/health`` and ``/metrics``."""

    def __init__(
        self,
        feed: LiveFeed,
        limits: HubLimits | None = None,
        *,
        static: Path = STATIC,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = Hub(limits, on_connect=feed.snapshot, clock=clock)
        feed.hub = self.hub
        self.feed = feed
        self.upstream_ok: Callable[[], bool] = lambda: True
        self.app = web.Application()
        add_live_routes(self.app, self.hub, static)
        self.app.router.add_get("/health", self._health)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        require_token_for(host, self.hub.limits.token)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        return self.port

    async def stop(self) -> None:
        self.feed.close()
        await self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, _request: web.Request) -> web.Response:
        ok = self.upstream_ok()
        body = {"status": "ok" if ok else "degraded", "clients": self.hub.clients, "time": int(time.time())}
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        resp = web.Response(body=self.hub.metrics_text())
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        resp.charset = "utf-8"
        return resp
