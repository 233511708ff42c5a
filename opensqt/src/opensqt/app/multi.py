"""Run a fleet of symbols as one process (``opensqt fleet``): one venue client, one store, one account
lease, one engine per symbol (engine/fleet.py), the HTTP endpoints and the control endpoint.

Control endpoint (on the status server, only when ``http.control_token`` is set; ``Authorization: Bearer
<token>``, compared in constant time; 401 otherwise):

* ``GET /symbols``: the fleet's status (every symbol: state, restarts, last error, engine status);
* ``POST /symbols`` with ``{"symbol": "ETH-USDT-PERP", "overrides": {"price_interval": "3"}}``: add;
* ``POST /symbols/{symbol}/pause`` | ``/resume`` | ``/remove``; remove takes an optional body
  ``{"position": "keep" | "close"}`` (default ``keep``: the position stays; ``close``: the remove
  workflow settles it through the engine's close path, engine/reducer.py); another value or another
  key is a 400 naming the field;
* ``POST /cancel-all`` with ``{"reason": "..."}``: pause every symbol and sweep the venue.

Add, remove and cancel-all run as DBOS workflows (engine/workflows.py) whose id is the request's
``Idempotency-Key`` header (a random one when absent): the same request retried, or a process killed
mid-way and restarted, finishes the operation exactly once.

Every change goes through the durable registry first (engine/symbols.py); ``opensqt symbols ...`` writes
the same registry from another process and the running fleet picks it up within a second.

``opensqt symbols remove [--position keep|close]`` (:func:`remove_symbol`) runs the SAME remove-symbol
workflow as the endpoint:
with no fleet up it takes the account lease and runs it in its own process (DBOS executor
``opensqt-cli``: run again after a crash, it finishes its own removal); while a fleet owns the account
it writes the registry and the fleet's watcher runs the workflow (same workflow id, derived from the
registry change), keeping the position (a close is refused then, nothing changed: the registry cannot
carry it; use the endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from cqvx.client import VenueClient
from cqvx.secrets import Secret
from opensqt.app.runner import _prepare_state_dir, _serve, acquire_lease, build_client
from opensqt.config import Config
from opensqt.engine.fleet import Fleet, symbol_config
from opensqt.engine.lease import AccountLease, Fenced, LeaseHeld
from opensqt.engine.store import StateStore, sqlite_url
from opensqt.engine.symbols import SymbolEntry, SymbolRegistry, UnknownSymbol
from opensqt.engine.workflows import POSITION_MODES, Durable, system_database_url
from opensqt.live.http import StatusServer
from opensqt.ui.fleet_view import run_fleet_view

__all__ = ["add_control_routes", "remove_symbol", "run_fleet"]

_log = structlog.get_logger("opensqt.fleet")

CLI_EXECUTOR = "opensqt-cli"


async def run_fleet(
    config: Config,
    *,
    state_path: Path,
    duration: float | None = None,
    speed: float = 1.0,
    plain: bool = True,
    client: VenueClient | None = None,
    http_port: int | None = None,
    ready: Callable[[Fleet, int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    """Run until SIGINT/SIGTERM (or ``duration``); returns the fleet's last status.  Raises
    ``LeaseHeld`` when another engine owns the account, ``Fenced`` when it was taken over mid-run."""
    state_path = await asyncio.to_thread(_prepare_state_dir, state_path)
    store = StateStore(
        config.state.url or sqlite_url(state_path),
        table_prefix=config.state.table_prefix,
        durability=config.state.durability,
    )
    try:
        lease = await acquire_lease(config, store)
    except BaseException:
        store.close()
        raise
    registry = SymbolRegistry(store.engine, lease.account, table_prefix=config.state.table_prefix)
    own_client = client is None
    venue = client or await build_client(config, speed=speed)
    fleet = Fleet(config, venue, store, registry)
    durable = Durable(fleet, system_database_url(store.url, state_path))
    stop = stop or asyncio.Event()
    lost: list[str] = []
    loop = asyncio.get_running_loop()

    def on_lease_lost(message: str) -> None:
        print(f"opensqt: {message}", file=sys.stderr, flush=True)
        lost.append(message)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    keeper = asyncio.create_task(lease.keep(on_lease_lost))
    server: StatusServer | None = None
    try:
        # After the fleet exists (resumed workflows need it), before its symbols start.
        durable.launch()
        await fleet.start()
        port = 0
        if config.http.enabled:
            server = StatusServer(fleet.status, fleet.metrics.render, lambda: _health(fleet))
            if config.http.control_token is not None:
                add_control_routes(server.app, fleet, config.http.control_token, durable)
            port = await _serve(
                server, config.http.host, config.http.port if http_port is None else http_port
            )
            print(f"opensqt: http://{config.http.host}:{port}/status", file=sys.stderr, flush=True)
        if ready is not None:
            ready(fleet, port)
        view = asyncio.create_task(run_fleet_view(fleet, stop, plain=plain))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
        stop.set()
        await view
        final = fleet.status()
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        if server is not None:
            await server.stop()
        # Fenced out: the orders are the new owner's; leave them alone.
        await fleet.stop(cancel_orders=False if lost else None)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(durable.destroy)
        if not lost:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(lease.release)
        if own_client:
            await venue.aclose()
        store.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    if lost:
        raise Fenced(lost[0])
    return final


async def remove_symbol(
    config: Config,
    *,
    state_path: Path,
    symbol: str,
    position: str = "keep",
    client: VenueClient | None = None,
    speed: float = 1.0,
) -> dict[str, Any] | None:
    """Remove ``symbol`` from the account's fleet with its venue cleanup (the remove-symbol workflow:
    stop, cancel its orders, sweep the venue; then the position: ``keep`` or ``close``).  Returns the
    workflow's result, or None when a running fleet owns the account: the registry says ``removed`` and
    that fleet runs the workflow (keeping the position).  Raises ``UnknownSymbol``; ``LeaseHeld`` when
    ``close`` is asked while a fleet owns the account (nothing changed: ask the fleet's control
    endpoint)."""
    if position not in POSITION_MODES:
        raise ValueError(f"position: {position!r} is not one of {', '.join(POSITION_MODES)}")
    state_path = await asyncio.to_thread(_prepare_state_dir, state_path)
    st = config.state
    store = StateStore(
        config.state.url or sqlite_url(state_path), table_prefix=st.table_prefix, durability=st.durability
    )
    account = st.account_key(config.venue)
    registry = SymbolRegistry(store.engine, account, table_prefix=st.table_prefix)
    lease = AccountLease(store.engine, account, ttl=float(st.lease_seconds), table_prefix=st.table_prefix)
    try:
        await asyncio.to_thread(registry.get, symbol)  # UnknownSymbol before anything changes
        try:
            await lease.acquire(wait=False)
        except LeaseHeld as exc:
            if position != "keep":  # the registry cannot carry it to the fleet: refuse, change nothing
                raise LeaseHeld(
                    f"{exc}; a running fleet owns the account: remove with position close through its"
                    f' control endpoint (POST /symbols/{symbol}/remove {{"position": "close"}})'
                ) from None
            await asyncio.to_thread(registry.set_status, symbol, "removed")
            return None
    except BaseException:
        store.close()
        raise
    # The owner now: the registry change first (the intent, and the workflow id's origin), then the
    # workflow in this process.
    store.fence = lease.fence_check
    keeper = asyncio.create_task(lease.keep(lambda _message: None))  # lost: the fence refuses writes
    own_client = client is None
    durable: Durable | None = None
    try:
        entry = await asyncio.to_thread(registry.set_status, symbol, "removed")
        venue = client or await build_client(config, speed=speed)
        try:
            fleet = Fleet(config, venue, store, registry, launches=False)
            durable = Durable(fleet, system_database_url(store.url, state_path), executor=CLI_EXECUTOR)
            durable.launch()
            return await durable.remove_registered(entry, position)
        finally:
            if own_client:
                await venue.aclose()
    finally:
        if durable is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(durable.destroy)
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        with contextlib.suppress(Exception):
            await asyncio.to_thread(lease.release)
        store.close()


def _health(fleet: Fleet) -> tuple[bool, dict[str, str]]:
    components = {
        sym: "Healthy" if st["state"] in ("running", "paused", "removed") else f"Unhealthy: {st['state']}"
        for sym, st in fleet.status()["symbols"].items()
    }
    return all(v == "Healthy" for v in components.values()), components


def add_control_routes(
    app: web.Application, fleet: Fleet, token: Secret, durable: Durable | None = None
) -> None:
    """The authenticated symbol control endpoint (see the module docstring)."""

    def guarded(
        handler: Callable[[web.Request], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.reveal_bytes()):
                return web.json_response({"error": "unauthorized"}, status=401)
            try:
                return await handler(request)
            except UnknownSymbol as exc:
                return web.json_response({"error": f"unknown symbol {exc.args[0]}"}, status=404)
            except (ValueError, ValidationError) as exc:
                return web.json_response({"error": str(exc)[:500]}, status=400)
            except Exception as exc:  # a failed workflow: its kind to the caller, the details to the log
                # (an exception's text may carry a database URL or a venue reply: never to the client)
                _log.exception("control request failed", path=request.path)
                return web.json_response({"error": f"{type(exc).__name__} (details logged)"}, status=500)

        return wrapped

    async def list_symbols(_request: web.Request) -> web.Response:
        return web.json_response(fleet.status())

    async def add(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise ValueError("body: not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("symbol"), str):
            raise ValueError('body: {"symbol": "...", "overrides": {...}} expected')
        overrides = body.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise ValueError("overrides: an object expected")
        if durable is None:
            return web.json_response(await fleet.add(body["symbol"], overrides))
        symbol_config(fleet.config, SymbolEntry("", body["symbol"], overrides, "active", 0.0))
        return web.json_response(await durable.add(body["symbol"], overrides, _request_id(request)))

    async def cancel_all(request: web.Request) -> web.Response:
        if durable is None:
            return web.json_response({"error": "cancel-all needs the durable runtime"}, status=503)
        body = await request.json() if request.can_read_body else {}
        reason = str(body.get("reason", "operator")) if isinstance(body, dict) else "operator"
        return web.json_response(await durable.cancel_all(reason[:200], _request_id(request)))

    actions: dict[str, Callable[[str], Awaitable[dict[str, Any]]]] = {
        "pause": fleet.pause,
        "resume": fleet.resume,
        "remove": fleet.remove,
    }

    async def act(request: web.Request) -> web.Response:
        action = actions.get(request.match_info["action"])
        if action is None:
            return web.json_response({"error": "action: pause, resume or remove"}, status=404)
        symbol = request.match_info["symbol"]
        if request.match_info["action"] == "remove":
            position = await _position(request)
            if durable is not None:
                key = _request_id(request)
                await asyncio.to_thread(fleet.registry.get, symbol)  # 404 before a workflow is recorded
                return web.json_response(await durable.remove(symbol, key, position))
            if position != "keep":
                return web.json_response({"error": "position close needs the durable runtime"}, status=503)
        return web.json_response(await action(symbol))

    app.router.add_get("/symbols", guarded(list_symbols))
    app.router.add_post("/symbols", guarded(add))
    app.router.add_post("/symbols/{symbol}/{action}", guarded(act))
    app.router.add_post("/cancel-all", guarded(cancel_all))


async def _position(request: web.Request) -> str:
    """The remove body's ``position`` (absent body or field: ``keep``); ValueError (400) naming the field."""
    if not request.can_read_body:
        return "keep"
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("body: not JSON") from None
    if body is None:
        return "keep"
    if not isinstance(body, dict) or set(body) - {"position"}:
        raise ValueError('body: {"position": "keep" | "close"} expected')
    position = body.get("position", "keep")
    if position not in POSITION_MODES:
        raise ValueError(f"position: {position!r} is not one of {', '.join(POSITION_MODES)}"[:300])
    return str(position)


def _request_id(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if key and (len(key) > 100 or not all(c.isalnum() or c in "-_." for c in key)):
        raise ValueError("Idempotency-Key: up to 100 of [A-Za-z0-9-_.]")
    return key or uuid.uuid4().hex
