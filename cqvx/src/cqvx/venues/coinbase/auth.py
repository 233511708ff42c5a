"""Coinbase authentication: a CDP JWT per REST request and per WebSocket subscribe, or legacy HMAC.

The signing itself lives in :mod:`cqvx.auth.jwt` (CDP keys, ES256 or EdDSA) and :mod:`cqvx.auth.hmac`
(``COINBASE_LEGACY`` preset); this module only decides which one a configured key needs and builds the
WebSocket auth fields.  Formats: venues.md §1.2, §1.3 and §7; WebSocket JWTs carry no ``uri`` claim and
must be fresh in every subscribe/unsubscribe message (websocket-overview page,
https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-overview).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from cqvx.auth.base import Clock, Signer, wall_clock
from cqvx.auth.hmac import COINBASE_LEGACY, HmacSigner
from cqvx.auth.jwt import CdpJwtSigner
from cqvx.errors import AuthenticationError
from cqvx.secrets import Secret
from cqvx.venues.coinbase.config import CoinbaseConfig, KeyKind

__all__ = ["CoinbaseAuth", "detect_key_kind"]

_CDP_NAME = re.compile(r"^organizations/[^/]+/apiKeys/[^/]+$")


def detect_key_kind(key_name: str, secret: Secret) -> KeyKind:
    """``"cdp"`` for CDP keys (PEM secret, ``organizations/.../apiKeys/...`` name, or a base64 Ed25519
    key of 32/64 bytes), else ``"legacy"`` (a plain API key with an HMAC secret)."""
    text = secret.reveal().strip()
    if "-----BEGIN" in text or _CDP_NAME.match(key_name):
        return "cdp"
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return "legacy"
    return "cdp" if len(raw) == 64 else "legacy"


class CoinbaseAuth:
    """Signer for REST plus WebSocket subscribe fields, for one configured key."""

    __slots__ = ("_cdp", "_hmac", "_key", "kind", "signer")

    def __init__(self, config: CoinbaseConfig, *, clock: Clock = wall_clock) -> None:
        if not config.has_credentials or config.key_secret is None:
            raise AuthenticationError("Coinbase credentials are not configured", venue="coinbase")
        kind = config.key_kind
        if kind == "auto":
            kind = detect_key_kind(config.key_name, config.key_secret)
        self.kind: KeyKind = kind
        self._key = config.key_name
        self._cdp: CdpJwtSigner | None = None
        self._hmac: HmacSigner | None = None
        if kind == "cdp":
            self._cdp = CdpJwtSigner(config.key_name, config.key_secret, host=config.jwt_host, clock=clock)
            self.signer: Signer = self._cdp
        else:
            self._hmac = HmacSigner(COINBASE_LEGACY, config.key_name, config.key_secret, clock=clock)
            self.signer = self._hmac

    def __repr__(self) -> str:
        return f"CoinbaseAuth(kind={self.kind}, key=***)"

    @property
    def algorithm(self) -> str:
        return self._cdp.algorithm if self._cdp is not None else "HMAC-SHA256"

    def ws_fields(self, channel: str, product_ids: Sequence[str]) -> dict[str, str]:
        """Auth fields for one subscribe/unsubscribe message (new token or signature every call)."""
        if self._cdp is not None:
            return {"jwt": self._cdp.ws_token()}
        assert self._hmac is not None
        # Legacy keys on the Advanced Trade WebSocket: hex HMAC-SHA256 of timestamp + channel +
        # comma-joined product ids, sent with the key and timestamp (the pre-CDP WebSocket auth page,
        # https://docs.cloud.coinbase.com/advanced-trade-api/docs/ws-auth, legacy section).
        ts = self._hmac.timestamp()
        signature = self._hmac.sign_message(ts + channel + ",".join(product_ids))
        return {"api_key": self._key, "timestamp": ts, "signature": signature}
