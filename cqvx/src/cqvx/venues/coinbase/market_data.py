"""Coinbase market data over REST (products, books, best bid/ask, trades, tickers, candles) and the
products table: product id <-> canonical symbol, quote (= fee and settlement) currency and contract
size, all learned from the venue's product listings, never from splitting a product id.

The table fills as products are seen (``get_instruments``) and is refreshed for every unknown product
id a reply names (:meth:`_learn_products`: one ``GET /products?product_ids=...``, then
``GET /products/{id}`` for ids the list left out), so futures (``BIP-20DEC30-CDE``) and INTX
perpetuals (``BTC-PERP-INTX``) get their canonical id, USD/USDC quote and contract size before any
order, fill or position of theirs is converted.  Lookup limits: one list call plus one call per id
the list did not return, per reply; a product the venue does not know stays unknown and its rows
are a ParseError on the REST paths (never an identity mapping).

Market-data calls use the authenticated route when the client has keys and the public ``/market``
twin otherwise (:meth:`CoinbaseClient._market`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cqc.markets.v1 import candle_pb2, instrument_pb2, orderbook_pb2, price_pb2, trade_pb2
from cqvx.errors import InvalidRequest, NotFound, ParseError
from cqvx.num import dec, dec_str
from cqvx.symbols import parse_symbol
from cqvx.transport.http import HttpResponse
from cqvx.venues.coinbase import endpoints as ep
from cqvx.venues.coinbase import models as m
from cqvx.venues.coinbase import parse
from cqvx.venues.coinbase.errors import VENUE


class _MarketData:
    """Market data of :class:`~cqvx.venues.coinbase.client.CoinbaseClient` (mixin; state on the client)."""

    _to_canon: dict[str, str]
    _to_product: dict[str, str]
    _contract_size: dict[str, Decimal]
    _quote: dict[str, str]

    if TYPE_CHECKING:

        async def _get(
            self, path: str, route: str, params: Any = None, *, private: bool = True
        ) -> HttpResponse: ...

        def _market(self, path: str) -> tuple[str, bool]: ...

        def product_id(self, symbol: str) -> str: ...

        def to_canonical(self, product_id: str) -> str: ...

    async def _learn_products(self, product_ids: Sequence[str]) -> None:
        """Load the products behind ids not in the table yet (module docstring: lookup limits)."""
        unknown = sorted({p for p in product_ids if p and p not in self._to_canon})
        if not unknown:
            return
        path, private = self._market(ep.PRODUCTS)
        params: list[tuple[str, str | int]] = [("product_ids", p) for p in unknown]
        resp = await self._get(path, "/products", params, private=private)
        self._learn(parse.products_from_json(resp.body))
        for pid in unknown:
            if pid in self._to_canon:
                continue
            # List Products may leave out futures and perpetuals; Get Product names any one.
            one_path, one_private = self._market(ep.product_path(pid))
            try:
                one = await self._get(one_path, ep.R_PRODUCT, private=one_private)
            except NotFound:
                continue
            self._learn([parse.instrument_from_product(parse.decode(one.body, m.Product))])

    def _learn(self, instruments: Sequence[instrument_pb2.Instrument]) -> None:
        for inst in instruments:
            self._to_canon[inst.venue_symbol] = inst.symbol
            self._to_product[inst.symbol] = inst.venue_symbol
            self._quote[inst.venue_symbol] = inst.settle_asset or inst.quote_asset
            if inst.contract_size and inst.instrument_type != instrument_pb2.INSTRUMENT_TYPE_SPOT:
                self._contract_size[inst.venue_symbol] = dec(inst.contract_size, "contract_size")

    async def _resolve_symbols(self, symbols: Sequence[str]) -> None:
        """Make every futures/perpetual canonical symbol in ``symbols`` known, loading the futures
        products (``product_type=FUTURE``; perpetuals also with ``contract_expiry_type=PERPETUAL``)
        when one is not in the table yet.  Spot ids need no lookup: a Coinbase spot product id is its
        canonical id (:func:`~cqvx.venues.coinbase.parse.canonical_for_product`)."""
        missing = [s for s in symbols if s not in self._to_product]
        kinds = {parse_symbol(s).instrument_type for s in missing}  # InvalidRequest for a malformed id
        kinds.discard(instrument_pb2.INSTRUMENT_TYPE_SPOT)
        if not kinds:
            return
        path, private = self._market(ep.PRODUCTS)
        queries: list[list[tuple[str, str | int]]] = [[("product_type", "FUTURE")]]
        if instrument_pb2.INSTRUMENT_TYPE_PERPETUAL in kinds:
            queries.append([("product_type", "FUTURE"), ("contract_expiry_type", "PERPETUAL")])
        for params in queries:
            resp = await self._get(path, "/products", params, private=private)
            self._learn(parse.products_from_json(resp.body))

    def quote_of(self, product_id: str) -> str:
        """The product's quote (fee and settlement) currency from the table; "" when unknown."""
        return self._quote.get(product_id, "")

    def _known(self, product_id: str) -> str:
        """The canonical id of a product in the table; a ParseError for one the venue did not name
        (REST paths call :meth:`_learn_products` first, so this means the venue does not know it)."""
        symbol = self._to_canon.get(product_id)
        if symbol is None:
            raise ParseError(f"product {product_id[:40]!r} is unknown to the venue", venue=VENUE)
        return symbol

    async def get_instruments(self, symbols: Sequence[str] | None = None) -> list[instrument_pb2.Instrument]:
        if symbols:
            await self._resolve_symbols(symbols)
        path, private = self._market(ep.PRODUCTS)
        params = [("product_ids", self.product_id(s)) for s in symbols] if symbols else None
        resp = await self._get(path, "/products", params, private=private)
        instruments = parse.products_from_json(resp.body)
        self._learn(instruments)
        if symbols:
            wanted = set(symbols)
            instruments = [i for i in instruments if i.symbol in wanted]
        return instruments

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook:
        await self._resolve_symbols([symbol])
        path, private = self._market(ep.PRODUCT_BOOK)
        resp = await self._get(
            path,
            "/product_book",
            [("product_id", self.product_id(symbol)), ("limit", depth)],
            private=private,
        )
        book = parse.book_from_json(resp.body, self.to_canonical, depth)
        book.symbol = symbol
        return book

    async def get_best_bid_ask(self, symbols: Sequence[str]) -> list[price_pb2.Price]:
        """``GET /best_bid_ask`` (repeated ``product_ids``; needs keys)."""
        await self._resolve_symbols(symbols)
        params = [("product_ids", self.product_id(s)) for s in symbols]
        resp = await self._get(ep.BEST_BID_ASK, "/best_bid_ask", params)
        return parse.best_bid_ask_from_json(resp.body, self.to_canonical)

    async def get_market_trades(self, symbol: str, limit: int = 100) -> list[trade_pb2.Trade]:
        await self._resolve_symbols([symbol])
        path, private = self._market(ep.ticker_path(self.product_id(symbol)))
        resp = await self._get(path, ep.R_TICKER, [("limit", limit)], private=private)
        trades = parse.market_trades_from_json(resp.body, self.to_canonical)
        for t in trades:
            t.symbol = symbol
        return trades

    async def get_latest_price(self, symbol: str) -> price_pb2.Price:
        await self._resolve_symbols([symbol])
        path, private = self._market(ep.ticker_path(self.product_id(symbol)))
        resp = await self._get(path, ep.R_TICKER, [("limit", 1)], private=private)
        data = parse.decode(resp.body, m.TickerResponse)
        price = price_pb2.Price(venue=VENUE, symbol=symbol)
        if data.best_bid:
            price.bid = parse.dec_text(data.best_bid, "best_bid")
        if data.best_ask:
            price.ask = parse.dec_text(data.best_ask, "best_ask")
        if data.trades:
            last = parse.trade_from_model(data.trades[0])
            price.last = last.price
            price.timestamp.CopyFrom(last.timestamp)
        elif price.bid and price.ask:
            price.last = dec_str((dec(price.bid) + dec(price.ask)) / 2)
        return price

    async def get_tickers(self, symbols: Sequence[str] | None = None) -> list[price_pb2.Ticker]:
        await self._resolve_symbols(symbols or [])
        path, private = self._market(ep.PRODUCTS)
        params = [("product_ids", self.product_id(s)) for s in symbols] if symbols else None
        resp = await self._get(path, "/products", params, private=private)
        out = []
        for p in parse.decode(resp.body, m.ProductsResponse).products:
            symbol = self.to_canonical(p.product_id)
            if symbols and symbol not in symbols:
                continue
            out.append(
                price_pb2.Ticker(
                    venue=VENUE,
                    symbol=symbol,
                    last=parse.dec_text(p.price, "price"),
                    volume_24h=parse.dec_text(p.volume_24h, "volume_24h"),
                )
            )
        return out

    async def get_candles(
        self,
        symbol: str,
        interval: int,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[candle_pb2.Candle]:
        gran = ep.GRANULARITY.get(interval)
        if gran is None:
            raise InvalidRequest(f"candle interval {interval} is not offered by Coinbase", venue=VENUE)
        name, width = gran
        now = int(time.time())
        end_s = int((end or datetime.now(UTC)).timestamp())
        count = min(limit or ep.MAX_CANDLES, ep.MAX_CANDLES)
        start_s = int(start.timestamp()) if start else end_s - count * width
        await self._resolve_symbols([symbol])
        path, private = self._market(ep.candles_path(self.product_id(symbol)))
        out: list[candle_pb2.Candle] = []
        chunk_start = start_s
        while chunk_start < end_s:
            chunk_end = min(end_s, chunk_start + ep.MAX_CANDLES * width)
            params = [("start", chunk_start), ("end", chunk_end), ("granularity", name)]
            resp = await self._get(path, ep.R_CANDLES, params, private=private)
            out.extend(parse.candles_from_json(resp.body, symbol, interval, width, now))
            chunk_start = chunk_end
        out.sort(key=lambda c: c.open_time.seconds)
        return out[-limit:] if limit else out
