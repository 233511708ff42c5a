"""Batch place and cancel for the ccxt adapter (:class:`cqvx.client.SupportsBatchOrders`).

Rules:

* **Per-item results, in order.**  Each order (ref) gets its report (order) or its own taxonomy error;
  one failure never loses the others.  An item refused before sending (off-step quantity, bad client
  order id) is that item's :class:`~cqvx.errors.InvalidRequest` and is not sent.
* **Batch size from the quirk table** (``batch_max``: per request, place and cancel; Binance USD-M
  ``batchOrders``: 5 and 10).  Venues with ``0`` get one request per item (same per-item results).
* **A venue's per-item error** (Binance answers ``{"code": -2019, "msg": ...}`` in the item's place)
  goes through the one error table as if ccxt had raised it for that item alone.
* **Unknown is not rejected.**  A batch placement whose reply cannot be read item by item (transport
  failure after sending, an unparsable reply, fewer items than sent, an item neither an order nor an
  error) is unresolved for the items concerned: each is looked up by its client order id (never
  re-sent); found -> a STATUS report, not found or lookup failed -> :class:`~cqvx.errors.Timeout`
  (still unresolved: the caller looks again later).  A whole batch refused with an answer that
  proves nothing acted (rate limit, a request-level rejection) is that error for every item.
* **Cancels** are grouped per symbol and id kind; a request-level refusal of a cancel batch (e.g. an
  id the venue cannot even parse) falls back to one cancel per ref, so each ref gets its own answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ccxt

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.errors import InvalidRequest, NotFound, RateLimited, Timeout, VenueError
from cqvx.types import TERMINAL_STATUSES, report_from_order
from cqvx.venues.ccxt.errors import Op, error_body, map_error

if TYPE_CHECKING:
    from cqvx.venues.ccxt.client import CcxtClient

__all__ = ["cancel_orders", "place_orders"]

Result = execution_pb2.ExecutionReport | VenueError


def _item_error(client: CcxtClient, raw: object, op: Op, coid: str = "") -> VenueError | None:
    """The item's own error when the venue answered one in its place (None: not an error item).

    The venue's code (quirk ``batch_error_key``, else ``error_code_key``, else ``code``) picks the
    exception class ccxt itself raises for that code on a single request (its ``exceptions.exact``
    table), so a batch item fails exactly as the same order placed alone would."""
    info = raw.get("info") if isinstance(raw, Mapping) else None
    if not isinstance(info, Mapping) or (isinstance(raw, Mapping) and raw.get("id")):
        return None
    quirks = client.quirks
    code = next(
        (info[k] for k in (quirks.batch_error_key, quirks.error_code_key, "code") if k and info.get(k)),
        None,
    )
    if code is None or str(code) == "0":
        return None
    exact = getattr(client._ex, "exceptions", {}).get("exact", {})
    cls = exact.get(str(code)) if isinstance(exact, Mapping) else None
    if not (isinstance(cls, type) and issubclass(cls, ccxt.BaseError)):
        cls = ccxt.ExchangeError
    body = dict(info) | {quirks.error_code_key: code}
    exc = cls(f"{client._ex.id} {json.dumps(body, default=str)}")
    return map_error(exc, op=op, quirks=quirks, client_order_id=coid)


def _dropped_failures(client: CcxtClient) -> list[object]:
    """The failed items ccxt left out of its unified batch answer, read from the venue's body.

    ccxt keeps the last HTTP body it read (``last_http_response``); nothing awaits between that
    read and ccxt's return to us, so on one event loop it is this call's.  Unreadable: none, and
    the count check of the caller then resolves every item by lookup (unknown, never rejected)."""
    try:
        node: object = json.loads(client._ex.last_http_response or "")
    except (TypeError, ValueError):
        return []
    for key in client.quirks.batch_failures_path:
        node = node.get(key) if isinstance(node, Mapping) else None
    field = client.quirks.client_order_id_field
    return [
        {"id": None, "clientOrderId": item.get(field) or None, "info": item}
        for item in (node if isinstance(node, list) else [])
        if isinstance(item, Mapping)
    ]


def _item_coid(raw: object) -> str:
    """The client order id an error item names (venues that echo it: OKX, Bitget, Gate)."""
    value = raw.get("clientOrderId") if isinstance(raw, Mapping) else None
    return value if isinstance(value, str) else ""


async def _resolve(client: CcxtClient, order: order_pb2.Order, why: str) -> Result:
    """An unresolved placement: look it up by client order id, never re-send."""
    coid = order.client_order_id
    if not coid:
        return Timeout(f"batch item without client order id is unresolved ({why})", venue=client.venue)
    try:
        found = await client.get_order(symbol=order.symbol, client_order_id=coid)
    except VenueError as err:
        kind = "not found yet" if isinstance(err, NotFound) else type(err).__name__
        return Timeout(f"batch item {coid} unresolved ({why}; lookup: {kind})", venue=client.venue)
    client.streams.track(found)
    return report_from_order(found, execution_pb2.EXECUTION_TYPE_STATUS)


async def place_orders(client: CcxtClient, orders: Sequence[order_pb2.Order]) -> list[Result]:
    results: list[Result | None] = [None] * len(orders)
    batched: list[tuple[int, dict[str, Any]]] = []
    singles: list[int] = []
    size = client.quirks.batch_max[0]
    for i, order in enumerate(orders):
        try:
            req = await client._request(order)
        except VenueError as err:
            results[i] = err
            continue
        # Items are matched to the reply by client order id (ccxt re-sorts a batch reply by time).
        if size > 1 and order.client_order_id:
            batched.append((i, req))
        else:
            singles.append(i)
    for k in range(0, len(batched), max(size, 1)):
        chunk = batched[k : k + size]
        for i, result in zip([i for i, _ in chunk], await _place_chunk(client, orders, chunk), strict=True):
            results[i] = result
    for i in singles:
        results[i] = await _place_one(client, orders[i])
    return [r for r in results if r is not None]


async def _place_one(client: CcxtClient, order: order_pb2.Order) -> Result:
    try:
        return await client.place_order(order)
    except Timeout as err:
        return await _resolve(client, order, err.message)
    except VenueError as err:
        return err


async def _place_chunk(
    client: CcxtClient, orders: Sequence[order_pb2.Order], chunk: list[tuple[int, dict[str, Any]]]
) -> list[Result]:
    try:
        raws = await client._call("write", client._ex.create_orders, [req for _, req in chunk])
    except VenueError as err:
        if isinstance(err, Timeout):
            return [await _resolve(client, orders[i], err.message) for i, _ in chunk]
        return _refused_items(client, err, len(chunk))
    if isinstance(raws, list) and len(raws) < len(chunk) and client.quirks.batch_failures_path:
        raws = raws + _dropped_failures(client)
    if not isinstance(raws, list) or len(raws) != len(chunk):
        return [await _resolve(client, orders[i], "unreadable batch reply") for i, _ in chunk]
    placed: dict[str, order_pb2.Order] = {}
    errors: list[VenueError] = []
    named: dict[str, VenueError] = {}
    acks: dict[str, object] = {}
    for raw in raws:
        item_err = _item_error(client, raw, "write")
        if item_err is not None:
            if _item_coid(raw):
                named[_item_coid(raw)] = item_err
            else:
                errors.append(item_err)
            continue
        if client.quirks.create_acks:  # ids only (Bybit, OKX, Bitget): read back below
            coid = raw.get("clientOrderId") if isinstance(raw, Mapping) else None
            if isinstance(coid, str) and coid and raw.get("id"):
                acks[coid] = raw
            continue
        try:
            read = client._order(raw)
        except VenueError:
            continue  # an item we cannot read: its order stays unmatched, so it is looked up
        placed[read.client_order_id] = read
    for i, _ in chunk:
        ack = acks.get(orders[i].client_order_id)
        if ack is not None:
            placed[orders[i].client_order_id] = await client._read_back(ack, orders[i])
    # ccxt sorts the reply by timestamp and error items carry none, but its sort is stable: the
    # error items keep their relative order, which is that of the orders no order item answered.
    # An error item naming its client order id is that order's; the anonymous ones pair by position.
    unmatched = [i for i, _ in chunk if orders[i].client_order_id not in placed.keys() | named.keys()]
    paired = dict(zip(unmatched, errors, strict=True)) if len(unmatched) == len(errors) else {}
    paired |= {i: named[orders[i].client_order_id] for i, _ in chunk if orders[i].client_order_id in named}
    out: list[Result] = []
    for i, _ in chunk:
        order = orders[i]
        got = placed.get(order.client_order_id)
        if got is not None and got.symbol == order.symbol:
            client.streams.track(got)
            out.append(report_from_order(got, execution_pb2.EXECUTION_TYPE_NEW))
        elif i in paired and not isinstance(paired[i], Timeout):
            out.append(paired[i])
        else:
            out.append(await _resolve(client, order, "batch item unreadable"))
    return out


def _refused_items(client: CcxtClient, err: VenueError, count: int) -> list[Result]:
    """A whole batch refused: each item's own error where the refusal lists one per item in request
    order (OKX answers every failed order's sCode in ``data`` and ccxt raises the first one's), else
    the request's error for every item.  Either way nothing was placed (the venue said so)."""
    body = error_body(err.message)
    rows = body.get("data") if isinstance(body, Mapping) else None
    if isinstance(rows, list) and len(rows) == count:
        own = [_item_error(client, {"id": None, "info": row}, "write") for row in rows]
        if all(e is not None for e in own):
            return [e for e in own if e is not None]
    return [_copy(err) for _ in range(count)]


