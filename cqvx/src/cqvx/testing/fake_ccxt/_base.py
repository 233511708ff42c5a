"""The shared base of the thinner wire-level fakes (Bybit, OKX, Bitget, Gate): the simulated venue behind a
venue's REST dialect.

Rules every venue fake follows (each subclass supplies only its dialect):

* Matching, balances and positions are the simulated venue's (:mod:`cqvx.venues.sim`); the fake only
  translates wire shapes, so what ccxt sees is what a venue with that matching engine would answer.
* Every private request is verified with the venue's own documented signing scheme, written here
  from the venue docs (never from the adapter or ccxt); a bad signature is counted
  (:attr:`SimFake.bad_signatures`) and refused with the venue's code.
* Quantities on the wire are in the venue's unit: contracts of :attr:`SimFake.contract_size` base units
  (OKX and Gate perpetuals), base units elsewhere (:meth:`SimFake.unit`, per instrument: OKX spot
  trades base units).  A contract count that is not a whole multiple of the step is refused, never
  rounded.
* Order ids are the sim's (``sim-N`` on the sim side, ``N`` on the wire).
* One private WebSocket stream per venue: the venue's order channel.  Every execution report of the sim
  is turned into the venue's order push for each authenticated, subscribed connection.
* The public market streams (book, trades, ticker) are the venue's :attr:`SimFake.public_feed`
  (:mod:`._public_ws`, one module per venue), served from the same sim.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from aiohttp import web

from cqc.venues.v1 import order_pb2
from cqvx.errors import VenueError
from cqvx.testing.fake_ccxt._public_ws import PublicFeed
from cqvx.testing.fakeserver import FakeServer
from cqvx.venues.sim import SimVenue
from cqvx.venues.sim.config import InstrumentSpec

__all__ = ["Handler", "Refused", "SimFake", "dec_text"]

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[Any]]


class Refused(Exception):
    """A venue error answer: HTTP ``status``, the venue's ``code`` and message."""

    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def dec_text(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros (``"0"`` for zero)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


class SimFake(FakeServer):
    """Subclass per venue: routes, signature check, envelopes, shapes and the order channel."""

    contract_size: ClassVar[Decimal] = Decimal(1)  # base units per wire quantity unit
    public_feed: ClassVar[type[PublicFeed]] = PublicFeed  # the venue's public streams (its *_ws module)

    def __init__(
        self,
        api_key: str,
        secret: str,
        passphrase: str = "",
        *,
        sim: SimVenue | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        self.api_key = api_key
        self.secret = secret.encode()
        self.passphrase = passphrase
        self.sim = sim or SimVenue.default(0, speed=1.0)
        self.perps: dict[str, InstrumentSpec] = {
            self.venue_symbol(s.symbol): s for s in self.sim.config.instruments if s.is_perpetual
        }
        self.bad_signatures = 0
        self.rate_limits_served = 0
        # The account's position mode as the venue's mode read answers it (each fake's documented
        # request); only the answer changes: the sim keeps one net position per symbol either way.
        self.hedge_mode = False
        self._limit_bodies: set[bytes] = set()
        self.order_sockets: set[web.WebSocketResponse] = set()  # authenticated + subscribed
        self._pump: asyncio.Task[None] | None = None
        self.public = self.public_feed(self)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.sim.__aenter__()
        await super().start()
        await self.public.start()
        self._pump = asyncio.create_task(self._pump_orders())

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self.public.stop()
        await super().stop()
        await self.sim.aclose()

    def rate_limited_answer(self) -> tuple[int, dict[str, Any]]:
        """The venue's documented "too many requests" answer: (HTTP status, JSON body)."""
        raise NotImplementedError

    def rate_limit(
        self, route: str | None = None, *, times: int = 1, retry_after: str | float | None = 1
    ) -> None:
        """The next ``times`` requests get the venue's own rate-limit answer (not a generic 429)."""
        status, body = self.rate_limited_answer()
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self.fail(route, times=times, status=status, body=json.dumps(body).encode(), headers=headers)
        self._limit_bodies.add(json.dumps(body).encode())

    def _take_fault(self, path: str, method: str) -> Any:
        fault = super()._take_fault(path, method)
        if fault is not None and fault.kind == "status" and fault.body in self._limit_bodies:
            self.rate_limits_served += 1
        return fault

    # -- the venue dialect (subclasses) ----------------------------------------------------------

    @staticmethod
    def venue_symbol(canonical: str) -> str:
        raise NotImplementedError

    async def verify(self, request: web.Request, body: bytes) -> None:
        """Raise :class:`Refused` unless ``request`` carries the venue's valid signature."""
        raise NotImplementedError

    def ok(self, payload: Any) -> Any:
        """The venue's success envelope around ``payload``."""
        return payload

    def failure(self, err: Refused) -> tuple[int, Any]:
        """The venue's error answer: (HTTP status, JSON body)."""
        raise NotImplementedError

    def refusal(self, err: VenueError, op: str) -> Refused:
        """The venue's answer to a sim refusal during ``op`` ("place", "get" or "cancel")."""
        raise NotImplementedError

    def order_push(self, order: order_pb2.Order) -> Any:
        """The venue's order-channel message for one order update."""
        raise NotImplementedError

    # -- routing ---------------------------------------------------------------------------------

    def route(self, app: web.Application, method: str, path: str, handler: Handler, *, signed: bool) -> None:
        async def run(request: web.Request) -> web.Response:
            body = await request.read()
            try:
                if signed:
                    await self.verify(request, body)
                params: dict[str, Any] = dict(request.query)
                if body:
                    try:
                        loaded = json.loads(body)
                    except ValueError:
                        raise Refused(400, "400", "body is not JSON") from None
                    if isinstance(loaded, dict):
                        params |= loaded
                    else:
                        params["_body"] = loaded
                payload = self.ok(await handler(request, params))
                return web.json_response(payload)
            except Refused as err:
                status, answer = self.failure(err)
                return web.json_response(answer, status=status)

        app.router.add_route(method, path, run)

    # -- sim access ------------------------------------------------------------------------------

    def canonical(self, venue_symbol: str) -> str:
        spec = self.perps.get(venue_symbol)
        if spec is None:
            raise self.unknown_symbol(venue_symbol)
        return spec.symbol

    def unknown_symbol(self, venue_symbol: str) -> Refused:
        return Refused(400, "400", f"unknown symbol {venue_symbol!r}")

    def unit(self, symbol: str = "") -> Decimal:
        """Base units per wire quantity unit of the sim instrument ``symbol`` ("": the perpetuals')."""
        return self.contract_size

    def to_base(self, wire_quantity: object, symbol: str = "") -> str:
        try:
            value = Decimal(str(wire_quantity)) * self.unit(symbol)
        except InvalidOperation:
            raise Refused(400, "400", f"bad quantity {wire_quantity!r}") from None
        return dec_text(value)

    def to_wire(self, base_quantity: str, symbol: str = "") -> str:
        return dec_text(Decimal(base_quantity or "0") / self.unit(symbol))

    @staticmethod
    def wire_id(order_id: str) -> str:
        return order_id.removeprefix("sim-")

    async def place(self, order: order_pb2.Order) -> order_pb2.Order:
        try:
            report = await self.sim.place_order(order)
            return await self.sim.get_order(symbol=order.symbol, order_id=report.order_id)
        except VenueError as err:
            raise self.refusal(err, "place") from None

    @staticmethod
    def ref(order_id: str | None, client_order_id: str | None) -> dict[str, str]:
        # Ids arrive from JSON bodies too: anything but text is the venue's parameter error.
        if not all(v is None or isinstance(v, str) for v in (order_id, client_order_id)):
            raise Refused(400, "400", "order id and client order id must be strings")
        if order_id:
            return {"order_id": f"sim-{order_id}"}
        if client_order_id:
            return {"client_order_id": client_order_id}
        raise Refused(400, "400", "neither order id nor client order id given")

    async def lookup(self, symbol: str, order_id: str | None, client_order_id: str | None) -> order_pb2.Order:
        try:
            return await self.sim.get_order(symbol=symbol, **self.ref(order_id, client_order_id))
        except VenueError as err:
            raise self.refusal(err, "get") from None

    async def cancel(self, symbol: str, order_id: str | None, client_order_id: str | None) -> order_pb2.Order:
        try:
            return await self.sim.cancel_order(symbol=symbol, **self.ref(order_id, client_order_id))
        except VenueError as err:
            raise self.refusal(err, "cancel") from None

    def perp_symbols(self) -> set[str]:
        return {s.symbol for s in self.perps.values()}

    # -- the order channel -----------------------------------------------------------------------

    async def _pump_orders(self) -> None:
        async for report in self.sim.subscribe_executions():
            if not self.order_sockets or report.symbol not in self.perp_symbols():
                continue
            try:
                order = await self.sim.get_order(symbol=report.symbol, order_id=report.order_id)
            except VenueError:
                continue
            message = json.dumps(self.order_push(order))
            for ws in list(self.order_sockets):
                if ws.closed:
                    self.order_sockets.discard(ws)
                    continue
                with contextlib.suppress(ConnectionError):
                    await ws.send_str(message)

    async def drop_ws(self) -> int:
        """Cut every WebSocket connection now.  The order sockets are forgotten first, without an
        await, so an order push still queued for them is lost in transit (never sent late)."""
        self.order_sockets.clear()
        return await super().drop_ws()

    def venue_order_count(self, client_order_id: str) -> int:
        """How many orders, in any status, the venue holds under ``client_order_id``."""
        return sum(1 for o in self.sim.engine.orders.values() if o.client_order_id == client_order_id)
