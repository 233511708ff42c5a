"""Fordefi (MPC custody with approval policies) as a cqvx client.

What it offers: the custody capability (:class:`cqvx.client.SupportsCustody`: create a transfer, get
and list transactions, follow one to a final state, abort) plus vaults, their assets and balances
(``get_balances`` is the VenueClient method that fits: one Balance per vault and asset, ``account_id``
= vault id).  Trading, order books and streams are not Fordefi's business: they raise
:class:`~cqvx.errors.UnsupportedOperation`, and :meth:`capabilities` reports CUSTODY only.

Creates are idempotent by Fordefi's own mechanism (see :mod:`cqvx.venues.fordefi.auth`): every create
carries ``x-idempotence-id`` derived from the caller's ``idempotence_id``, so the transport may re-send
it after a lost reply, and a caller retrying after a crash gets the same transaction back.  A reply
for the same id whose transaction does not match the request (another vault or amount) raises
:class:`~cqvx.errors.DuplicateOrder` naming the existing transaction: one key, one transfer.

:meth:`await_terminal` polls ``GET /transactions/{id}`` on the schedule described in
:mod:`cqvx.venues.fordefi.config` (the one :class:`~cqvx.backoff.Backoff`, never faster than half its
cap) until COMPLETED / ABORTED / FAILED; ``mined`` is not final.  Webhooks exist (signed with
Fordefi's public key) but need an HTTP endpoint the process does not have; polling is the mechanism.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

import aiohttp
from prometheus_client import CollectorRegistry

from cqc.markets.v1 import orderbook_pb2
from cqc.venues.v1 import balance_pb2, custody_pb2, execution_pb2, order_pb2
from cqvx.auth.base import Clock, wall_clock
from cqvx.errors import (
    DuplicateOrder,
    InvalidRequest,
    OrderRejected,
    ParseError,
    Timeout,
    UnsupportedOperation,
)
from cqvx.num import dec, dec_str
from cqvx.transport.http import HttpResponse
from cqvx.transport.ratelimit import RateLimiterRegistry, limiters
from cqvx.types import OrderFilter
from cqvx.venues.fordefi import endpoints as ep
from cqvx.venues.fordefi import models as m
from cqvx.venues.fordefi import parse as p
from cqvx.venues.fordefi.auth import build_signer, idempotence_id
from cqvx.venues.fordefi.config import FordefiConfig
from cqvx.venues.fordefi.errors import http_error_mapper
from cqvx.venues.rest import RestVenue

__all__ = ["FordefiClient"]

VENUE = "fordefi"
T = TypeVar("T")
_JSON = {"Content-Type": "application/json"}
_MAX_PAGES = 50


class _RefusedStream:
    """A stream this venue does not offer: ``wait_live`` and the first read raise UnsupportedOperation."""

    def __init__(self, what: str) -> None:
        self._error = UnsupportedOperation(f"Fordefi offers no {what} stream", venue=VENUE)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        raise self._error

    async def aclose(self) -> None:
        return None

    async def wait_live(self) -> None:
        raise self._error

    def on_gap(self, listener: Any) -> None:
        return None


def _uuid(value: str, field: str) -> str:
    """Fordefi ids are UUIDs; anything else is refused before it can reach a URL path."""
    if not value:
        raise InvalidRequest(f"{field}: required", venue=VENUE)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequest(f"{field}: not a Fordefi id (a UUID)", venue=VENUE) from None


def _unsupported(what: str) -> NoReturn:
    raise UnsupportedOperation(f"Fordefi is a custody venue: {what} is not offered", venue=VENUE)


class FordefiClient(RestVenue):
    def __init__(
        self,
        config: FordefiConfig | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        registry: CollectorRegistry | None = None,
        clock: Clock = wall_clock,
        rate_limiters: RateLimiterRegistry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = cfg = config or FordefiConfig()
        super().__init__(
            VENUE,
            cfg,
            signer=build_signer(cfg, clock=clock),
            error_mapper=http_error_mapper,
            needs="access_token + signing_key",
            clock=clock,
            registry=registry,
            session=session,
        )
        shared = limiters if rate_limiters is None else rate_limiters
        # The budget is per API user (its token), shared by every client holding that token.
        # (the registry hashes the identity; the token itself is never stored).
        token_id = cfg.access_token.reveal() if cfg.access_token is not None else ""
        self._bucket = shared.get(
            VENUE, "api", rate=cfg.rps, capacity=cfg.rps, identity=token_id, registry=registry
        )
        self._rng = rng or random.Random()
        # (vault id, asset symbol, chain) -> owned asset info (identifier + decimals).
        self._assets: dict[tuple[str, str, str], m.AssetInfo] = {}

    # --- plumbing -------------------------------------------------------------------------------------

    async def _get(self, path: str, route: str, params: Any = None) -> HttpResponse:
        return await self._send_get(path, route, params, ((self._bucket, 1.0),))

    async def _post(
        self, path: str, route: str, body: bytes, *, headers: dict[str, str] | None = None, idempotent: bool
    ) -> HttpResponse:
        limits = ((self._bucket, 1.0),)
        merged = {**_JSON, **(headers or {})}
        return await self._send_post(path, route, body, limits, idempotent=idempotent, headers=merged)

    async def _pages(
        self, path: str, route: str, params: list[tuple[str, str | int]], parse_page: Any
    ) -> list[Any]:
        out: list[Any] = []
        size = self.config.page_size
        for page in range(1, _MAX_PAGES + 1):
            resp = await self._get(path, route, [*params, ("page", page), ("size", size)])
            items, total = parse_page(resp.body)
            out.extend(items)
            if page * size >= total or not items:
                return out
        raise ParseError(f"{route}: more than {_MAX_PAGES} pages", venue=VENUE)

    # --- vaults, assets, balances ------------------------------------------------------------------------

    async def list_vaults(self) -> list[m.Vault]:
        result: list[m.Vault] = await self._pages(ep.VAULTS, "/vaults", [], p.parse_vaults)
        return result

    async def vault_assets(self, vault_id: str) -> list[m.OwnedAsset]:
        vault_id = _uuid(vault_id, "vault_id")
        assets: list[m.OwnedAsset] = await self._pages(
            ep.vault_assets(vault_id), "/vaults/{id}/assets", [], p.parse_owned_assets
        )
        for a in assets:
            info = a.priced_asset.asset_info
            self._assets[(vault_id, info.symbol.upper(), _chain_of(info))] = info
        return assets

    async def get_vault_balances(self, vault_id: str) -> list[balance_pb2.Balance]:
        return [p.balance_from_owned(a, vault_id) for a in await self.vault_assets(vault_id)]

    async def get_balances(self) -> list[balance_pb2.Balance]:
        out: list[balance_pb2.Balance] = []
        for v in await self.list_vaults():
            out.extend(await self.get_vault_balances(v.id))
        return out

    async def _asset(self, vault_id: str, asset: str, chain: str) -> m.AssetInfo:
        key = (vault_id, asset.upper(), chain)
        if key not in self._assets:
            await self.vault_assets(vault_id)
        info = self._assets.get(key)
        if info is None:
            raise InvalidRequest(
                f"asset: vault {vault_id} holds no {asset!r} on chain {chain!r}", venue=VENUE
            )
        return info

    # --- custody ----------------------------------------------------------------------------------------

    async def create_transaction(
        self, request: custody_pb2.CustodyTransferRequest
    ) -> custody_pb2.CustodyTransaction:
        """Create a transfer (subject to the vault's approval policy); same idempotence id, same tx."""
        for name in ("vault_id", "asset", "chain", "amount", "destination", "idempotence_id"):
            if not getattr(request, name):
                raise InvalidRequest(f"{name}: required", venue=VENUE)
        vault_id = _uuid(request.vault_id, "vault_id")
        try:
            amount = dec(request.amount, "amount", VENUE)
        except ParseError as err:
            raise InvalidRequest(err.message, venue=VENUE) from None
        info = await self._asset(vault_id, request.asset, request.chain)
        identifier = p.asset_identifier(info)
        if identifier.get("type") not in ep.TRANSFER_TYPES:
            raise UnsupportedOperation(
                f"chain: transfers on {identifier.get('type')!r} chains are not offered by this adapter",
                venue=VENUE,
            )
        try:
            value = p.base_units(amount, info.decimals)
        except ValueError as err:
            raise InvalidRequest(f"amount: {err}", venue=VENUE) from None
        body = ep.build_transfer(
            vault_id=vault_id,
            identifier=identifier,
            to=request.destination,
            value=value,
            note=request.note,
        )
        key = idempotence_id(request.idempotence_id)
        # Fordefi stores the first result per idempotence id and replays it, so the transport may
        # re-send after a lost reply (https://docs.fordefi.com/reference/idempotent-requests).
        resp = await self._post(
            ep.TRANSACTIONS, "/transactions", body, headers={"x-idempotence-id": key}, idempotent=True
        )
        tx = p.parse_transaction(resp.body)
        _check_same(tx, request, vault_id, amount, key)
        return tx

    async def get_transaction(self, transaction_id: str) -> custody_pb2.CustodyTransaction:
        transaction_id = _uuid(transaction_id, "transaction_id")
        resp = await self._get(ep.transaction(transaction_id), "/transactions/{id}")
        return p.parse_transaction(resp.body)

    async def list_transactions(
        self, *, vault_ids: Sequence[str] = (), states: Sequence[str] = (), direction: str = ""
    ) -> list[custody_pb2.CustodyTransaction]:
        """Transactions, newest first as Fordefi sorts them; ``states`` are Fordefi state names."""
        params: list[tuple[str, str | int]] = [("vault_ids", v) for v in vault_ids]
        params += [("states", s) for s in states]
        if direction:
            params.append(("direction", direction))
        result: list[custody_pb2.CustodyTransaction] = await self._pages(
            ep.TRANSACTIONS, "/transactions", params, p.parse_transactions
        )
        return result

    async def approve_transaction(self, transaction_id: str) -> custody_pb2.CustodyTransaction:
        """Approve as this API user (allowed when it is one of the transaction's approvers and the
        transaction is waiting for approval).  Idempotent like :meth:`abort_transaction`."""
        transaction_id = _uuid(transaction_id, "transaction_id")
        try:
            await self._post(ep.approve(transaction_id), "/transactions/{id}/approve", b"", idempotent=True)
        except OrderRejected as err:
            if err.code != "transactions_already_approved":
                raise
        return await self.get_transaction(transaction_id)

    async def abort_transaction(self, transaction_id: str) -> custody_pb2.CustodyTransaction:
        """Abort (allowed while waiting for approval or approved; API users abort their own only).

        Idempotent: a transaction that is already aborted (e.g. by a retry whose first reply was lost)
        is returned as it is; any other refusal (``invalid_transaction_state``: too late) is raised.
        """
        transaction_id = _uuid(transaction_id, "transaction_id")
        try:
            await self._post(ep.abort(transaction_id), "/transactions/{id}/abort", b"", idempotent=True)
        except OrderRejected as err:
            if err.code != "transactions_already_aborted":
                raise
        return await self.get_transaction(transaction_id)

    async def await_transaction(
        self, transaction_id: str, states: frozenset[int], timeout: float
    ) -> custody_pb2.CustodyTransaction:
        """Poll until one of ``states`` or a terminal state; :class:`Timeout` after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        schedule = self.config.poll_schedule
        attempt = 0
        while True:
            tx = await self.get_transaction(transaction_id)
            if tx.state in states or tx.state in p.TERMINAL:
                return tx
            attempt += 1
            # Half fixed, half jittered: never sooner than cap/2 after the last poll (no hammering).
            wait = schedule.cap(attempt) / 2 + schedule.delay(attempt, self._rng) / 2
            if loop.time() + wait > deadline:
                raise Timeout(
                    f"custody transaction {transaction_id} still {tx.venue_state} after {timeout:g} s",
                    venue=VENUE,
                    code="await_timeout",
                    retry_safe=True,
                )
            await asyncio.sleep(wait)

    async def await_terminal(
        self, transaction: str | custody_pb2.CustodyTransaction, timeout: float
    ) -> custody_pb2.CustodyTransaction:
        """Follow a transaction (or its id) to COMPLETED, ABORTED or FAILED (``mined`` is not final)."""
        tx_id = transaction if isinstance(transaction, str) else transaction.transaction_id
        return await self.await_transaction(tx_id, frozenset(), timeout)

    # --- VenueClient: what a custody venue does not offer -------------------------------------------------

    async def place_order(self, order: order_pb2.Order) -> execution_pb2.ExecutionReport:
        _unsupported("trading")

    async def cancel_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        _unsupported("trading")

    async def get_order(
        self, *, symbol: str = "", order_id: str | None = None, client_order_id: str | None = None
    ) -> order_pb2.Order:
        _unsupported("trading")

    async def get_orders(self, filter: OrderFilter | None = None) -> list[order_pb2.Order]:
        _unsupported("trading")

    async def get_order_book(self, symbol: str, depth: int = 20) -> orderbook_pb2.OrderBook:
        _unsupported("market data")

    def subscribe_order_book(self, symbol: str, depth: int = 20) -> _RefusedStream:
        return _RefusedStream("order book")

    def subscribe_trades(self, symbol: str) -> _RefusedStream:
        return _RefusedStream("trade")

    async def _probe(self) -> None:
        await self._get(ep.VAULTS, "/vaults", [("page", 1), ("size", 1)])


def _chain_of(info: m.AssetInfo) -> str:
    details = info.asset_identifier.get("details")
    if isinstance(details, dict):
        chain = details.get("chain")
        if isinstance(chain, str):
            return chain
        token = details.get("token")
        if isinstance(token, dict) and isinstance(token.get("chain"), str):
            return str(token["chain"])
    return ""


def _check_same(
    tx: custody_pb2.CustodyTransaction,
    request: custody_pb2.CustodyTransferRequest,
    vault_id: str,
    amount: Decimal,
    key: str,
) -> None:
    """A replayed result for this idempotence id must be this request's transfer."""
    differs = bool(tx.vault_id) and tx.vault_id.lower() != vault_id
    if tx.amount and dec(tx.amount) != amount:
        differs = True
    if differs:
        raise DuplicateOrder(
            f"idempotence id {request.idempotence_id!r} was already used for transaction "
            f"{tx.transaction_id} (vault {tx.vault_id}, amount {dec_str(tx.amount) or '?'})",
            venue=VENUE,
            client_order_id=key,
            order_id=tx.transaction_id,
        )
