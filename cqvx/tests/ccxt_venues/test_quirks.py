"""Every line of each venue's quirk table, checked against ccxt's own behaviour where ccxt encodes it."""

from __future__ import annotations

import json
from typing import Any

import ccxt
import ccxt.pro
import pytest

from cqvx.errors import DuplicateOrder, InvalidRequest, OrderRejected
from cqvx.secrets import Secret
from cqvx.venues.ccxt.config import CcxtConfig, build_exchange
from cqvx.venues.ccxt.errors import map_error
from cqvx.venues.ccxt.quirks import QUIRKS, check_client_order_id, lookup_args, quirks_for
from cqvx.venues.ccxt.section import CcxtSection

VENUES = sorted(QUIRKS)


def test_the_five_venues_have_tables() -> None:
    assert VENUES == ["binance", "bitget", "bybit", "gate", "okx"]
    for name, q in QUIRKS.items():
        assert q.venue == name
        assert hasattr(ccxt.pro, q.ccxt_id), q.ccxt_id
        assert q.docs, f"{name}: every table cites the venue docs"


@pytest.mark.parametrize(
    ("venue", "longest_ok", "bad"),
    [
        ("binance", "a" * 36, "has space"),
        ("bybit", "A-b_" + "c" * 32, "dot.not.ok"),
        ("okx", "Ab1" + "c" * 29, "dash-not-ok"),
        ("bitget", "a_b" + "c" * 29, "dash-not-ok"),
        ("gate", "t-" + "a" * 28, "no-prefix"),
    ],
)
def test_client_order_id_length_and_alphabet(venue: str, longest_ok: str, bad: str) -> None:
    q = quirks_for(venue)
    assert len(longest_ok) == q.client_order_id_max_len
    check_client_order_id(q, longest_ok)
    with pytest.raises(InvalidRequest, match="longer than"):
        check_client_order_id(q, longest_ok + "a")
    with pytest.raises(InvalidRequest, match="characters"):
        check_client_order_id(q, bad)


def test_unknown_venue_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="no ccxt quirk table"):
        quirks_for("kraken")


def _market(exchange: Any, venue: str) -> dict[str, Any]:
    base = {"base": "BTC", "quote": "USDT", "active": True, "precision": {"amount": 0.001, "price": 0.1}}
    spot = venue in ("bybit_spot",)
    return {
        **base,
        "id": {"binance": "BTCUSDT", "bybit": "BTCUSDT", "okx": "BTC-USDT-SWAP", "bitget": "BTCUSDT"}.get(
            venue, "BTC_USDT"
        ),
        "symbol": "BTC/USDT:USDT",
        "settle": "USDT",
        "settleId": "usdt",
        "type": "swap",
        "spot": spot,
        "swap": True,
        "future": False,
        "option": False,
        "margin": False,
        "contract": True,
        "linear": True,
        "inverse": False,
        "contractSize": 1,
        "limits": {"amount": {}, "price": {}, "cost": {}, "leverage": {}},
        "info": {"orderTypes": ["LIMIT", "MARKET"]},
    }


@pytest.mark.parametrize("venue", VENUES)
def test_ccxt_sends_our_client_order_id_in_the_tabled_field(venue: str) -> None:
    """ccxt's unified ``clientOrderId`` lands in the venue field the table names (request built
    offline with ccxt's own create_order_request / sign)."""
    q = quirks_for(venue)
    ex = build_exchange(CcxtConfig(venue, Secret("k"), Secret("s"), Secret("p")), q)
    ex.set_markets([_market(ex, venue)])
    coid = "t-abc123" if venue == "gate" else "abc123"
    amount = "1" if venue in ("gate", "okx") else "0.001"  # contracts
    sent: dict[str, Any] = {}

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        sent.update(url=url, body=body)
        raise ccxt.RequestTimeout("stop")

    ex.fetch = fetch
    import asyncio

    with pytest.raises(ccxt.RequestTimeout):
        asyncio.run(
            ex.create_order(
                "BTC/USDT:USDT", "limit", "buy", amount, "50000", {"clientOrderId": coid, "postOnly": True}
            )
        )
    wire = f"{sent['url']} {sent['body']}"
    assert f"{q.client_order_id_field}" in wire and coid in wire, wire
    # post-only travels as the tabled parameter value
    key, _, value = q.post_only_param.split(" ")[0].partition("=")
    assert key in wire and value in wire, (q.post_only_param, wire)
    asyncio.run(ex.close())


