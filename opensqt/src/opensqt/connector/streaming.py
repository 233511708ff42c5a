"""The connector's stream RPCs, driven by one table (:data:`CHANNELS`).

Each row says, for one ``Stream*`` RPC: the fan-out channel (which fixes the overflow policy,
:data:`cqvx.fanout.POLICIES`), the capability protocol the venue client must implement, how a request
becomes upstream topics (one per (venue, channel, symbol)), which messages a subscriber keeps, and the
response field that carries a message.  Adding a stream RPC is one row.

Serving one subscription (:meth:`StreamRelay.serve`): validate, attach to the hub, wait until every
upstream is live (a refusal aborts the RPC with the venue's typed error, so the client's ``wait_live``
raises it), send initial metadata (the client's ``wait_live`` returns), then relay messages and gaps
(``StreamGap``) with a per-RPC sequence number.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from grpc import aio

from cqc.services.v1 import venue_gateway_pb2 as gw
from cqvx.client import (
    SupportsBalanceStream,
    SupportsCandles,
    SupportsFundingRates,
    SupportsOrderStream,
    SupportsPositions,
    SupportsPrices,
    VenueClient,
)
from cqvx.errors import InvalidRequest, UnsupportedOperation, VenueError
from cqvx.fanout import SubscriberOverflow
from cqvx.streams import Gap
from opensqt.connector.convert import timestamp
from opensqt.connector.fanout import StreamHub, TopicKey

__all__ = ["CHANNELS", "StreamRelay"]

_log = structlog.get_logger("opensqt.connector")
_Ctx = aio.ServicerContext[Any, Any]
Topics = list[tuple[TopicKey, Callable[[], Any]]]


def _symbols(symbols: Sequence[str], field: str = "symbols") -> list[str]:
    out = sorted(set(symbols))
    if any(not s for s in out):
        raise InvalidRequest(f"{field}: empty symbol")
    return out


def _symbol(symbol: str, field: str = "symbol") -> str:
    if not symbol:
        raise InvalidRequest(f"{field}: required")
    return symbol


def _bind(method: Callable[[Any], Any], arg: Any) -> Callable[[], Any]:
    return lambda: method(arg)


def _prices(client: Any, venue: str, req: Any) -> Topics:
    symbols = _symbols(req.symbols)
    if not symbols:
        raise InvalidRequest("symbols: at least one symbol required")
    return [(TopicKey(venue, "prices", s), _bind(client.subscribe_prices, [s])) for s in symbols]


def _book(client: Any, venue: str, req: Any) -> Topics:
    symbol = _symbol(req.symbol)
    if req.depth < 0:
        raise InvalidRequest("depth: must not be negative")
    depth = req.depth or 20
    return [(TopicKey(venue, "book", symbol, depth), lambda: client.subscribe_order_book(symbol, depth))]


def _trades(client: Any, venue: str, req: Any) -> Topics:
    symbol = _symbol(req.symbol)
    return [(TopicKey(venue, "trades", symbol), lambda: client.subscribe_trades(symbol))]


def _candles(client: Any, venue: str, req: Any) -> Topics:
    symbol = _symbol(req.symbol)
    interval = req.interval
    if not interval:
        raise InvalidRequest("interval: required")
    return [
        (TopicKey(venue, "candles", symbol, interval), lambda: client.subscribe_candles(symbol, interval))
    ]


def _orders(client: Any, venue: str, req: Any) -> Topics:
    _symbols(req.symbols)
    # One account stream per venue; each subscriber filters by symbol.
    return [(TopicKey(venue, "orders"), lambda: client.subscribe_executions(None))]


def _balances(client: Any, venue: str, req: Any) -> Topics:
    return [(TopicKey(venue, "balances"), client.subscribe_balances)]


def _positions(client: Any, venue: str, req: Any) -> Topics:
    _symbols(req.symbols)
    return [(TopicKey(venue, "positions"), lambda: client.subscribe_positions(None))]


def _funding(client: Any, venue: str, req: Any) -> Topics:
    symbols = _symbols(req.symbols)
    if not symbols:
        return [(TopicKey(venue, "funding"), lambda: client.subscribe_funding_rates(None))]
    return [(TopicKey(venue, "funding", s), _bind(client.subscribe_funding_rates, [s])) for s in symbols]


def _by_symbols(req: Any) -> Callable[[Any], bool] | None:
    wanted = frozenset(req.symbols)
    return (lambda m: m.symbol in wanted) if wanted else None


@dataclass(frozen=True, slots=True)
class Channel:
    """One stream RPC: see the module docstring."""

    channel: str
    protocol: type | None
    response: type
    field: str
    topics: Callable[[Any, str, Any], Topics]
    accept: Callable[[Any], Callable[[Any], bool] | None] | None = None


CHANNELS: dict[str, Channel] = {
    "StreamPrices": Channel("prices", SupportsPrices, gw.StreamPricesResponse, "price", _prices),
    "StreamOrderBook": Channel("book", None, gw.StreamOrderBookResponse, "snapshot", _book),
    "StreamTrades": Channel("trades", None, gw.StreamTradesResponse, "trade", _trades),
    "StreamCandles": Channel("candles", SupportsCandles, gw.StreamCandlesResponse, "candle", _candles),
    "StreamOrderUpdates": Channel(
        "orders", SupportsOrderStream, gw.StreamOrderUpdatesResponse, "report", _orders, _by_symbols
    ),
    "StreamBalances": Channel(
        "balances", SupportsBalanceStream, gw.StreamBalancesResponse, "balance", _balances
    ),
    "StreamPositions": Channel(
        "positions", SupportsPositions, gw.StreamPositionsResponse, "position", _positions, _by_symbols
    ),
    "StreamFundingRates": Channel(
        "funding", SupportsFundingRates, gw.StreamFundingRatesResponse, "funding_rate", _funding
    ),
}


def _gap_pb(gap: Gap) -> gw.StreamGap:
    msg = gw.StreamGap(reason=gap.reason)
    if gap.since is not None:
        msg.since.CopyFrom(timestamp(gap.since))
    return msg


class StreamRelay:
    """Serves the stream RPCs of :class:`~opensqt.connector.service.VenueGatewayService`."""

    def __init__(
        self,
        hub: StreamHub,
        venue: Callable[[str], VenueClient],
        abort: Callable[[str, _Ctx, VenueError], Awaitable[None]],
    ) -> None:
        self._hub = hub
        self._venue = venue
        self._abort = abort

    async def serve(self, method: str, request: Any, context: _Ctx) -> AsyncIterator[Any]:
        spec = CHANNELS[method]
        venue = request.venue
        try:
            client = self._venue(venue)
            if spec.protocol is not None and not isinstance(client, spec.protocol):
                name = spec.protocol.__name__
                raise UnsupportedOperation(
                    f"{method}: venue {venue!r} does not support it (its client does not implement {name})",
                    venue=venue,
                )
            topics = spec.topics(client, venue, request)
            accept = spec.accept(request) if spec.accept is not None else None
            sub = self._hub.open(spec.channel, topics, venue=venue, accept=accept)
        except VenueError as err:
            await self._abort(method, context, err)
            return
        try:
            await sub.wait_live()
            # Initial metadata tells the client the subscription is live.
            await context.send_initial_metadata(())
            seq = 0
            while True:
                try:
                    item = await sub.get()
                except StopAsyncIteration:
                    return
                seq += 1
                if isinstance(item, Gap):
                    yield spec.response(venue=venue, sequence=seq, gap=_gap_pb(item))
                else:
                    yield spec.response(venue=venue, sequence=seq, **{spec.field: item})
        except SubscriberOverflow as exc:
            _log.warning("slow_client_dropped", method=method, peer=context.peer(), detail=str(exc))
            await self._abort(method, context, exc)
        except VenueError as err:
            await self._abort(method, context, err)
        finally:
            await sub.aclose()
