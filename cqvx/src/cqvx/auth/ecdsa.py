"""Fordefi request signing: bearer token plus an ECDSA P-256 signature (venues.md §4.1 and §7).

``x-signature = base64(DER(ECDSA-P256-SHA256(key, path + "|" + timestamp + "|" + body)))`` with
``x-timestamp`` the same integer-seconds string.  ECDSA signatures are randomised, so tests verify with
the public key instead of comparing bytes (Fordefi accepts any valid DER signature).
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from cqvx.auth.base import Clock, wall_clock
from cqvx.auth.bearer import BearerSigner
from cqvx.errors import AuthenticationError
from cqvx.secrets import Secret

__all__ = ["FordefiSigner", "P256Signer", "fordefi_payload"]

# Methods that carry a body and so may be "signed requests"; GETs use the bearer token only.
_SIGNED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class P256Signer:
    """ECDSA P-256 over SHA-256, DER, base64 — the primitive, independent of any venue."""

    __slots__ = ("_key",)

    def __init__(self, private_key_pem: Secret) -> None:
        pem = private_key_pem.reveal().strip().replace("\\n", "\n").encode("ascii", "replace")
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise AuthenticationError("signing key is not a readable PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise AuthenticationError("signing key must be an EC P-256 private key")
        self._key = key

    def __repr__(self) -> str:
        return "P256Signer(key=***)"

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign_b64(self, payload: bytes) -> str:
        return base64.b64encode(self._key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode("ascii")


def fordefi_payload(path: str, timestamp: str, body: bytes) -> bytes:
    return path.encode("utf-8") + b"|" + timestamp.encode("ascii") + b"|" + body


class FordefiSigner:
    """Bearer on every request; ``x-timestamp``/``x-signature`` on body-carrying requests."""

    __slots__ = ("_bearer", "_clock", "_ecdsa")

    def __init__(self, access_token: Secret, private_key_pem: Secret, *, clock: Clock = wall_clock) -> None:
        self._bearer = BearerSigner(access_token)
        self._ecdsa = P256Signer(private_key_pem)
        self._clock = clock

    def __repr__(self) -> str:
        return "FordefiSigner(access_token=***, key=***)"

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._ecdsa.public_key()

    def sign(self, method: str, path: str, body: bytes) -> dict[str, str]:
        headers = self._bearer.sign(method, path, body)
        if method.upper() in _SIGNED_METHODS:
            ts = str(self._clock() // 1_000_000_000)
            headers["x-timestamp"] = ts
            headers["x-signature"] = self._ecdsa.sign_b64(fordefi_payload(path, ts, body))
        return headers