@pytest.mark.parametrize("venue", VENUES)
def test_lookup_by_client_order_id(venue: str) -> None:
    q = quirks_for(venue)
    ident, params = lookup_args(q, "abc")
    if venue == "gate":
        assert ident == "abc"  # Gate takes the custom text where the order id goes
    elif venue == "bybit":
        # blank, not None: ccxt would send orderId=None, an order id Bybit does not have
        assert ident == "" and params["orderLinkId"] == "abc" and params["acknowledged"] is True
    else:
        assert ident is None and params == {"clientOrderId": "abc"}


# What each venue answers to a re-used client order id, as the venue documents it.
_DUPLICATE_REPLIES: dict[str, tuple[int, dict[str, Any]]] = {
    "binance": (400, {"code": -4116, "msg": "ClientOrderId is duplicated."}),
    "bybit": (200, {"retCode": 110072, "retMsg": "OrderLinkedID is duplicate", "result": {}, "time": 1}),
    "bitget": (400, {"code": "40786", "msg": "Duplicate clientOid", "requestTime": 1, "data": None}),
    "okx": (
        200,
        {
            "code": "1",
            "msg": "",
            "data": [{"clOrdId": "abc", "ordId": "", "sCode": "51016", "sMsg": "Duplicated clOrdId"}],
        },
    ),
}


def _raised_by_ccxt(venue: str, status: int, body: dict[str, Any]) -> BaseException:
    q = quirks_for(venue)
    ex = getattr(ccxt, q.ccxt_id)()
    text = json.dumps(body)
    try:
        ex.handle_errors(status, "", "https://x/api", "POST", {}, text, body, {}, "")
        ex.handle_http_status_code(status, "", "https://x/api", "POST", text)
    except ccxt.BaseError as exc:
        raised: BaseException = exc
        return raised
    raise AssertionError("ccxt raised nothing")


@pytest.mark.parametrize("venue", sorted(_DUPLICATE_REPLIES))
def test_duplicate_client_order_id_becomes_duplicate_order(venue: str) -> None:
    status, body = _DUPLICATE_REPLIES[venue]
    exc = _raised_by_ccxt(venue, status, body)
    err = map_error(exc, op="write", quirks=quirks_for(venue), client_order_id="abc")
    assert isinstance(err, DuplicateOrder)
    assert err.client_order_id == "abc" and err.venue == venue and not err.retry_safe


@pytest.mark.parametrize("venue", ["gate"])
def test_venues_without_a_documented_duplicate_code_never_claim_one(venue: str) -> None:
    assert not quirks_for(venue).duplicate_codes
    exc = ccxt.InvalidOrder(venue + ' {"code":"1","msg":"x"}')
    assert isinstance(map_error(exc, op="write", quirks=quirks_for(venue)), InvalidRequest)
    assert isinstance(map_error(ccxt.ExchangeError("x"), op="write", quirks=quirks_for(venue)), OrderRejected)


def test_binance_listen_key_keepalive_is_every_30_minutes() -> None:
    q = quirks_for("binance")
    assert q.listen_key_keepalive_s == 1800
    ex = build_exchange(CcxtConfig("binance"), q)
    assert ex.options["listenKeyRefreshRate"] == 1_800_000  # ccxt.pro's own default is 20 min
    for other in ("bybit", "okx", "bitget", "gate"):
        assert quirks_for(other).listen_key_keepalive_s is None


@pytest.mark.parametrize(("venue", "seconds"), [("bybit", 20), ("okx", 25), ("bitget", 30), ("binance", 180)])
def test_ping_intervals(venue: str, seconds: float) -> None:
    assert quirks_for(venue).ping_interval_s == seconds


@pytest.mark.parametrize(
    ("venue", "acks"), [("binance", False), ("bybit", True), ("okx", True), ("bitget", True), ("gate", False)]
)
def test_which_venues_answer_a_placement_with_ids_only(venue: str, acks: bool) -> None:
    # Bybit /v5/order/create, OKX /trade/order and Bitget place-order return ids only; Binance and
    # Gate return the order.  The fakes answer the same way (test_ccxt_fakes_conformance).
    assert quirks_for(venue).create_acks is acks


