"""Signers against the published formulas (venues.md §5, §6.3, §7), ccxt's sign(), key verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import ccxt
import jwt as pyjwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from cqvx.auth.base import PathSigner, Signer
from cqvx.auth.bearer import BearerSigner
from cqvx.auth.ecdsa import FordefiSigner, fordefi_payload
from cqvx.auth.hmac import (
    BITGET,
    BYBIT,
    COINBASE_LEGACY,
    COINBASE_PRIME,
    FALCONX,
    GATE,
    OKX,
    BinanceSigner,
    HmacSigner,
    format_timestamp,
    prime_ws_signature,
)
from cqvx.auth.jwt import CdpJwtSigner
from cqvx.errors import AuthenticationError
from cqvx.secrets import Secret

NS = 1_700_000_000_123_456_789  # fixed clock: 2023-11-14T22:13:20.123456789Z
FIXED: Callable[[], int] = lambda: NS  # noqa: E731
SECRET = "s3cr3t-Value-That-Must-Not-Leak"
B64_SECRET = base64.b64encode(b"falconx-signing-key-bytes-0123456789").decode()

methods = st.sampled_from(["GET", "POST", "DELETE", "PUT", "get", "post"])
segments = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12)
paths = st.lists(segments, min_size=1, max_size=5).map(lambda p: "/" + "/".join(p))
queries = st.one_of(
    st.just(""),
    st.lists(st.tuples(segments, segments), min_size=1, max_size=4).map(
        lambda kv: "&".join(f"{k}={v}" for k, v in kv)
    ),
)
bodies = st.one_of(st.just(b""), st.binary(max_size=200), st.text(max_size=100).map(str.encode))


def _mac(key: bytes, msg: bytes, digest: Any = hashlib.sha256) -> bytes:
    return hmac.new(key, msg, digest).digest()


# Independent restatements of each formula (venues.md §5/§7), written without the signer's machinery.
def expected(name: str, method: str, path: str, body: bytes) -> str:
    m = method.upper().encode()
    bare, _, query = path.partition("?")
    ts_s = str(NS // 10**9).encode()
    ts_ms = str(NS // 10**6).encode()
    if name == "coinbase-legacy":
        return _mac(SECRET.encode(), ts_s + m + bare.encode() + body).hex()
    if name == "coinbase-prime":
        return base64.b64encode(_mac(SECRET.encode(), ts_s + m + bare.encode() + body)).decode()
    if name == "falconx":
        ts = b"1700000000.123456"
        return base64.b64encode(_mac(base64.b64decode(B64_SECRET), ts + m + path.encode() + body)).decode()
    if name == "bybit":
        return _mac(SECRET.encode(), ts_ms + b"KEY" + b"5000" + query.encode() + body).hex()
    if name == "okx":
        ts = b"2023-11-14T22:13:20.123Z"
        return base64.b64encode(_mac(SECRET.encode(), ts + m + path.encode() + body)).decode()
    if name == "bitget":
        return base64.b64encode(_mac(SECRET.encode(), ts_ms + m + path.encode() + body)).decode()
    if name == "gate":
        pre = b"\n".join([m, bare.encode(), query.encode(), hashlib.sha512(body).hexdigest().encode(), ts_s])
        return _mac(SECRET.encode(), pre, hashlib.sha512).hex()
    raise AssertionError(name)


def make(name: str) -> HmacSigner:
    if name == "coinbase-legacy":
        return HmacSigner(COINBASE_LEGACY, "KEY", Secret(SECRET), clock=FIXED)
    if name == "coinbase-prime":
        return HmacSigner(COINBASE_PRIME, "KEY", Secret(SECRET), passphrase=Secret("PASS"), clock=FIXED)
    if name == "falconx":
        return HmacSigner(FALCONX, "KEY", Secret(B64_SECRET), passphrase=Secret("PASS"), clock=FIXED)
    if name == "bybit":
        return HmacSigner(BYBIT, "KEY", Secret(SECRET), recv_window_ms=5000, clock=FIXED)
    if name == "okx":
        return HmacSigner(OKX, "KEY", Secret(SECRET), passphrase=Secret("PASS"), clock=FIXED)
    if name == "bitget":
        return HmacSigner(BITGET, "KEY", Secret(SECRET), passphrase=Secret("PASS"), clock=FIXED)
    if name == "gate":
        return HmacSigner(GATE, "KEY", Secret(SECRET), clock=FIXED)
    raise AssertionError(name)


PRESETS = ["coinbase-legacy", "coinbase-prime", "falconx", "bybit", "okx", "bitget", "gate"]


@pytest.mark.parametrize("name", PRESETS)
@settings(max_examples=60, deadline=None)
@given(method=methods, path=paths, query=queries, body=bodies)
def test_hmac_presets_match_formula(name: str, method: str, path: str, query: str, body: bytes) -> None:
    signer = make(name)
    target = f"{path}?{query}" if query else path
    headers = signer.sign(method, target, body)
    assert headers[signer.scheme.signature_header] == expected(name, method, target, body)
    assert isinstance(signer, Signer)
    # The secret never appears in what is sent or shown.
    blob = json.dumps(headers) + repr(signer) + str(signer)
    assert SECRET not in blob and B64_SECRET not in blob


def test_preset_headers_and_timestamps() -> None:
    h = make("coinbase-prime").sign("GET", "/v1/portfolios/p1/orders?limit=5", b"")
    assert h["X-CB-ACCESS-TIMESTAMP"] == "1700000000"
    assert h["X-CB-ACCESS-KEY"] == "KEY" and h["X-CB-ACCESS-PASSPHRASE"] == "PASS"
    assert make("falconx").sign("GET", "/v1/x", b"")["FX-ACCESS-TIMESTAMP"] == "1700000000.123456"
    assert make("okx").sign("GET", "/x", b"")["OK-ACCESS-TIMESTAMP"] == "2023-11-14T22:13:20.123Z"
    assert make("bybit").sign("GET", "/x", b"")["X-BAPI-RECV-WINDOW"] == "5000"
    assert format_timestamp(NS, "millis") == "1700000000123"


def test_query_inclusion_is_per_venue() -> None:
    # Coinbase/Prime exclude the query from the prehash, FalconX/OKX/Bitget include it.
    for name, includes in [
        ("coinbase-prime", False),
        ("coinbase-legacy", False),
        ("falconx", True),
        ("okx", True),
    ]:
        s = make(name)
        a = s.sign("GET", "/v1/a?x=1", b"")[s.scheme.signature_header]
        b = s.sign("GET", "/v1/a", b"")[s.scheme.signature_header]
        assert (a != b) is includes, name


def _fix_clock(ex: Any) -> Any:
    ex.nonce = lambda: 1700000000000
    ex.milliseconds = lambda: 1700000000000
    ex.seconds = lambda: 1700000000
    return ex


CCXT_CASES = [
    (
        "okx",
        {"password": "pp"},
        OKX,
        ["private"],
        "trade/order",
        "POST",
        {"instId": "BTC-USDT", "side": "buy"},
    ),
    ("okx", {"password": "pp"}, OKX, ["private"], "account/balance", "GET", {"ccy": "BTC"}),
    ("bybit", {}, BYBIT, ["private"], "v5/order/create", "POST", {"symbol": "BTCUSDT", "side": "Buy"}),
    ("bybit", {}, BYBIT, ["private"], "v5/order/realtime", "GET", {"symbol": "BTCUSDT", "category": "spot"}),
    (
        "bitget",
        {"password": "pp"},
        BITGET,
        ["private", "spot"],
        "spot/trade/place-order",
        "POST",
        {"symbol": "X"},
    ),
    (
        "bitget",
        {"password": "pp"},
        BITGET,
        ["private", "spot"],
        "spot/trade/unfilled-orders",
        "GET",
        {"symbol": "X"},
    ),
    ("gate", {}, GATE, ["private", "spot"], "orders", "POST", {"currency_pair": "BTC_USDT", "side": "buy"}),
    ("gate", {}, GATE, ["private", "spot"], "orders", "GET", {"currency_pair": "BTC_USDT", "status": "open"}),
    (
        "coinbase",
        {},
        COINBASE_LEGACY,
        ["v3", "private"],
        "brokerage/orders",
        "POST",
        {"product_id": "BTC-USD"},
    ),
    (
        "coinbase",
        {},
        COINBASE_LEGACY,
        ["v3", "private"],
        "brokerage/orders/historical/batch",
        "GET",
        {"limit": 10},
    ),
]


@pytest.mark.parametrize("case", CCXT_CASES, ids=lambda c: f"{c[0]}-{c[5]}")
def test_byte_equal_with_ccxt_sign(case: tuple[Any, ...]) -> None:
    """venues.md §6.3: ccxt's sign() is pure; with a fixed clock our signature must equal it byte for byte."""
    exchange, extra, scheme, api, path, method, params = case
    ex = _fix_clock(getattr(ccxt, exchange)({"apiKey": "k", "secret": "s3cr3t", **extra}))
    out = ex.sign(path, api, method, dict(params))
    url = urlsplit(out["url"])
    target = url.path + (f"?{url.query}" if url.query else "")
    body = (out["body"] or "").encode()
    kw: dict[str, Any] = {}
    if scheme.passphrase_header:
        kw["passphrase"] = Secret("pp")
    if scheme is BYBIT:
        kw["recv_window_ms"] = 5000
    mine = HmacSigner(scheme, "k", Secret("s3cr3t"), clock=lambda: 1_700_000_000_000_000_000, **kw)
    ours = mine.sign(method, target, body)
    for header in (scheme.signature_header, scheme.timestamp_header, scheme.key_header):
        assert ours[header] == out["headers"][header], header


