"""Fordefi authentication and idempotence ids.

Signing is :class:`cqvx.auth.ecdsa.FordefiSigner` (bearer token on every request; ``x-timestamp`` and
``x-signature`` = base64 DER ECDSA-P256-SHA256 over ``path|timestamp|body`` on body-carrying ones,
venues.md §4.1 and §7); this module only builds it from the config.

Idempotence (https://docs.fordefi.com/reference/idempotent-requests): Create Transaction takes an
``X-Idempotence-Id`` header, which must be a UUID.  Fordefi stores the status code and body of the
first request with that id (success or not) and answers every later request with the same id with
that result (200 and the created transaction).  So a create whose reply was lost is resolved by
re-sending it with the SAME id; there is no list filter on the idempotence id to look it up by.  A
refusal is stored as well, so an intent refused once (400) needs a new key to be tried again.
:func:`idempotence_id` derives the UUID from the caller's intent: a caller key that already is a UUID
is sent in its canonical (lower-case) form, anything else becomes ``uuid5(NAMESPACE, key)``, so a
retry after a crash, in this or another process, sends the same id.
"""

from __future__ import annotations

import uuid

from cqvx.auth.base import Clock, wall_clock
from cqvx.auth.ecdsa import FordefiSigner
from cqvx.errors import InvalidRequest
from cqvx.venues.fordefi.config import FordefiConfig

__all__ = ["NAMESPACE", "build_signer", "idempotence_id"]

# Fixed forever: changing it would change every derived id (and so re-create transactions on retry).
# = uuid5(NAMESPACE_URL, "https://api.fordefi.com/x-idempotence-id/cqvx")
NAMESPACE = uuid.UUID("4ff99001-aeeb-5343-990e-a8338fc6e6e1")


def idempotence_id(key: str) -> str:
    """The ``x-idempotence-id`` for the caller's idempotency ``key`` (deterministic)."""
    if not key:
        raise InvalidRequest("idempotence_id: required (it makes the create retryable)", venue="fordefi")
    try:
        parsed = uuid.UUID(key)
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, key))
    if str(parsed) == key.lower():
        return str(parsed)
    return str(uuid.uuid5(NAMESPACE, key))


def build_signer(config: FordefiConfig, *, clock: Clock = wall_clock) -> FordefiSigner | None:
    if config.access_token is None or config.signing_key is None:
        return None
    return FordefiSigner(config.access_token, config.signing_key, clock=clock)