@pytest.mark.parametrize(
    ("types", "default_type"), [(("swap",), "swap"), (("linear",), "swap"), (("spot", "swap"), "spot")]
)
def test_derivatives_only_configs_send_symbol_less_calls_to_the_derivatives_account(
    types: tuple[str, ...], default_type: str | None
) -> None:
    venue = "bybit" if "linear" in types else "bitget"
    ex = build_exchange(CcxtConfig(venue, market_types=types), quirks_for(venue))
    assert ex.options["fetchMarkets"]["types"] == list(types)
    assert ex.options["defaultType"] == default_type  # with spot listed, ccxt's own default stays


def test_ccxt_is_the_rate_limit_owner_unless_a_fake_turns_it_off() -> None:
    assert build_exchange(CcxtConfig("okx"), quirks_for("okx")).enableRateLimit is True
    assert build_exchange(CcxtConfig("okx", rate_limit=False), quirks_for("okx")).enableRateLimit is False
    assert "rate_limit" not in CcxtSection.model_fields  # never from a config file


@pytest.mark.parametrize(
    ("venue", "sizes"),
    [
        ("binance", (5, 10)),  # USD-M batchOrders: 5 placed, 10 cancelled per request
        ("bybit", (10, 10)),  # create-batch / cancel-batch: 10 on spot (20 linear); the row loads spot
        ("bitget", (50, 50)),  # batch-place-order / batch-cancel-orders: 50 each
        ("okx", (20, 20)),  # batch-orders / cancel-batch-orders: 20 each
        ("gate", (10, 20)),  # futures batch_orders: 10; batch_cancel_orders: 20
    ],
)
def test_batch_sizes_per_request(venue: str, sizes: tuple[int, int]) -> None:
    q = quirks_for(venue)
    assert q.batch_max == sizes
    assert q.batch_place and q.batch_cancel  # the venue has the endpoints; the size decides their use


@pytest.mark.parametrize(
    ("venue", "native"),
    [("binance", True), ("bybit", True), ("okx", False), ("bitget", True), ("gate", True)],
)
def test_native_cancel_all_only_where_ccxt_has_it_and_a_fake_proves_it(venue: str, native: bool) -> None:
    q = quirks_for(venue)
    assert q.native_cancel_all is native
    # OKX documents no cancel-all for regular orders and ccxt has none; the others are served by
    # their fakes (test_ccxt_fakes_batch.py: exactly one cancel-all request).
    assert bool(build_exchange(CcxtConfig(venue), q).has.get("cancelAllOrders")) is native


@pytest.mark.parametrize(
    ("venue", "methods"),
    [
        ("binance", ()),  # fetch_orders (allOrders)
        ("bybit", ("fetch_canceled_and_closed_orders",)),
        ("okx", ("fetch_closed_orders", "fetch_canceled_orders")),  # state=filled, then state=canceled
        ("bitget", ("fetch_canceled_and_closed_orders",)),
        ("gate", ("fetch_closed_orders",)),  # status=finished
    ],
)
def test_order_history_methods_are_the_ones_ccxt_has(venue: str, methods: tuple[str, ...]) -> None:
    q = quirks_for(venue)
    assert q.history_methods == methods
    ex = build_exchange(CcxtConfig(venue), q)
    assert bool(ex.has.get("fetchOrders")) is not bool(methods)  # ccxt's own where it has one
    for method in methods:
        assert callable(getattr(ex, method))


@pytest.mark.parametrize(
    ("venue", "param"),
    [
        ("binance", "clientOrderIds"),
        ("bybit", "clientOrderIds"),
        ("okx", "clientOrderId"),
        ("bitget", ""),
        ("gate", ""),
    ],
)
def test_batch_cancel_by_client_id_param(venue: str, param: str) -> None:
    # ccxt's bitget/gate cancel_orders take order ids only: client-id cancels go one request each.
    assert quirks_for(venue).cancel_client_ids_param == param


@pytest.mark.parametrize("venue", ["binance", "bybit"])  # okx/bitget/gate: test_ccxt_account_summary
def test_a_summary_line_names_every_field(venue: str) -> None:
    from cqvx.venues.ccxt.account import SUMMARY_FIELDS

    assert sorted(dict(quirks_for(venue).summary_keys)) == sorted(SUMMARY_FIELDS)