def test_binance_query_signature() -> None:
    signer = BinanceSigner("k", Secret(SECRET), recv_window_ms=5000, clock=FIXED)
    assert isinstance(signer, PathSigner)
    path, headers = signer.sign_path("GET", "/api/v3/openOrders?symbol=BTCUSDT", b"")
    assert headers == {"X-MBX-APIKEY": "k"}
    bare, _, query = path.partition("?")
    assert bare == "/api/v3/openOrders"
    signed, _, sig = query.rpartition("&signature=")
    assert signed == "symbol=BTCUSDT&timestamp=1700000000123&recvWindow=5000"
    assert sig == _mac(SECRET.encode(), signed.encode()).hex()
    # POST form body: totalParams = query + body (Binance docs, venues.md §5).
    body = b"symbol=BTCUSDT&side=BUY"
    path, _ = signer.sign_path("POST", "/api/v3/order", body)
    signed, _, sig = path.partition("?")[2].rpartition("&signature=")
    assert sig == _mac(SECRET.encode(), signed.encode() + body).hex()


def test_binance_formula_equals_ccxt() -> None:
    ex = _fix_clock(ccxt.binance({"apiKey": "k", "secret": "s3cr3t"}))
    out = ex.sign("openOrders", ["private"], "GET", {"symbol": "BTCUSDT"})
    signed, _, sig = urlsplit(out["url"]).query.rpartition("&signature=")
    assert sig == _mac(b"s3cr3t", signed.encode()).hex()


