"""Streams of the ccxt adapter: ccxt.pro ``watch_*`` loops behind the cqvx stream contract, once for
every venue of the quirk table.

Rules (the contract is :class:`cqvx.streams.LiveStream`; sharing and re-opening are
:class:`cqvx.relay.Relay`'s, so nothing here fans out or retries on its own):

* **One upstream per topic.**  A topic (``("book", symbol, depth)``, ``("trades", symbol)``,
  ``("executions",)``) is read by one :class:`_Watch`: a task repeating one ccxt ``watch_*`` call and
  converting what it returns (ccxt's unified structures, through :mod:`.parse`).  Every subscriber of
  the topic shares it through the relay; the last one leaving cancels it and closes the ccxt
  WebSocket client it used when no other upstream uses that url.
* **Live.**  ccxt does not surface a venue's subscription acknowledgement, so an upstream is live when
  the ccxt client of the url its watch call uses is connected and ccxt has *written* the subscribe
  frame on it (or needed none: Binance's user data stream is subscribed by its url); a login frame
  (Bybit, OKX, Bitget) does not count, only the subscribe frame ccxt writes after the login.  The url and
  frame are observed by wrapping ``watch``/``watch_multiple`` and ``client`` on our own exchange
  instance (ccxt's code runs unmodified).  A symbol the venue does not list is refused before any
  I/O (:class:`~cqvx.errors.InvalidRequest` from ``wait_live``).
* **Gaps.**  A dropped connection fails the watch call with a ccxt ``NetworkError``: the upstream
  ends with :class:`~cqvx.errors.Unavailable`, the relay re-opens it after :class:`cqvx.backoff.Backoff`
  (ccxt's own WebSocket dial backoff is cleared before each open: one retry owner) and announces a
  :class:`~cqvx.streams.Gap` to every subscriber before the next message.  A book sequence break
  (ccxt's ``ChecksumError``: Binance's ``pu`` did not chain) is a gap too; the next watch call
  re-subscribes and ccxt rebuilds the book from a fresh REST snapshot.
* **Executions, exactly once.**  Order updates (``watch_orders``) are cumulative order states; a
  :class:`cqvx.fills.FillTracker` turns them into reports, each fill once (deterministic id
  ``<order_id>:<cumulative>``), across reconnects.  After a re-open, every order the tracker still
  holds open is fetched over REST and fed through the tracker, so a fill that happened while the
  stream was away is reported (once) after the gap notice.  ``watch_my_trades`` is not read: the same
  fills would arrive twice under two ids.
* **Listen keys.**  Where the quirk table has a listen-key keepalive (Binance), the adapter owns the
  keepalive: while a private stream is open it calls ccxt's ``keep_alive_listen_key`` (``PUT
  /fapi/v1/listenKey``) every ``listen_key_keepalive_s``.  ccxt.pro 4.5.90 schedules only the first
  one by itself (its re-scheduling looks for the subscription in a ``Client`` it reads as a dict, so
  it never repeats; observed against the fake), and ``listenKeyRefreshRate`` is set to the same
  interval so its re-authentication agrees.  A failed keepalive makes ccxt fail the private watch, so
  the stream re-opens (gap); before a private re-open ccxt's cached key is forgotten, so an expired
  key (``listenKeyExpired``) is replaced by a new one, never re-dialled.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import ccxt
import structlog

from cqc.markets.v1 import orderbook_pb2, price_pb2, trade_pb2
from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.backoff import Backoff
from cqvx.errors import InvalidRequest, ParseError, VenueError
from cqvx.fanout import Subscription
from cqvx.fills import FillTracker
from cqvx.num import dec, dec_str
from cqvx.relay import Relay
from cqvx.streams import Gap, GapListener
from cqvx.venues.ccxt import parse
from cqvx.venues.ccxt.errors import map_error

if TYPE_CHECKING:
    from cqvx.venues.ccxt.client import CcxtClient

__all__ = ["CcxtStreams"]

T = TypeVar("T")
_log = structlog.get_logger("cqvx.venues.ccxt.streams")

# (url, subscribe frame or None) of each ccxt watch call made inside a pump task.
_NOTE: ContextVar[Callable[[str, object], None] | None] = ContextVar("cqvx_ccxt_watch", default=None)
_MAX_RESYNCS = 5  # book resyncs in a row, with no book between them, before the connection is re-opened
_POLL_S = 0.01
_LOGIN_HASH = "authenticated"  # ccxt.pro's message hash of a WebSocket login (its ``authenticate``)
_MAX_ORDERS = 100_000  # per-order fee/symbol memory, like FillTracker's bound


def _hook(ex: Any) -> None:
    """Wrap ``watch``/``watch_multiple`` and ``client`` on this exchange instance (see the module
    docstring, "Live")."""
    if getattr(ex, "_cqvx_hooked", False):
        return

    def wrap_watch(orig: Callable[..., Any]) -> Callable[..., Any]:
        def watch(
            url: str, hashes: Any, message: Any = None, subscribe: Any = None, *a: Any, **k: Any
        ) -> Any:
            note = _NOTE.get()
            # A login (ccxt's hash "authenticated": Bybit, OKX, Bitget) precedes the subscribe frame;
            # noted alone it would make the stream "live" before the subscription is even written.
            if note is not None and hashes != _LOGIN_HASH:
                existing = ex.clients.get(url)
                subs = subscribe if isinstance(subscribe, list) else [subscribe]
                known = existing is not None and all(s in existing.subscriptions for s in subs)
                note(url, None if known else message)
            return orig(url, hashes, message, subscribe, *a, **k)

        return watch

    def wrap_client(orig: Callable[[str], Any]) -> Callable[[str], Any]:
        def client(url: str) -> Any:
            c = orig(url)
            if not hasattr(c, "_cqvx_sent"):
                c._cqvx_sent = []
                send = c.send

                async def sent(message: Any) -> Any:
                    result = await send(message)
                    c._cqvx_sent.append(message)
                    return result

                c.send = sent
            return c

        return client

    ex.watch = wrap_watch(ex.watch)
    ex.watch_multiple = wrap_watch(ex.watch_multiple)
    ex.client = wrap_client(ex.client)
    ex._cqvx_hooked = True


class _Stop:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Watch(Generic[T]):
    """One upstream: a LiveStream over a repeated ccxt watch call."""

    def __init__(
        self,
        owner: CcxtStreams,
        *,
        channel: str,
        symbol: str,
        call: Callable[[], Awaitable[Any]],
        convert: Callable[[Any], list[T]],
        after_live: Callable[[], Awaitable[list[T]]] | None = None,
        resync: tuple[type[BaseException], ...] = (),
        private: bool = False,
        closed: Callable[[set[str]], None] | None = None,
    ) -> None:
        self._owner = owner
        self._channel, self._symbol = channel, symbol
        self._call, self._convert, self._after_live, self._resync = call, convert, after_live, resync
        self._private = private
        self._closed = closed
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._listeners: list[GapListener] = []
        self._notes: list[tuple[str, object]] = []
        self.urls: set[str] = set()
        loop = asyncio.get_running_loop()
        self._live: asyncio.Future[None] = loop.create_future()
        self._task = loop.create_task(self._run(), name=f"ccxt:{owner.venue}:{channel}:{symbol}")

    def _note(self, url: str, message: object) -> None:
        self._notes.append((url, message))
        self.urls.add(url)
        self._owner._use(url, +1)

    def _connected(self) -> bool:
        if not self._notes:
            return False
        for url, message in self._notes:
            c = self._owner.ex.clients.get(url)
            if c is None or not c.connected.done() or c.connected.cancelled() or c.connected.exception():
                return False
            if message is not None and not any(m is message for m in getattr(c, "_cqvx_sent", ())):
                return False
        return True

    async def _watch_live(self) -> None:
        # Polled: ccxt offers no event for "this watch's subscribe frame went out".
        while True:
            if self._connected():
                break
            await asyncio.sleep(_POLL_S)
        if self._after_live is not None:
            for msg in await self._after_live():
                self._queue.put_nowait(msg)
        if not self._live.done():
            self._live.set_result(None)

    async def _run(self) -> None:
        _NOTE.set(self._note)
        # ccxt's decimal_to_precision sets ROUND_HALF_UP and the Underflow trap on the context it runs
        # in: this task (and the connection tasks ccxt starts from it) gets a context of its own, so the
        # rest of the process keeps its arithmetic (client.py does the same around every REST call).
        decimal.setcontext(decimal.Context())
        self._owner._before_open(private=self._private)
        live = asyncio.get_running_loop().create_task(self._watch_live())
        resyncs = 0
        try:
            while True:
                try:
                    raw = await self._call()
                except self._resync as exc:
                    self._gap(f"sequence break: {type(exc).__name__}")
                    # ccxt parks a rejection that finds no waiting future and hands it to the next one,
                    # whose settled future then stays in ``client.futures`` and fails every later watch
                    # on that hash at once (seen on Bitget: the checksum rejection lands after the
                    # unsubscribe already failed the watch).  Drop settled futures before re-calling.
                    self._owner._drop_settled_futures()
                    resyncs += 1
                    if resyncs > _MAX_RESYNCS:  # never spin: let the relay re-open the connection
                        raise ccxt.NetworkError(f"{resyncs} resyncs without a book") from exc
                    await asyncio.sleep(0)
                    continue
                resyncs = 0
                for msg in self._convert(raw):
                    self._queue.put_nowait(msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = map_error(exc, op="read", quirks=self._owner.quirks)
            if not self._live.done():
                self._live.set_exception(err)
                self._live.exception()  # retrieved here; wait_live raises it
            self._queue.put_nowait(_Stop(err))
        finally:
            live.cancel()

    def _gap(self, reason: str) -> None:
        gap = Gap(self._owner.venue, self._channel, self._symbol, reason=reason, source="venue")
        for listener in list(self._listeners):
            listener(gap)

    # -- LiveStream --------------------------------------------------------------------------------

    def on_gap(self, listener: GapListener) -> None:
        self._listeners.append(listener)

    async def wait_live(self) -> None:
        await asyncio.shield(self._live)

    def __aiter__(self) -> _Watch[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._queue.get()
        if isinstance(item, _Stop):
            self._queue.put_nowait(item)
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._queue.put_nowait(_Stop(None))
        if self._closed is not None:
            self._closed(set(self.urls))
            self._closed = None
        for url in self.urls:
            self._owner._use(url, -1)
        self.urls.clear()
        if self._private:
            self._owner._private_closed()


class CcxtStreams:
    """The adapter's stream half (``client.streams``)."""

    def __init__(self, client: CcxtClient, backoff: Backoff) -> None:
        self._client = client
        self.ex: Any = client._ex
        self.quirks = client.quirks
        self.venue = client.venue
        self.relay = Relay(self.venue, backoff=backoff, gap_source="venue")
        self.fills = FillTracker(venue=self.venue)
        self._symbol_of: dict[str, str] = {}  # order id -> canonical symbol (REST reconciliation)
        self._fees: dict[str, tuple[Decimal, Decimal]] = {}  # order id -> (filled, cumulative fee)
        self._opens: dict[Hashable, int] = {}
        self._url_users: dict[str, int] = {}
        self._book_urls: dict[str, set[str]] = {}  # canonical symbol -> urls its last book upstream used
        self.opened = 0
        self._keepalive: asyncio.Task[None] | None = None
        _hook(self.ex)

    # -- plumbing -------------------------------------------------------------------------------

    def _keepalive_interval(self) -> float | None:
        if self.quirks.listen_key_keepalive_s is None:
            return None
        return self._client._config.listen_key_keepalive_s or self.quirks.listen_key_keepalive_s

    async def _keep_alive(self, interval: float) -> None:
        decimal.setcontext(decimal.Context())  # as in _run: ccxt must not rewrite the shared context
        while True:
            await asyncio.sleep(interval)
            try:
                await self.ex.keep_alive_listen_key()
            except Exception as exc:  # ccxt fails the private watch itself; the relay re-opens it
                _log.warning("ccxt.listen_key_keepalive_failed", venue=self.venue, error=type(exc).__name__)

    def _drop_settled_futures(self) -> None:
        for c in list(self.ex.clients.values()):
            futures = getattr(c, "futures", None)
            if isinstance(futures, dict):
                for key in [k for k, f in futures.items() if f.done()]:
                    del futures[key]

    def _before_open(self, *, private: bool) -> None:
        self.opened += 1
        interval = self._keepalive_interval() if private else None
        if interval and (self._keepalive is None or self._keepalive.done()):
            self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive(interval))
        self.ex.ws_dial_backoff = {}  # the relay's Backoff is the one retry owner
        if private and self.quirks.listen_key_keepalive_s is not None:
            for value in self.ex.options.values():
                if isinstance(value, dict) and "listenKey" in value:
                    value["listenKey"] = None
                    value["lastAuthenticatedTime"] = 0

    def _use(self, url: str, delta: int) -> None:
        n = self._url_users.get(url, 0) + delta
        if n > 0:
            self._url_users[url] = n
            return
        self._url_users.pop(url, None)
        c = self.ex.clients.pop(url, None)
        if c is not None:
            asyncio.get_running_loop().create_task(self._close_ws(c))

    @staticmethod
    async def _close_ws(c: Any) -> None:
        with contextlib.suppress(Exception):
            await c.close()

    def _open(
        self, channel: str, topic: Hashable, factory: Callable[[], Any], **kw: Any
    ) -> Subscription[Any]:
        return self.relay.open(channel, [(topic, factory)], venue=self.venue, **kw)

    def _refused(self, channel: str, symbol: str, err: VenueError) -> Subscription[Any]:
        sub: Subscription[Any] = Subscription(venue=self.venue, channel=channel, symbol=symbol)
        sub.refuse(err)
        return sub

    # -- market data ------------------------------------------------------------------------------

    def order_book(self, symbol: str, depth: int) -> Subscription[orderbook_pb2.OrderBook]:
        if depth < 1:
            return self._refused("book", symbol, InvalidRequest("depth must be positive", venue=self.venue))

        def convert(raw: Any) -> list[orderbook_pb2.OrderBook]:
            return [parse.parse_order_book(raw, symbol, self.venue, depth, self._client._contract(symbol))]

        def factory() -> _Watch[orderbook_pb2.OrderBook]:
            first = True

            async def call() -> Any:
                nonlocal first
                unified = await self._client._unified(symbol)
                used = self._book_urls.get(symbol)
                if first and used and not any(url in self.ex.clients for url in used):
                    # Re-opened on a new connection: ccxt keeps a symbol's book across a lost connection,
                    # and its Bitget handler applies the re-subscription's snapshot on top of it (stale
                    # levels survive), so the book starts again from the venue's snapshot alone.  (While
                    # the connection lives, its subscription keeps ccxt's book current: kept then.)
                    self.ex.orderbooks.pop(unified, None)
                first = False
                return await self.ex.watch_order_book(unified)

            def closed(urls: set[str]) -> None:
                self._book_urls[symbol] = urls

            return _Watch(
                self,
                channel="book",
                symbol=symbol,
                call=call,
                convert=convert,
                # ChecksumError (Binance's pu, Bitget's checksum, Gate's U/u) is an InvalidNonce, as is
                # OKX's prevSeqId break; ccxt re-subscribes for a fresh snapshot on the next call.  On a
                # Bitget checksum failure ccxt first unsubscribes, which fails the pending watch with
                # UnsubscribeError: the same resync.
                resync=(ccxt.InvalidNonce, ccxt.UnsubscribeError),
                closed=closed,
            )

        return self._open("book", ("book", symbol, depth), factory)

    def trades(self, symbol: str) -> Subscription[trade_pb2.Trade]:
        async def call() -> Any:
            return await self.ex.watch_trades(await self._client._unified(symbol))

        def convert(raw: Any) -> list[trade_pb2.Trade]:
            if not isinstance(raw, list):
                raise ParseError("trades: expected a list", venue=self.venue)
            index = self._client._loaded()
            return [parse.parse_trade(t, index.symbols, self.venue, index.contract_sizes) for t in raw]

        def factory() -> _Watch[trade_pb2.Trade]:
            return _Watch(self, channel="trades", symbol=symbol, call=call, convert=convert)

        return self._open("trades", ("trades", symbol), factory)

    def prices(self, symbols: Sequence[str]) -> Subscription[price_pb2.Price]:
        """One ccxt ``watch_ticker`` upstream per symbol (topic ``("prices", symbol)``)."""

        def factory_for(symbol: str) -> Callable[[], _Watch[price_pb2.Price]]:
            async def call() -> Any:
                return await self.ex.watch_ticker(await self._client._unified(symbol))

            def convert(raw: Any) -> list[price_pb2.Price]:
                return [parse.parse_price(raw, symbol, self.venue, self._client._contract(symbol))]

            return lambda: _Watch(self, channel="prices", symbol=symbol, call=call, convert=convert)

        if not symbols:
            return self._refused("prices", "", InvalidRequest("give at least one symbol", venue=self.venue))
        return self.relay.open(
            "prices", [(("prices", s), factory_for(s)) for s in dict.fromkeys(symbols)], venue=self.venue
        )

    # -- executions -------------------------------------------------------------------------------

    def track(self, order: order_pb2.Order) -> None:
        """An order this client placed (before the stream may have said anything about it)."""
        if order.order_id:
            self._symbol_of[order.order_id] = order.symbol
            self.fills.register(order.order_id)

    def _reports(
        self, order: order_pb2.Order, raw: object = None, *, from_rest: bool = False
    ) -> list[execution_pb2.ExecutionReport]:
        self._symbol_of[order.order_id] = order.symbol
        self._cumulative_fee(order, raw, from_rest=from_rest)
        reports = self.fills.update(order)
        if len(self._fees) > _MAX_ORDERS:
            self._prune()
        return reports

    def _prune(self) -> None:
        """Forget the oldest finished orders beyond the bound (open ones are always kept)."""
        still_open = set(self.fills.open_order_ids())
        excess = len(self._fees) - _MAX_ORDERS // 2
        for oid in [o for o in self._fees if o not in still_open][:excess]:
            self._fees.pop(oid, None)
            self._symbol_of.pop(oid, None)

    def _cumulative_fee(self, order: order_pb2.Order, raw: object, *, from_rest: bool) -> None:
        """Set ``order.total_fees`` to the order's cumulative fee, whatever the venue streams."""
        filled_before, fee = self._fees.get(order.order_id, (Decimal(0), Decimal(0)))
        filled = dec(order.filled_quantity or "0")
        key = self.quirks.ws_fill_fee_key
        if from_rest:
            # A REST order may carry no fee at all: never report less than what was already summed.
            fee = max(fee, dec(order.total_fees or "0"))
        elif key:
            info = raw.get("info") if isinstance(raw, Mapping) else None
            last = parse.num(info.get(key), key, self.venue) if isinstance(info, Mapping) else ""
            if filled > filled_before:
                fee += dec(last or "0")
        else:
            fee = max(fee, dec(order.total_fees or "0"))
        self._fees[order.order_id] = (max(filled, filled_before), fee)
        if fee or order.total_fees:
            order.total_fees = dec_str(fee)

    def executions(self, symbols: Sequence[str] | None) -> Subscription[execution_pb2.ExecutionReport]:
        wanted = frozenset(symbols or ())

        async def call() -> Any:
            for s in wanted:
                await self._client._unified(s)  # an unknown symbol refuses the subscription
            return await self.ex.watch_orders()

        def convert(raw: Any) -> list[execution_pb2.ExecutionReport]:
            if not isinstance(raw, list):
                raise ParseError("orders: expected a list", venue=self.venue)
            out: list[execution_pb2.ExecutionReport] = []
            for item in raw:
                out.extend(self._reports(self._client._order(item), item))
            return out

        topic = ("executions",)

        def factory() -> _Watch[execution_pb2.ExecutionReport]:
            self._opens[topic] = self._opens.get(topic, 0) + 1
            reopened = self._opens[topic] > 1
            return _Watch(
                self,
                channel="executions",
                symbol="",
                call=call,
                convert=convert,
                after_live=self._reconcile if reopened else None,
                private=True,
            )

        accept = (lambda r: r.symbol in wanted) if wanted else None
        return self._open("executions", topic, factory, accept=accept)

    async def _reconcile(self) -> list[execution_pb2.ExecutionReport]:
        """After a re-open: the current state of every order still open in the tracker (REST)."""
        out: list[execution_pb2.ExecutionReport] = []
        for oid in self.fills.open_order_ids():
            symbol = self._symbol_of.get(oid, "")
            try:
                order = await self._client.get_order(symbol=symbol, order_id=oid)
            except VenueError as err:
                _log.warning(
                    "ccxt.reconcile_failed", venue=self.venue, order_id=oid, error=type(err).__name__
                )
                continue
            out.extend(self._reports(order, from_rest=True))
        return out

    def _private_closed(self) -> None:
        if self._keepalive is not None and self.relay.subscriber_count("executions") == 0:
            self._keepalive.cancel()
            self._keepalive = None

    async def aclose(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        await self.relay.aclose()
