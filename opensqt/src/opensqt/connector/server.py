"""The connector process: a grpc.aio server serving VenueGateway (+ grpc.health.v1) over cqvx venues.

Start-up order: check the bind policy, validate every venue's credentials with one signed call
(fail fast with a clear message), bind, then poll venue health so the standard health service says
NOT_SERVING while a venue is unreachable.  Shutdown (SIGTERM/SIGINT or :meth:`ConnectorServer.stop`):
health goes NOT_SERVING, new RPCs are refused, streams end with UNAVAILABLE so clients reconnect
elsewhere, in-flight unary calls get ``grace`` seconds, then the venues are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pydantic import BaseModel, ConfigDict, Field

from cqc.services.v1 import venue_gateway_pb2, venue_gateway_pb2_grpc
from cqvx.client import VenueClient
from cqvx.errors import VenueError
from cqvx.venues.sections import SecretField
from opensqt.connector.auth import BearerTokenInterceptor, ConnectorConfigError, check_bind
from opensqt.connector.fanout import StreamHub
from opensqt.connector.interceptor import RpcInterceptor
from opensqt.connector.metrics import ConnectorMetrics
from opensqt.connector.service import VenueGatewayService

__all__ = ["SERVICE_NAME", "ConnectorConfig", "ConnectorServer", "ConnectorStartupError"]

SERVICE_NAME: str = venue_gateway_pb2.DESCRIPTOR.services_by_name["VenueGateway"].full_name
_log = structlog.get_logger("opensqt.connector")


# How long stop() waits for one venue client to close.
_VENUE_CLOSE_TIMEOUT = 10.0


class ConnectorStartupError(RuntimeError):
    """The connector cannot start (credentials rejected, venue unreachable, port taken)."""


class ConnectorConfig(BaseModel):
    """Server settings (the ``connector:`` section of the connector YAML); every interval is configurable
    so tests can use milliseconds.  ``token`` is ``{env: NAME}``, ``{file: PATH}`` or a string; the
    command line resolves it through :func:`opensqt.connector.auth.load_token`."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    token: SecretField | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    validate_credentials: bool = True
    validation_timeout: float = Field(default=30.0, gt=0)
    health_interval: float = Field(default=5.0, gt=0)
    health_timeout: float = Field(default=5.0, gt=0)
    subscriber_queue: int = Field(default=1024, ge=1)
    upstream_retry_initial: float = Field(default=1.0, gt=0)
    upstream_retry_max: float = Field(default=30.0, gt=0)
    grace: float = Field(default=5.0, ge=0)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # Unary calls served at once; more are refused with RESOURCE_EXHAUSTED (docs/operations.md).
    max_concurrent_calls: int = Field(default=256, ge=1)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None