def _copy(err: VenueError) -> VenueError:
    """The same error for one more item (each item owns its exception object)."""
    clone = type(err)(err.message, venue=err.venue, retry_safe=err.retry_safe)
    clone.code = err.code
    if isinstance(err, RateLimited) and isinstance(clone, RateLimited):
        clone.retry_after = err.retry_after
    return clone


async def cancel_orders(
    client: CcxtClient, refs: Sequence[order_pb2.OrderRef]
) -> list[order_pb2.Order | VenueError]:
    results: list[order_pb2.Order | VenueError | None] = [None] * len(refs)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, ref in enumerate(refs):
        kind = ref.WhichOneof("id") or ""
        if not kind or not ref.symbol:
            results[i] = _invalid(client, "each ref needs a symbol and exactly one id")
            continue
        groups.setdefault((ref.symbol, kind), []).append(i)
    size = client.quirks.batch_max[1]
    for (symbol, id_kind), idx in groups.items():
        step = size if size > 1 else 1
        for k in range(0, len(idx), step):
            part = idx[k : k + step]
            for i, result in zip(
                part, await _cancel_chunk(client, symbol, id_kind, [refs[j] for j in part]), strict=True
            ):
                results[i] = result
    return [r for r in results if r is not None]


def _invalid(client: CcxtClient, message: str) -> VenueError:
    return InvalidRequest(message, venue=client.venue)


