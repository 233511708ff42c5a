"""Signing cost per scheme (median µs per signed request), and our HMAC against ccxt's helper.

Run: .venv/bin/python benchmarks/bench_signing.py
The peer is ``ccxt.base.exchange.Exchange.hmac`` on the same prehash, key and digest; the ratio
printed is ours / ccxt (lower is better).  ccxt's helper only MACs a prehash the caller already
built, while our figure covers the whole request signing (prehash, timestamp, headers), so a ratio
near 1 means the data-driven scheme adds little over a bare HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import statistics
import time
from collections.abc import Callable

from ccxt.base.exchange import Exchange
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cqvx.auth.ecdsa import FordefiSigner
from cqvx.auth.hmac import (
    BITGET,
    COINBASE_LEGACY,
    COINBASE_PRIME,
    FALCONX,
    GATE,
    OKX,
    BinanceSigner,
    HmacSigner,
)
from cqvx.auth.jwt import CdpJwtSigner
from cqvx.secrets import Secret

PATH = "/api/v3/brokerage/orders?limit=100&product_id=BTC-USD"
BODY = b'{"client_order_id":"cq-0001","product_id":"BTC-USD","side":"BUY","order_configuration":{}}'
SECRET = "bench-secret-0123456789abcdef"


def median_us(fn: Callable[[], object], *, batch: int, rounds: int = 15) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - t0) / batch * 1e6)
    return statistics.median(samples)


def main() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    ed_secret = base64.b64encode(bytes(range(64))).decode()
    b64_secret = base64.b64encode(SECRET.encode()).decode()

    hmac_signers = {
        "hmac coinbase-legacy": HmacSigner(COINBASE_LEGACY, "k", Secret(SECRET)),
        "hmac coinbase-prime": HmacSigner(COINBASE_PRIME, "k", Secret(SECRET), passphrase="p"),
        "hmac falconx": HmacSigner(FALCONX, "k", Secret(b64_secret), passphrase="p"),
        "hmac okx": HmacSigner(OKX, "k", Secret(SECRET), passphrase="p"),
        "hmac bitget": HmacSigner(BITGET, "k", Secret(SECRET), passphrase="p"),
        "hmac gate (sha512)": HmacSigner(GATE, "k", Secret(SECRET)),
    }
    binance = BinanceSigner("k", Secret(SECRET))
    jwt_es = CdpJwtSigner("organizations/o/apiKeys/k", Secret(pem))
    jwt_ed = CdpJwtSigner("organizations/o/apiKeys/k", Secret(ed_secret))
    fordefi = FordefiSigner(Secret("token"), Secret(pem))

    print(f"{'scheme':28s} {'median µs':>10s}")
    results: dict[str, float] = {}
    for name, signer in hmac_signers.items():
        results[name] = median_us(lambda s=signer: s.sign("POST", PATH, BODY), batch=2000)  # type: ignore[misc]
    results["hmac binance (query)"] = median_us(lambda: binance.sign_path("POST", PATH, BODY), batch=2000)
    results["jwt ES256 (cdp)"] = median_us(lambda: jwt_es.sign("POST", PATH, BODY), batch=200)
    results["jwt EdDSA (cdp)"] = median_us(lambda: jwt_ed.sign("POST", PATH, BODY), batch=200)
    results["ecdsa P-256 (fordefi)"] = median_us(lambda: fordefi.sign("POST", PATH, BODY), batch=200)
    for name, us in results.items():
        print(f"{name:28s} {us:10.2f}")

    # Same prehash, key and encoding through ccxt's helper (what its coinbase sign() calls).
    ours = hmac_signers["hmac coinbase-legacy"]
    prehash = ours.prehash("POST", PATH, BODY, "1700000000")
    key = SECRET.encode()
    ccxt_us = median_us(lambda: Exchange.hmac(prehash, key, hashlib.sha256, "hex"), batch=2000)
    ours_full = results["hmac coinbase-legacy"]
    ours_mac = median_us(lambda: ours.sign_message(prehash), batch=2000)
    # ccxt's whole coinbase sign() (legacy HMAC path) for the same kind of request, fixed clock.
    import ccxt

    cb = ccxt.coinbase({"apiKey": "k", "secret": SECRET})
    cb.seconds = lambda: 1700000000
    params = {"client_order_id": "cq-0001", "product_id": "BTC-USD", "side": "BUY"}
    ccxt_full = median_us(
        lambda: cb.sign("brokerage/orders", ["v3", "private"], "POST", dict(params)), batch=500
    )
    rows = [
        ("ccxt Exchange.hmac (MAC only)", ccxt_us, None),
        ("cqvx sign_message (MAC only)", ours_mac, ours_mac / ccxt_us),
        ("ccxt coinbase sign() (full)", ccxt_full, None),
        ("cqvx coinbase-legacy sign (full)", ours_full, ours_full / ccxt_full),
    ]
    print()
    for label, us, ratio in rows:
        tail = "" if ratio is None else f"   ratio cqvx/ccxt = {ratio:.2f}"
        print(f"{label:34s} {us:8.2f} µs{tail}")
    assert ours.sign_message(prehash) == Exchange.hmac(prehash, key, hashlib.sha256, "hex")


if __name__ == "__main__":
    main()