class ConnectorServer:
    """One connector: ``await server.start()``, then ``await server.stop()`` (or :meth:`serve`)."""

    def __init__(
        self,
        venues: Sequence[VenueClient] | Mapping[str, VenueClient],
        config: ConnectorConfig | None = None,
        *,
        metrics: ConnectorMetrics | None = None,
        close_venues: bool = True,
    ) -> None:
        self.config = config or ConnectorConfig()
        if isinstance(venues, Mapping):
            self.venues: dict[str, VenueClient] = dict(venues)
        else:
            self.venues = {v.venue: v for v in venues}
        if not self.venues:
            raise ConnectorConfigError("the connector needs at least one venue")
        self.metrics = metrics or ConnectorMetrics()
        self.hub = StreamHub(
            maxsize=self.config.subscriber_queue,
            retry_initial=self.config.upstream_retry_initial,
            retry_max=self.config.upstream_retry_max,
            on_drop=self.metrics.drop,
            on_reconnect=self.metrics.reconnect,
            on_subscribers=self.metrics.set_subscribers,
        )
        self._close_venues = close_venues
        self._server: aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._health_task: asyncio.Task[None] | None = None
        self._metrics_runner: Any = None
        self.port = 0
        self.serving = False
        self._stopped = asyncio.Event()
        self._stopping = False

    @property
    def address(self) -> str:
        host = self.config.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    async def validate_credentials(self) -> None:
        """One signed call per venue (get_balances): wrong keys stop the start-up with a clear message."""
        for name, client in self.venues.items():
            try:
                await asyncio.wait_for(client.get_balances(), self.config.validation_timeout)
            except TimeoutError:
                raise ConnectorStartupError(
                    f"credential check for venue {name!r} timed out after "
                    f"{self.config.validation_timeout:g} s (is the venue reachable?)"
                ) from None
            except VenueError as err:
                raise ConnectorStartupError(
                    f"credential check for venue {name!r} failed ({type(err).__name__}): {err}"
                ) from err

    async def start(self) -> int:
        """Validate, bind and start serving; returns the bound port."""
        cfg = self.config
        check_bind(cfg.host, tls=cfg.tls, token=bool(cfg.token))
        if (cfg.tls_cert is None) != (cfg.tls_key is None):
            raise ConnectorConfigError("TLS needs both tls_cert and tls_key")
        if cfg.validate_credentials:
            await self.validate_credentials()
        # Outermost first: the RPC interceptor maps errors and counts every call, refused ones too.
        interceptors: list[aio.ServerInterceptor] = [
            RpcInterceptor(self.metrics, SERVICE_NAME, max_concurrent=cfg.max_concurrent_calls)
        ]
        if cfg.token:
            interceptors.append(BearerTokenInterceptor(cfg.token))
        server = aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.so_reuseport", 0),
                # Detect dead clients so a stalled stream is released.
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.keepalive_permit_without_calls", 1),
            ],
        )
        # The unary handlers are installed from the table (opensqt.connector.unary) when the service is
        # made, which the generated stub's abstract methods cannot see.
        service = VenueGatewayService(self.venues, self.hub, self.metrics)  # type: ignore[abstract]
        venue_gateway_pb2_grpc.add_VenueGatewayServicer_to_server(service, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        bind = f"[{cfg.host}]:{cfg.port}" if ":" in cfg.host else f"{cfg.host}:{cfg.port}"
        if cfg.tls:
            assert cfg.tls_cert is not None and cfg.tls_key is not None
            creds = grpc.ssl_server_credentials([(cfg.tls_key.read_bytes(), cfg.tls_cert.read_bytes())])
            port = server.add_secure_port(bind, creds)
        else:
            port = server.add_insecure_port(bind)
        if port == 0:
            raise ConnectorStartupError(f"could not bind {bind}")
        await server.start()
        self._server = server
        self.port = port
        await self._check_health()
        self._health_task = asyncio.get_running_loop().create_task(self._poll_health(), name="health")
        if cfg.metrics_port is not None:
            await self._start_metrics(cfg.metrics_port)
        _log.info("connector_started", address=self.address, venues=sorted(self.venues), tls=cfg.tls)
        return port

    async def _set_serving(self, serving: bool) -> None:
        resp = health_pb2.HealthCheckResponse
        status = resp.SERVING if serving else resp.NOT_SERVING
        for name in ("", SERVICE_NAME):
            await self._health.set(name, status)
        if serving != self.serving:
            _log.info("connector_health", serving=serving)
        self.serving = serving

    async def _check_health(self) -> None:
        up = True
        for name, client in self.venues.items():
            try:
                report = await asyncio.wait_for(client.health(), self.config.health_timeout)
                reachable = report.reachable
            except asyncio.CancelledError:
                raise
            except Exception:
                reachable = False
            self.metrics.venue_up.labels(name).set(1 if reachable else 0)
            up = up and reachable
        if not self._stopping:
            await self._set_serving(up)

    async def _poll_health(self) -> None:
        while True:
            await asyncio.sleep(self.config.health_interval)
            await self._check_health()

    async def _start_metrics(self, port: int) -> None:
        from aiohttp import web
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        async def handle(_: web.Request) -> web.Response:
            return web.Response(
                body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        app = web.Application()
        app.router.add_get("/metrics", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, self.config.host, port).start()
        self._metrics_runner = runner

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown; idempotent."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            if self._health_task is not None:
                self._health_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._health_task
            if self._server is not None:
                with contextlib.suppress(Exception):
                    await self._health.enter_graceful_shutdown()
                # Streams never finish on their own: end them so the grace period covers unary calls.
                await self.hub.aclose()
                await self._server.stop(self.config.grace if grace is None else grace)
            if self._metrics_runner is not None:
                await self._metrics_runner.cleanup()
            if self._close_venues:
                for client in self.venues.values():
                    # Bounded per venue: one venue whose close hangs must not keep the process alive.
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.aclose(), _VENUE_CLOSE_TIMEOUT)
            _log.info("connector_stopped", address=self.address)
        finally:
            self._stopped.set()

    async def wait(self) -> None:
        await self._stopped.wait()

    async def serve(self) -> None:
        """Start, run until SIGTERM/SIGINT, shut down gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
        try:
            await self.start()
            await stop.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.stop()