async def _one_cancel(client: CcxtClient, ref: order_pb2.OrderRef) -> order_pb2.Order | VenueError:
    try:
        if ref.WhichOneof("id") == "order_id":
            return await client.cancel_order(symbol=ref.symbol, order_id=ref.order_id)
        return await client.cancel_order(symbol=ref.symbol, client_order_id=ref.client_order_id)
    except VenueError as err:
        return err


async def _after_unknown(client: CcxtClient, ref: order_pb2.OrderRef) -> order_pb2.Order | VenueError:
    """The batch cancel may have acted: an order already finished is its answer, else cancel it."""
    kind = ref.WhichOneof("id")
    try:
        if kind == "order_id":
            found = await client.get_order(symbol=ref.symbol, order_id=ref.order_id)
        else:
            found = await client.get_order(symbol=ref.symbol, client_order_id=ref.client_order_id)
    except VenueError as err:
        return err
    if found.status in TERMINAL_STATUSES:
        return found
    return await _one_cancel(client, ref)


async def _cancel_chunk(
    client: CcxtClient, symbol: str, kind: str, refs: list[order_pb2.OrderRef]
) -> list[order_pb2.Order | VenueError]:
    by_client = client.quirks.cancel_client_ids_param
    if len(refs) == 1 or client.quirks.batch_max[1] <= 1 or (kind != "order_id" and not by_client):
        return [await _one_cancel(client, r) for r in refs]
    unified = await client._unified(symbol)
    params: dict[str, Any] = {}
    settle = client._ex.market(unified).get("settleId") if client.quirks.cancel_orders_settle else None
    if settle:  # derivatives only (a spot market has no settle currency)
        params["settle"] = settle
    if kind == "order_id":
        args: tuple[Any, ...] = ([r.order_id for r in refs], unified, params)
    else:
        args = ([], unified, params | {by_client: [r.client_order_id for r in refs]})
    try:
        raws = await client._call("cancel", client._ex.cancel_orders, *args)
    except Timeout:
        return [await _after_unknown(client, r) for r in refs]
    except VenueError:
        return [await _one_cancel(client, r) for r in refs]
    if not isinstance(raws, list) or len(raws) != len(refs):
        return [await _after_unknown(client, r) for r in refs]
    done: dict[str, order_pb2.Order] = {}
    errors: list[VenueError] = []
    for raw in raws:
        err = _item_error(client, raw, "cancel")
        if err is not None:
            errors.append(err)
            continue
        try:
            got = client._order(raw, symbol)
        except VenueError:
            continue
        done[got.order_id if kind == "order_id" else got.client_order_id] = got
    # Matched by id: ccxt re-sorts the reply (see _place_chunk).
    unmatched = [r for r in refs if _ref_id(r) not in done]
    paired = (
        {id(r): e for r, e in zip(unmatched, errors, strict=True)} if len(unmatched) == len(errors) else {}
    )
    out: list[order_pb2.Order | VenueError] = []
    for ref in refs:
        if _ref_id(ref) in done:
            out.append(done[_ref_id(ref)])
        elif id(ref) in paired and not isinstance(paired[id(ref)], Timeout):
            out.append(paired[id(ref)])
        else:
            out.append(await _after_unknown(client, ref))
    return out


def _ref_id(ref: order_pb2.OrderRef) -> str:
    return ref.order_id if ref.WhichOneof("id") == "order_id" else ref.client_order_id
