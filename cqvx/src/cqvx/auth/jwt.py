"""Coinbase CDP API keys: a fresh JWT per request (venues.md §1.2 and §7).

Follows the official Advanced Trade SDK (coinbase-advanced-py 1.8.4 ``jwt_generator.py``):
header ``{alg, kid, nonce, typ}``, claims in the order ``sub, iss="cdp", nbf, exp=nbf+120, uri``, with
``uri = "METHOD host/path"`` (no query string); the WebSocket token omits ``uri``.  An EC P-256 PEM key
signs ES256; a base64 64-byte (seed || public key) secret signs EdDSA.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from typing import Any

import jwt as _pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from cqvx.auth.base import Clock, split_path, wall_clock
from cqvx.errors import AuthenticationError
from cqvx.secrets import Secret

__all__ = ["CdpJwtSigner", "load_cdp_private_key"]

CdpKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
VALIDITY_S = 120


def load_cdp_private_key(secret: Secret) -> tuple[CdpKey, str]:
    """Parse a CDP key secret into a private key and its JWS algorithm (``ES256`` or ``EdDSA``)."""
    text = secret.reveal().strip()
    if "-----BEGIN" in text:
        # Keys pasted into env files often carry literal "\n" sequences instead of newlines.
        pem = text.replace("\\n", "\n").encode("ascii", "replace")
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise AuthenticationError("CDP key secret is not a readable PEM private key") from None
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise AuthenticationError(f"CDP EC key must be P-256, not {key.curve.name}")
            return key, "ES256"
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key, "EdDSA"
        raise AuthenticationError("CDP key secret must be an EC P-256 or Ed25519 private key")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationError("CDP key secret is neither PEM nor base64") from None
    if len(raw) not in (32, 64):
        raise AuthenticationError(f"CDP Ed25519 secret must decode to 32 or 64 bytes, got {len(raw)}")
    return ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32]), "EdDSA"


def _random_nonce() -> str:
    return os.urandom(32).hex()


class CdpJwtSigner:
    """``Authorization: Bearer <JWT>`` with a new token for every request (and every WS message)."""

    __slots__ = ("_algorithm", "_clock", "_key", "_key_name", "_nonce", "host")

    def __init__(
        self,
        key_name: str,
        secret: Secret,
        *,
        host: str = "api.coinbase.com",
        clock: Clock = wall_clock,
        nonce: Callable[[], str] = _random_nonce,
    ) -> None:
        self._key_name = key_name
        self._key, self._algorithm = load_cdp_private_key(secret)
        self.host = host
        self._clock = clock
        self._nonce = nonce

    @property
    def algorithm(self) -> str:
        return self._algorithm

    def __repr__(self) -> str:
        return f"CdpJwtSigner(key_name={self._key_name!r}, algorithm={self._algorithm}, secret=***)"

    def _encode(self, uri: str | None) -> str:
        now = self._clock() // 1_000_000_000
        claims: dict[str, Any] = {"sub": self._key_name, "iss": "cdp", "nbf": now, "exp": now + VALIDITY_S}
        if uri is not None:
            claims["uri"] = uri
        headers = {"kid": self._key_name, "nonce": self._nonce()}
        return _pyjwt.encode(claims, self._key, algorithm=self._algorithm, headers=headers)

    def rest_token(self, method: str, path: str) -> str:
        bare, _ = split_path(path)
        return self._encode(f"{method.upper()} {self.host}{bare}")

    def ws_token(self) -> str:
        """For the ``jwt`` field of a WebSocket subscribe/unsubscribe message (no ``uri`` claim)."""
        return self._encode(None)

    def sign(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.rest_token(method, path)}"}
