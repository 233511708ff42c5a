"""The circuit-breaker reset endpoint of a running engine (docs/risk.md "Manual reset").

On the engine's status server, only when ``http.control_token`` is set (``Authorization: Bearer
<token>``, compared in constant time):

* ``POST /risk/reset`` with ``{"breaker": "drawdown", "operator": "alice"}``: closes that breaker (or,
  without ``breaker``, every open one) through :meth:`GridEngine.reset_breakers` (durable, alerted,
  audited by operator name).  ``200 {"reset": [...]}``;
* ``GET /risk``: the breakers, denials and alerts (the ``risk.breakers`` part of ``/status``).

Errors are typed JSON ``{"error": ..., "kind": ...}``: ``401 unauthorized`` (no or a wrong token; the
token never appears in an answer or a log), ``400 bad_request`` (not JSON, an operator missing,
fields of the wrong type), ``404 unknown_breaker`` (a name that is not a breaker or not configured; the
message lists the configured ones).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cqvx.secrets import Secret
from opensqt.engine.orchestrator import GridEngine
from opensqt.risk.breakers import UnknownBreaker, parse_kind

__all__ = ["add_risk_routes"]

_Handler = Callable[[web.Request], Awaitable[web.Response]]


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": message, "kind": kind}, status=status)


def add_risk_routes(app: web.Application, engine: GridEngine, token: Secret) -> None:
    """The authenticated reset endpoint (see the module docstring)."""

    def guarded(handler: _Handler) -> _Handler:
        async def wrapped(request: web.Request) -> web.Response:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.reveal_bytes()):
                return _error(401, "unauthorized", "unauthorized")
            try:
                return await handler(request)
            except UnknownBreaker as exc:
                return _error(404, "unknown_breaker", str(exc))
            except ValueError as exc:
                return _error(400, "bad_request", str(exc)[:300])

        return wrapped

    async def reset(request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
        except ValueError:
            raise ValueError("body: not JSON") from None
        if not isinstance(body, dict):
            raise ValueError('body: {"operator": "...", "breaker": "..."} expected')
        operator, name = body.get("operator"), body.get("breaker")
        if not isinstance(operator, str) or not operator.strip():
            raise ValueError("operator: a non-empty name is required (it is audited)")
        if name is not None and not isinstance(name, str):
            raise ValueError("breaker: a breaker name expected")
        kind = parse_kind(name) if name else None
        closed = await engine.reset_breakers(kind, operator=operator.strip()[:128])
        return web.json_response({"reset": closed, "open": engine.risk.book.open_kinds()})

    async def show(_request: web.Request) -> web.Response:
        return web.json_response(engine.risk.status())

    app.router.add_post("/risk/reset", guarded(reset))
    app.router.add_get("/risk", guarded(show))