def test_prime_ws_signature_formula() -> None:
    sig = prime_ws_signature(
        Secret(SECRET),
        channel="l2_data",
        access_key="AK",
        svc_account_id="SVC",
        timestamp="1700000000",
        portfolio_id="",
        product_ids=("BTC-USD", "ETH-USD"),
    )
    msg = b"l2_dataAKSVC1700000000BTC-USDETH-USD"
    assert sig == base64.b64encode(_mac(SECRET.encode(), msg)).decode()


def test_bad_key_encoding_is_typed_and_silent() -> None:
    with pytest.raises(AuthenticationError) as info:
        HmacSigner(FALCONX, "k", Secret("not base64 !!" + SECRET), passphrase="p")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    with pytest.raises(AuthenticationError):
        HmacSigner(COINBASE_PRIME, "k", Secret(SECRET))  # passphrase missing


# --- JWT ----------------------------------------------------------------------------------------------


def _ec_pem() -> tuple[str, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


EC_PEM, EC_PUB = _ec_pem()
ED_SEED = bytes(range(32))
ED_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(ED_SEED)
ED_PUB_RAW = ED_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
ED_SECRET = base64.b64encode(ED_SEED + ED_PUB_RAW).decode()  # the CDP format: seed || public key
KEY_NAME = "organizations/org-1/apiKeys/key-1"


@settings(max_examples=40, deadline=None)
@given(method=methods, path=paths, query=queries)
def test_es256_jwt_verifies_with_claims(method: str, path: str, query: str) -> None:
    signer = CdpJwtSigner(KEY_NAME, Secret(EC_PEM), clock=FIXED)
    target = f"{path}?{query}" if query else path
    headers = signer.sign(method, target, b"{}")
    token = headers["Authorization"].removeprefix("Bearer ")
    header = pyjwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == KEY_NAME and header["typ"] == "JWT"
    assert len(header["nonce"]) == 64 and int(header["nonce"], 16) >= 0
    claims = pyjwt.decode(
        token, EC_PUB, algorithms=["ES256"], options={"verify_exp": False, "verify_nbf": False}
    )
    assert claims == {
        "sub": KEY_NAME,
        "iss": "cdp",
        "nbf": 1700000000,
        "exp": 1700000120,
        "uri": f"{method.upper()} api.coinbase.com{path}",  # no query string (§1.2)
    }
    assert EC_PEM.split("\n")[1] not in token + repr(signer)


def test_ws_jwt_has_no_uri_and_fresh_nonce() -> None:
    signer = CdpJwtSigner(KEY_NAME, Secret(EC_PEM), clock=FIXED)
    a, b = signer.ws_token(), signer.ws_token()
    claims = pyjwt.decode(a, EC_PUB, algorithms=["ES256"], options={"verify_exp": False, "verify_nbf": False})
    assert "uri" not in claims and claims["iss"] == "cdp"
    assert pyjwt.get_unverified_header(a)["nonce"] != pyjwt.get_unverified_header(b)["nonce"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_eddsa_jwt_is_reproducible_vector() -> None:
    """venues.md §6.3: with fixed nbf and nonce the EdDSA token is fully deterministic; rebuild it by hand."""
    nonce = "00" * 32
    signer = CdpJwtSigner(KEY_NAME, Secret(ED_SECRET), clock=FIXED, nonce=lambda: nonce)
    assert signer.algorithm == "EdDSA"
    token = signer.rest_token("POST", "/api/v3/brokerage/orders?x=1")
    header = {"alg": "EdDSA", "kid": KEY_NAME, "nonce": nonce, "typ": "JWT"}
    claims = {
        "sub": KEY_NAME,
        "iss": "cdp",
        "nbf": 1700000000,
        "exp": 1700000120,
        "uri": "POST api.coinbase.com/api/v3/brokerage/orders",
    }
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    assert token == signing_input + "." + _b64url(ED_KEY.sign(signing_input.encode()))
    ED_KEY.public_key().verify(base64.urlsafe_b64decode(token.split(".")[2] + "=="), signing_input.encode())


def test_pem_with_escaped_newlines_and_bad_keys() -> None:
    escaped = EC_PEM.replace("\n", "\\n")
    assert CdpJwtSigner(KEY_NAME, Secret(escaped)).algorithm == "ES256"
    for bad in ["garbage", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----", "QUJD"]:
        with pytest.raises(AuthenticationError) as info:
            CdpJwtSigner(KEY_NAME, Secret(bad))
        assert bad not in str(info.value)
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(AuthenticationError):
        CdpJwtSigner(KEY_NAME, Secret(p384.decode()))


# --- Fordefi ECDSA and bearer ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(path=paths, body=bodies)
def test_fordefi_signature_verifies_with_public_key(path: str, body: bytes) -> None:
    signer = FordefiSigner(Secret("api-user-token-XYZ"), Secret(EC_PEM), clock=FIXED)
    full = "/api/v1" + path
    h = signer.sign("POST", full, body)
    assert h["Authorization"] == "Bearer api-user-token-XYZ"
    assert h["x-timestamp"] == "1700000000"
    payload = full.encode() + b"|1700000000|" + body
    assert fordefi_payload(full, "1700000000", body) == payload
    EC_PUB.verify(base64.b64decode(h["x-signature"]), payload, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        EC_PUB.verify(base64.b64decode(h["x-signature"]), payload + b"x", ec.ECDSA(hashes.SHA256()))
    assert "api-user-token-XYZ" not in repr(signer)


def test_fordefi_get_is_bearer_only_and_bearer_repr() -> None:
    signer = FordefiSigner(Secret("tok"), Secret(EC_PEM), clock=FIXED)
    assert signer.sign("GET", "/api/v1/vaults", b"") == {"Authorization": "Bearer tok"}
    b = BearerSigner(Secret("my-bearer-token"))
    assert b.sign("GET", "/", b"") == {"Authorization": "Bearer my-bearer-token"}
    assert "my-bearer-token" not in repr(b) + str(b)
