"""A wire-level fake Binance USD-M server whose matching is the simulated venue (:mod:`cqvx.venues.sim`).

It speaks the REST paths ccxt's ``binanceusdm`` calls (so ccxt runs unmodified against it over
loopback: point every ``urls['api']`` host at :attr:`FakeBinance.url`), checks the Binance signing
scheme with its own code (HMAC-SHA256 over ``query string + body`` without the trailing
``signature``; ``X-MBX-APIKEY`` header; ``timestamp`` within ``recvWindow``), and answers with Binance
shapes and error codes.  It shares no code with the adapter under test.

Signed: ``GET /fapi/v3/account``, ``GET /fapi/v2/positionRisk``, ``GET /fapi/v1/leverageBracket``,
``POST|GET|DELETE /fapi/v1/order``, ``GET /fapi/v1/openOrders``, ``GET /fapi/v1/allOrders``,
``DELETE /fapi/v1/allOpenOrders`` ("Cancel All Open Orders": symbol required; answers only
``{"code": 200, "msg": ...}``, no orders).
API key only: ``POST|PUT|DELETE /fapi/v1/listenKey`` (keepalives counted in :attr:`keepalives`).
Batch (``POST|DELETE /fapi/v1/batchOrders``, "Place Multiple Orders": at most 5 orders, answered in
order, each item the order or its own ``{"code", "msg"}``; cancel: at most 10 ids).
WebSocket (market streams and the user data stream): :mod:`.ws`, reached as :attr:`FakeBinance.ws`.
Public: ``exchangeInfo``, ``time``, ``depth``, ``premiumIndex``, ``fundingRate``, ``klines``,
``ticker/24hr``.  Error codes (USD-M error-code page): -1022 bad signature, -2015 bad key, -1021
timestamp outside recvWindow, -4116 duplicate client order id, -2019 margin insufficient, -2013 order
does not exist, -2011 unknown order (cancel), -5022 post-only would take, -4164 notional too small,
-1111 precision.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from cqc.venues.v1 import order_pb2
from cqvx.errors import (
    DuplicateOrder,
    InsufficientFunds,
    NotFound,
    OrderRejected,
    RateLimited,
    VenueError,
)
from cqvx.testing.fake_binance import _shapes as shapes
from cqvx.testing.fake_binance.ws import FakeBinanceWs
from cqvx.testing.fakeserver import FakeServer
from cqvx.timeutil import timestamp_from_ms, to_datetime
from cqvx.types import OrderFilter
from cqvx.venues.sim import SimVenue

__all__ = ["FakeBinance"]

_JSON = "application/json"


class _Refused(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class FakeBinance(FakeServer):
    """``async with FakeBinance(api_key, secret) as fake:`` serves a started :class:`SimVenue`."""

    def __init__(
        self, api_key: str, secret: str, *, sim: SimVenue | None = None, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(host)
        self.api_key = api_key
        self._secret = secret.encode()
        self.sim = sim or SimVenue.default(0, speed=1.0)
        self._perps = {
            shapes.venue_symbol(s.symbol): s for s in self.sim.config.instruments if s.is_perpetual
        }
        self.listen_keys: dict[str, int] = {}  # listen key -> keepalives received
        self.keepalives = 0
        self.bad_signatures = 0
        self.rate_limits_served = 0
        self.cancel_alls = 0  # DELETE /fapi/v1/allOpenOrders requests served
        self.cancel_all_acts = True  # False: answer "done" but cancel nothing (a misbehaving venue)
        self.hedge_mode = False  # the account's position mode (GET /fapi/v1/positionSide/dual)
        self.ws = FakeBinanceWs(self)

    def _take_fault(self, path: str, method: str) -> Any:
        fault = super()._take_fault(path, method)
        if fault is not None and fault.kind == "status" and fault.status == 429:
            self.rate_limits_served += 1
        return fault

    async def start(self) -> None:
        await self.sim.__aenter__()
        await super().start()
        await self.ws.start()

    async def stop(self) -> None:
        await self.ws.stop()
        await super().stop()
        await self.sim.aclose()

    def setup_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/fapi/v1/exchangeInfo", self._exchange_info)
        r.add_get("/fapi/v1/time", self._time)
        r.add_get("/fapi/v1/depth", self._public(self._depth))
        r.add_get("/fapi/v1/premiumIndex", self._public(self._premium_index))
        r.add_get("/fapi/v1/fundingRate", self._public(self._funding_history))
        r.add_get("/fapi/v1/klines", self._public(self._klines))
        r.add_get("/fapi/v1/ticker/24hr", self._public(self._ticker))
        r.add_get("/fapi/v3/account", self._signed(self._account))
        r.add_get("/fapi/v1/income", self._signed(self._income))
        r.add_get("/fapi/v2/positionRisk", self._signed(self._position_risk))
        r.add_get("/fapi/v1/positionSide/dual", self._signed(self._position_side_dual))
        r.add_get("/fapi/v1/leverageBracket", self._signed(self._brackets))
        r.add_post("/fapi/v1/order", self._signed(self._new_order))
        r.add_get("/fapi/v1/order", self._signed(self._query_order))
        r.add_delete("/fapi/v1/order", self._signed(self._cancel_order))
        r.add_get("/fapi/v1/openOrders", self._signed(self._open_orders))
        r.add_get("/fapi/v1/allOrders", self._signed(self._all_orders))
        r.add_delete("/fapi/v1/allOpenOrders", self._signed(self._cancel_all))
        r.add_post("/fapi/v1/listenKey", self._keyed(self._listen_key_new))
        r.add_put("/fapi/v1/listenKey", self._keyed(self._listen_key_keepalive))
        r.add_delete("/fapi/v1/listenKey", self._keyed(self._listen_key_close))
        r.add_post("/fapi/v1/batchOrders", self._signed(self._batch_new))
        r.add_delete("/fapi/v1/batchOrders", self._signed(self._batch_cancel))
        self.ws.routes(app)

    # -- auth ------------------------------------------------------------------------------------

    def _check_key(self, request: web.Request) -> None:
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            raise _Refused(401, -2015, "Invalid API-key, IP, or permissions for action.")

    async def _verify(self, request: web.Request) -> dict[str, str]:
        self._check_key(request)
        query = request.query_string
        body = (await request.read()).decode()
        signature = ""
        parts = []
        for raw in (query, body):
            text = raw
            head, sep, sig = raw.rpartition("&signature=")
            if sep:
                signature, text = sig, head
            elif raw.startswith("signature="):
                signature, text = raw.removeprefix("signature="), ""
            parts.append(text)
        total = "".join(parts)
        expected = hmac.new(self._secret, total.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature, expected):
            self.bad_signatures += 1
            raise _Refused(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(parts[0])) | dict(parse_qsl(parts[1]))
        stamp = int(params.get("timestamp", "0"))
        window = int(params.get("recvWindow", "5000"))
        if abs(time.time() * 1000 - stamp) > window:
            raise _Refused(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return params

    def _answer(self, status: int, payload: Any) -> web.Response:
        return web.Response(status=status, text=json.dumps(payload), content_type=_JSON)

    def _signed(self, handler: Any) -> Any:
        async def run(request: web.Request) -> web.Response:
            try:
                return self._answer(200, await handler(await self._verify(request)))
            except _Refused as err:
                return self._answer(err.status, {"code": err.code, "msg": err.msg})

        return run

    def _keyed(self, handler: Any) -> Any:
        async def run(request: web.Request) -> web.Response:
            try:
                self._check_key(request)
                params = dict(request.query) | dict(parse_qsl((await request.read()).decode()))
                return self._answer(200, await handler(params))
            except _Refused as err:
                return self._answer(err.status, {"code": err.code, "msg": err.msg})

        return run

    def _public(self, handler: Any) -> Any:
        async def run(request: web.Request) -> web.Response:
            try:
                return self._answer(200, await handler(dict(request.query)))
            except _Refused as err:
                return self._answer(err.status, {"code": err.code, "msg": err.msg})

        return run

    # -- helpers ---------------------------------------------------------------------------------

    def _canonical(self, symbol: str) -> str:
        spec = self._perps.get(symbol)
        if spec is None:
            raise _Refused(400, -1121, "Invalid symbol.")
        return spec.symbol

    @staticmethod
    def _refusal(err: VenueError, *, cancel: bool = False) -> _Refused:
        if isinstance(err, DuplicateOrder):
            return _Refused(400, -4116, "ClientOrderId is duplicated.")
        if isinstance(err, InsufficientFunds):
            return _Refused(400, -2019, "Margin is insufficient.")
        if isinstance(err, NotFound):
            return (
                _Refused(400, -2011, "Unknown order sent.")
                if cancel
                else _Refused(400, -2013, "Order does not exist.")
            )
        if isinstance(err, OrderRejected):
            return _Refused(
                400,
                -5022,
                "Due to the order could not be executed as maker, the Post Only order will be rejected.",
            )
        if isinstance(err, RateLimited):
            return _Refused(429, -1003, "Too many requests.")
        if "notional" in err.message.lower():
            return _Refused(400, -4164, "Order's notional must be no smaller than 5.")
        return _Refused(400, -1111, "Precision is over the maximum defined for this asset.")

    def _ref(self, params: dict[str, str]) -> dict[str, Any]:
        if "orderId" in params:
            return {"order_id": f"sim-{params['orderId']}"}
        coid = params.get("origClientOrderId") or params.get("clientOrderId")
        if not coid:
            raise _Refused(400, -1102, "Either orderId or origClientOrderId must be sent.")
        return {"client_order_id": coid}

    # -- public ----------------------------------------------------------------------------------

    async def _exchange_info(self, request: web.Request) -> web.Response:
        return self._answer(
            200,
            {
                "timezone": "UTC",
                "serverTime": int(time.time() * 1000),
                "rateLimits": [],
                "exchangeFilters": [],
                "assets": [],
                "symbols": [shapes.symbol_info(s) for s in self._perps.values()],
            },
        )

    async def _time(self, request: web.Request) -> web.Response:
        return self._answer(200, {"serverTime": int(time.time() * 1000)})

    async def _depth(self, params: dict[str, str]) -> Any:
        book = await self.sim.get_order_book(
            self._canonical(params.get("symbol", "")), int(params.get("limit", "20"))
        )
        return shapes.depth(book)

    async def _premium_index(self, params: dict[str, str]) -> Any:
        symbol = params.get("symbol", "")
        return shapes.premium_index(await self.sim.get_funding_rate(self._canonical(symbol)), symbol)

    async def _funding_history(self, params: dict[str, str]) -> Any:
        symbol = params.get("symbol", "")
        rate = await self.sim.get_funding_rate(self._canonical(symbol))
        at = shapes._ms(rate.funding_time) or int(time.time() * 1000)
        return [
            {
                "symbol": symbol,
                "fundingRate": rate.rate,
                "fundingTime": at,
                "markPrice": rate.mark_price or "0",
            }
        ]

    async def _klines(self, params: dict[str, str]) -> Any:
        from cqvx.timeutil import candle_interval

        widths = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}
        interval = candle_interval(widths.get(params.get("interval", ""), 0))
        if interval is None:
            raise _Refused(400, -1120, "Invalid interval.")
        limit = int(params.get("limit", "500"))
        candles = await self.sim.get_candles(self._canonical(params.get("symbol", "")), interval, limit=limit)
        return [shapes.kline(c) for c in candles]

    async def _ticker(self, params: dict[str, str]) -> Any:
        symbol = params.get("symbol", "")
        price = await self.sim.get_latest_price(self._canonical(symbol))
        return {
            "symbol": symbol,
            "lastPrice": price.last,
            "openPrice": price.last,
            "highPrice": price.last,
            "lowPrice": price.last,
            "volume": "0",
            "quoteVolume": "0",
            "closeTime": int(time.time() * 1000),
        }

    # -- account ---------------------------------------------------------------------------------

    async def _income(self, params: dict[str, str]) -> Any:
        """Get Income History (https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Get-Income-History):
        the sim's funding settlements as ``incomeType=FUNDING_FEE`` rows, oldest first; ``income`` is
        signed, positive = inflow, negative = outflow (the page's zh-CN version says so).  No times: the
        last 7 days; ``limit`` default 100 (max 1000) from ``startTime`` on.  Other income types are not
        modelled."""
        kind = params.get("incomeType")
        if kind not in (None, "FUNDING_FEE"):
            return []
        wanted = self._canonical(params["symbol"]) if params.get("symbol") else None
        now = int(time.time() * 1000)
        start = int(params.get("startTime") or 0) or (0 if params.get("endTime") else now - 7 * 86_400_000)
        end = int(params.get("endTime") or 0) or now
        limit = min(int(params.get("limit") or 100), 1000)
        rows = []
        for n, pay in enumerate(self.sim.funding_payments):
            at = pay.at_ns // 1_000_000
            if (wanted and pay.symbol != wanted) or not start <= at <= end:
                continue
            rows.append(
                {
                    "symbol": shapes.venue_symbol(pay.symbol),
                    "incomeType": "FUNDING_FEE",
                    "income": f"{-pay.paid:.8f}",
                    "asset": pay.asset,
                    "info": "FUNDING_FEE",
                    "time": at,
                    "tranId": 9_000_000 + n,
                    "tradeId": "",
                }
            )
        return rows[:limit]

    async def _account(self, params: dict[str, str]) -> Any:
        return shapes.account(await self.sim.get_balances(), await self.sim.get_positions())

    async def _position_side_dual(self, params: dict[str, str]) -> Any:
        # Get Current Position Mode: {"dualSidePosition": true} = hedge mode, false = one-way
        # (https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Get-Current-Position-Mode).
        # Only the mode is faked: the sim keeps one net position per symbol either way.
        return {"dualSidePosition": self.hedge_mode}

    async def _position_risk(self, params: dict[str, str]) -> Any:
        positions = await self.sim.get_positions()
        return [shapes.position_risk(p) for p in positions]

    async def _brackets(self, params: dict[str, str]) -> Any:
        return [
            {
                "symbol": s,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": 50,
                        "notionalCap": 1000000,
                        "notionalFloor": 0,
                        "maintMarginRatio": 0.005,
                        "cum": 0,
                    }
                ],
            }
            for s in self._perps
        ]

    # -- orders ----------------------------------------------------------------------------------

    async def _new_order(self, params: dict[str, str]) -> Any:
        canonical = self._canonical(params.get("symbol", ""))
        kind = params.get("type", "")
        tif = params.get("timeInForce", "GTC")
        order = order_pb2.Order(
            symbol=canonical,
            client_order_id=params.get("newClientOrderId", ""),
            side=order_pb2.ORDER_SIDE_BUY if params.get("side") == "BUY" else order_pb2.ORDER_SIDE_SELL,
            order_type=order_pb2.ORDER_TYPE_LIMIT if kind == "LIMIT" else order_pb2.ORDER_TYPE_MARKET,
            quantity=str(Decimal(params.get("quantity", "0"))),
            price=str(Decimal(params["price"])) if "price" in params else "",
            post_only=tif == "GTX",
            reduce_only=params.get("reduceOnly") == "true",
            time_in_force={"IOC": order_pb2.TIME_IN_FORCE_IOC, "FOK": order_pb2.TIME_IN_FORCE_FOK}.get(
                tif, order_pb2.TIME_IN_FORCE_GTC
            ),
        )
        if kind not in ("LIMIT", "MARKET"):
            raise _Refused(400, -1116, "Invalid orderType.")
        if kind == "MARKET":  # Binance market orders carry no timeInForce; they never rest
            order.time_in_force = order_pb2.TIME_IN_FORCE_IOC
        try:
            report = await self.sim.place_order(order)
            placed = await self.sim.get_order(symbol=canonical, order_id=report.order_id)
        except VenueError as err:
            raise self._refusal(err) from None
        return shapes.order(placed)

    async def _query_order(self, params: dict[str, str]) -> Any:
        canonical = self._canonical(params.get("symbol", ""))
        try:
            return shapes.order(await self.sim.get_order(symbol=canonical, **self._ref(params)))
        except VenueError as err:
            raise self._refusal(err) from None

    async def _cancel_order(self, params: dict[str, str]) -> Any:
        canonical = self._canonical(params.get("symbol", ""))
        try:
            return shapes.order(await self.sim.cancel_order(symbol=canonical, **self._ref(params)))
        except VenueError as err:
            raise self._refusal(err, cancel=True) from None

    async def _cancel_all(self, params: dict[str, str]) -> Any:
        canonical = self._canonical(params.get("symbol", ""))
        self.cancel_alls += 1
        for order in await self.sim.get_orders(OrderFilter(symbol=canonical)) if self.cancel_all_acts else []:
            try:
                await self.sim.cancel_order(symbol=canonical, order_id=order.order_id)
            except VenueError:
                continue  # finished meanwhile; the venue's reply names no orders either way
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    async def _open_orders(self, params: dict[str, str]) -> Any:
        symbol = params.get("symbol")
        orders = await self.sim.get_orders(OrderFilter(symbol=self._canonical(symbol) if symbol else None))
        return [shapes.order(o) for o in orders if o.symbol in {s.symbol for s in self._perps.values()}]

    async def _all_orders(self, params: dict[str, str]) -> Any:
        canonical = self._canonical(params.get("symbol", ""))
        statuses = frozenset(shapes.STATUS)
        start = int(params["startTime"]) if "startTime" in params else None
        since = to_datetime(timestamp_from_ms(start)) if start else None
        orders = await self.sim.get_orders(OrderFilter(symbol=canonical, statuses=statuses, start=since))
        return [shapes.order(o) for o in orders]

    async def _batch_new(self, params: dict[str, str]) -> Any:
        try:
            items = json.loads(params.get("batchOrders", ""))
        except ValueError:
            raise _Refused(400, -1130, "Data sent for parameter 'batchOrders' is not valid.") from None
        if not isinstance(items, list) or not 1 <= len(items) <= 5:
            raise _Refused(400, -1130, "Data sent for parameter 'batchOrders' is not valid.")
        out: list[Any] = []
        for item in items:
            try:
                out.append(await self._new_order({str(k): str(v) for k, v in dict(item).items()}))
            except _Refused as err:
                out.append({"code": err.code, "msg": err.msg})
            except (TypeError, ValueError):
                out.append({"code": -1102, "msg": "A mandatory parameter was not sent or is malformatted."})
        return out

    async def _batch_cancel(self, params: dict[str, str]) -> Any:
        ids_text = params.get("orderIdList") or params.get("orderidlist")
        coids_text = params.get("origClientOrderIdList") or params.get("origclientorderidlist")
        try:
            refs = [{"orderId": str(i)} for i in json.loads(ids_text)] if ids_text else []
            refs += [{"origClientOrderId": str(c)} for c in json.loads(coids_text)] if coids_text else []
        except (ValueError, TypeError):
            raise _Refused(400, -1130, "Data sent for parameter 'orderIdList' is not valid.") from None
        if not 1 <= len(refs) <= 10:
            raise _Refused(400, -1130, "Data sent for parameter 'orderIdList' is not valid.")
        out: list[Any] = []
        for ref in refs:
            try:
                out.append(await self._cancel_order({"symbol": params.get("symbol", ""), **ref}))
            except _Refused as err:
                out.append({"code": err.code, "msg": err.msg})
        return out

    # -- user data stream ------------------------------------------------------------------------

    async def _listen_key_new(self, params: dict[str, str]) -> Any:
        key = secrets.token_hex(32)
        self.listen_keys[key] = 0
        return {"listenKey": key}

    async def _listen_key_keepalive(self, params: dict[str, str]) -> Any:
        key = params.get("listenKey") or next(iter(self.listen_keys), "")
        if key not in self.listen_keys:
            raise _Refused(400, -1125, "This listenKey does not exist.")
        self.listen_keys[key] += 1
        self.keepalives += 1
        return {"listenKey": key}

    async def _listen_key_close(self, params: dict[str, str]) -> Any:
        self.listen_keys.pop(params.get("listenKey") or next(iter(self.listen_keys), ""), None)
        return {}
