"""HMAC request signing, described as data: one :class:`HmacScheme` per venue formula.

Every formula in use is "concatenate some parts of the request, MAC it with a key, encode the MAC",
so a scheme is the list of parts, the separator, the key decoding, the digest, the output encoding,
the timestamp format and the header names.  Presets follow the venues' published formulas
(reference: /work/shared/reference/venues.md §1.3, §2.2, §3.1, §5 and §7; the Binance/Bybit/OKX/
Bitget/Gate forms reproduce the ``sign()`` methods of ccxt 4.5.90 byte for byte, which the tests check).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac as _hmac
from dataclasses import dataclass, field
from typing import Literal

from cqvx.auth.base import Clock, split_path, wall_clock
from cqvx.errors import AuthenticationError
from cqvx.secrets import Secret

__all__ = [
    "BITGET",
    "BYBIT",
    "COINBASE_LEGACY",
    "COINBASE_PRIME",
    "FALCONX",
    "GATE",
    "OKX",
    "BinanceSigner",
    "HmacScheme",
    "HmacSigner",
    "Part",
    "format_timestamp",
    "prime_ws_signature",
]

# The pieces a prehash can be built from.  ``path`` excludes the query string, ``path_query``
# includes it ("?" only when there is a query), ``query`` is the raw query without "?".
Part = Literal[
    "timestamp", "method", "path", "query", "path_query", "body", "body_sha512_hex", "api_key", "recv_window"
]
KeyEncoding = Literal["raw", "base64", "hex"]
Digest = Literal["sha256", "sha512"]
OutputEncoding = Literal["hex", "base64"]
TimestampFormat = Literal["seconds", "millis", "iso", "seconds_frac"]

_DIGESTS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


@dataclass(frozen=True, slots=True)
class HmacScheme:
    name: str
    prehash: tuple[Part, ...]
    signature_header: str
    key_header: str | None = None
    timestamp_header: str | None = None
    passphrase_header: str | None = None
    recv_window_header: str | None = None
    separator: str = ""
    key_encoding: KeyEncoding = "raw"
    digest: Digest = "sha256"
    output: OutputEncoding = "hex"
    timestamp: TimestampFormat = "seconds"
    extra_headers: tuple[tuple[str, str], ...] = field(default=())


def format_timestamp(ns: int, fmt: TimestampFormat) -> str:
    if fmt == "seconds":
        return str(ns // 1_000_000_000)
    if fmt == "millis":
        return str(ns // 1_000_000)
    if fmt == "seconds_frac":
        us = ns // 1_000
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"
    ms = ns // 1_000_000
    t = _dt.datetime.fromtimestamp(ms // 1000, tz=_dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _decode_key(secret: Secret, encoding: KeyEncoding) -> bytes:
    raw = secret.reveal()
    try:
        if encoding == "base64":
            return base64.b64decode(raw, validate=True)
        if encoding == "hex":
            return bytes.fromhex(raw)
    except (binascii.Error, ValueError):
        # Never echo the key: only say which decoding failed.
        raise AuthenticationError(f"API secret is not valid {encoding}") from None
    return raw.encode("utf-8")


def _as_secret(value: str | Secret) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


class HmacSigner:
    """Signs requests with one :class:`HmacScheme`; fresh timestamp on every call."""

    __slots__ = ("_api_key", "_clock", "_key", "_passphrase", "_recv_window", "scheme")

    def __init__(
        self,
        scheme: HmacScheme,
        api_key: str | Secret,
        secret: str | Secret,
        *,
        passphrase: str | Secret | None = None,
        recv_window_ms: int | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        if scheme.passphrase_header and passphrase is None:
            raise AuthenticationError(f"{scheme.name} needs a passphrase")
        if ("recv_window" in scheme.prehash or scheme.recv_window_header) and recv_window_ms is None:
            raise AuthenticationError(f"{scheme.name} needs recv_window_ms")
        self.scheme = scheme
        self._api_key = _as_secret(api_key)
        self._key = _decode_key(_as_secret(secret), scheme.key_encoding)
        self._passphrase = _as_secret(passphrase) if passphrase is not None else None
        self._recv_window = recv_window_ms
        self._clock = clock

    def __repr__(self) -> str:
        return f"HmacSigner({self.scheme.name}, api_key=***, secret=***)"

    def timestamp(self) -> str:
        return format_timestamp(self._clock(), self.scheme.timestamp)

    def prehash(self, method: str, path: str, body: bytes, timestamp: str) -> bytes:
        bare, query = split_path(path)
        out: list[bytes] = []
        for part in self.scheme.prehash:
            if part == "timestamp":
                out.append(timestamp.encode())
            elif part == "method":
                out.append(method.upper().encode())
            elif part == "path":
                out.append(bare.encode())
            elif part == "query":
                out.append(query.encode())
            elif part == "path_query":
                out.append(path.encode() if query else bare.encode())
            elif part == "body":
                out.append(body)
            elif part == "body_sha512_hex":
                out.append(hashlib.sha512(body).hexdigest().encode())
            elif part == "api_key":
                out.append(self._api_key.reveal_bytes())
            elif part == "recv_window":
                out.append(str(self._recv_window).encode())
        return self.scheme.separator.encode().join(out)

    def sign_message(self, message: bytes | str) -> str:
        """MAC an arbitrary prehash with this key (WebSocket logins build their own message)."""
        data = message.encode("utf-8") if isinstance(message, str) else message
        mac = _hmac.new(self._key, data, _DIGESTS[self.scheme.digest]).digest()
        return mac.hex() if self.scheme.output == "hex" else base64.b64encode(mac).decode("ascii")

    def signature(self, method: str, path: str, body: bytes, timestamp: str) -> str:
        return self.sign_message(self.prehash(method, path, body, timestamp))

    def sign(self, method: str, path: str, body: bytes) -> dict[str, str]:
        s = self.scheme
        ts = self.timestamp()
        headers: dict[str, str] = {s.signature_header: self.signature(method, path, body, ts)}
        if s.key_header:
            headers[s.key_header] = self._api_key.reveal()
        if s.timestamp_header:
            headers[s.timestamp_header] = ts
        if s.passphrase_header and self._passphrase is not None:
            headers[s.passphrase_header] = self._passphrase.reveal()
        if s.recv_window_header:
            headers[s.recv_window_header] = str(self._recv_window)
        headers.update(s.extra_headers)
        return headers


# --- presets -------------------------------------------------------------------------------------

# Coinbase App legacy HMAC keys (venues.md §1.3): hex(HMAC(raw secret, ts+METHOD+path+body)), no query.
COINBASE_LEGACY = HmacScheme(
    name="coinbase-legacy",
    prehash=("timestamp", "method", "path", "body"),
    signature_header="CB-ACCESS-SIGN",
    key_header="CB-ACCESS-KEY",
    timestamp_header="CB-ACCESS-TIMESTAMP",
    output="hex",
)
# Coinbase Prime REST (§2.2): the signing key is used as raw text, NOT base64-decoded; path has /v1.
COINBASE_PRIME = HmacScheme(
    name="coinbase-prime",
    prehash=("timestamp", "method", "path", "body"),
    signature_header="X-CB-ACCESS-SIGNATURE",
    key_header="X-CB-ACCESS-KEY",
    timestamp_header="X-CB-ACCESS-TIMESTAMP",
    passphrase_header="X-CB-ACCESS-PASSPHRASE",
    output="base64",
)
# FalconX (§3.1): base64-decoded secret, the query string IS signed, fractional-seconds timestamp.
FALCONX = HmacScheme(
    name="falconx",
    prehash=("timestamp", "method", "path_query", "body"),
    signature_header="FX-ACCESS-SIGN",
    key_header="FX-ACCESS-KEY",
    timestamp_header="FX-ACCESS-TIMESTAMP",
    passphrase_header="FX-ACCESS-PASSPHRASE",
    key_encoding="base64",
    output="base64",
    timestamp="seconds_frac",
)
# Bybit v5 (§5): ts + apiKey + recvWindow + (query for GET | body for POST), hex.
BYBIT = HmacScheme(
    name="bybit",
    prehash=("timestamp", "api_key", "recv_window", "query", "body"),
    signature_header="X-BAPI-SIGN",
    key_header="X-BAPI-API-KEY",
    timestamp_header="X-BAPI-TIMESTAMP",
    recv_window_header="X-BAPI-RECV-WINDOW",
    timestamp="millis",
)
# OKX v5 (§5): ISO-8601 ms timestamp, query signed, base64.
OKX = HmacScheme(
    name="okx",
    prehash=("timestamp", "method", "path_query", "body"),
    signature_header="OK-ACCESS-SIGN",
    key_header="OK-ACCESS-KEY",
    timestamp_header="OK-ACCESS-TIMESTAMP",
    passphrase_header="OK-ACCESS-PASSPHRASE",
    output="base64",
    timestamp="iso",
)
# Bitget v2 (§5): ms timestamp, query signed exactly as sent, base64.
BITGET = HmacScheme(
    name="bitget",
    prehash=("timestamp", "method", "path_query", "body"),
    signature_header="ACCESS-SIGN",
    key_header="ACCESS-KEY",
    timestamp_header="ACCESS-TIMESTAMP",
    passphrase_header="ACCESS-PASSPHRASE",
    output="base64",
    timestamp="millis",
)
# Gate v4 (§5): newline-joined METHOD, path, query, hex SHA-512 of the body, seconds; HMAC-SHA512 hex.
GATE = HmacScheme(
    name="gate",
    prehash=("method", "path", "query", "body_sha512_hex", "timestamp"),
    separator="\n",
    signature_header="SIGN",
    key_header="KEY",
    timestamp_header="Timestamp",
    digest="sha512",
)


class BinanceSigner:
    """Binance SIGNED endpoints: ``timestamp`` (and ``recvWindow``) join the query, then
    ``signature=hex(HMAC-SHA256(secret, query + body))`` is appended as the last parameter (§5)."""

    __slots__ = ("_api_key", "_clock", "_key", "_recv_window")

    def __init__(
        self,
        api_key: str | Secret,
        secret: str | Secret,
        *,
        recv_window_ms: int | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        self._api_key = _as_secret(api_key)
        self._key = _as_secret(secret).reveal_bytes()
        self._recv_window = recv_window_ms
        self._clock = clock

    def __repr__(self) -> str:
        return "BinanceSigner(api_key=***, secret=***)"

    def sign(self, method: str, path: str, body: bytes) -> dict[str, str]:
        """API-key-only endpoints (listen key, market data with key): the key header, no signature."""
        return {"X-MBX-APIKEY": self._api_key.reveal()}

    def sign_path(self, method: str, path: str, body: bytes) -> tuple[str, dict[str, str]]:
        bare, query = split_path(path)
        extra = f"timestamp={self._clock() // 1_000_000}"
        if self._recv_window is not None:
            extra += f"&recvWindow={self._recv_window}"
        query = f"{query}&{extra}" if query else extra
        mac = _hmac.new(self._key, query.encode() + body, hashlib.sha256).hexdigest()
        return f"{bare}?{query}&signature={mac}", {"X-MBX-APIKEY": self._api_key.reveal()}


def prime_ws_signature(
    signing_key: Secret,
    *,
    channel: str,
    access_key: str,
    svc_account_id: str,
    timestamp: str,
    portfolio_id: str = "",
    product_ids: tuple[str, ...] = (),
) -> str:
    """Coinbase Prime WebSocket subscribe signature (§7): the signed timestamp must equal the one sent."""
    msg = channel + access_key + svc_account_id + timestamp + portfolio_id + "".join(product_ids)
    mac = _hmac.new(signing_key.reveal_bytes(), msg.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")
