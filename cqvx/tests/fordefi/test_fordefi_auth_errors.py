"""Signing vectors, idempotence ids, the error table (documented bodies) and the config section."""

from __future__ import annotations

import base64
import uuid

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDict, CIMultiDictProxy

from cqvx.errors import (
    AuthenticationError,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    PermissionDenied,
    RateLimited,
    Timeout,
)
from cqvx.secrets import Secret
from cqvx.testing.fake_fordefi import FakeFordefi
from cqvx.transport.http import HttpResponse
from cqvx.venues.fordefi import FordefiClient
from cqvx.venues.fordefi.auth import NAMESPACE, build_signer, idempotence_id
from cqvx.venues.fordefi.config import FordefiConfig
from cqvx.venues.fordefi.errors import ERROR_TYPES, http_error_mapper
from cqvx.venues.registry import VenueConfigError, registry

NOW_NS = 1_700_000_000 * 1_000_000_000


def test_signature_covers_path_timestamp_body(api_key: ec.EllipticCurvePrivateKey, api_pem: str) -> None:
    cfg = FordefiConfig(access_token=Secret("tok"), signing_key=Secret(api_pem))
    signer = build_signer(cfg, clock=lambda: NOW_NS)
    assert signer is not None
    body = b'{"vault_id":"v","type":"evm_transaction"}'
    headers = signer.sign("POST", "/api/v1/transactions", body)
    assert headers["Authorization"] == "Bearer tok"
    assert headers["x-timestamp"] == "1700000000"  # integer seconds, as in Fordefi's examples
    der = base64.b64decode(headers["x-signature"])
    api_key.public_key().verify(der, b"/api/v1/transactions|1700000000|" + body, ec.ECDSA(hashes.SHA256()))
    assert "x-signature" not in signer.sign("GET", "/api/v1/vaults", b"")  # GETs: bearer only


def test_idempotence_id_is_deterministic() -> None:
    assert idempotence_id("payout-1") == idempotence_id("payout-1") == str(uuid.uuid5(NAMESPACE, "payout-1"))
    assert idempotence_id("payout-1") != idempotence_id("payout-2")
    given = str(uuid.uuid4())
    assert idempotence_id(given) == given  # a UUID from the caller is sent unchanged
    assert idempotence_id(given.upper()) == given  # the same UUID, in Fordefi's canonical form
    assert idempotence_id("{" + given + "}") == str(uuid.uuid5(NAMESPACE, "{" + given + "}"))
    with pytest.raises(InvalidRequest):
        idempotence_id("")


@pytest.mark.parametrize(
    ("headers", "body", "accepted"),
    [
        ("good", b'{"a":1}', True),
        ("tampered", b'{"a":2}', False),
        ("missing", b'{"a":1}', False),
        ("stale", b'{"a":1}', False),
    ],
)
async def test_fake_verifies_signatures_itself(
    api_key: ec.EllipticCurvePrivateKey, api_pem: str, headers: str, body: bytes, accepted: bool
) -> None:
    clock = (lambda: NOW_NS) if headers == "stale" else None
    cfg = FordefiConfig(access_token=Secret("tok"), signing_key=Secret(api_pem))
    signer = build_signer(cfg, clock=clock) if clock else build_signer(cfg)
    assert signer is not None
    sent = signer.sign("POST", "/api/v1/transactions", b'{"a":1}')
    if headers == "missing":
        sent = {"Authorization": sent["Authorization"]}
    async with FakeFordefi(keys={"tok": api_key.public_key()}) as fake, aiohttp.ClientSession() as http:
        resp = await http.post(f"{fake.url}/api/v1/transactions", data=body, headers=sent)
        assert (resp.status != 401) is accepted
        assert fake.signature_failures == (0 if accepted else 1)


def _resp(status: int, body: bytes, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, CIMultiDictProxy(CIMultiDict(headers or {})), body, "/api/v1/transactions")


# Real bodies (venues.md §4.2, onitsoft/fordefi-sdk recorded cassettes) and the OpenAPI error shapes.
DOCUMENTED = [
    (
        422,
        b'{"title":"Cannot process data due to validation error","detail":[{"loc":["body","address_type"],'
        b'"msg":"Input should be \'legacy\', \'segwit\' or \'taproot\'","type":"enum"}],"request_id":"8f3f"}',
        InvalidRequest,
        "body.address_type",
    ),
    (
        400,
        b'{"title":"Invalid vault type","detail":"Invalid vault type for vault creation.",'
        b'"request_id":"01176fe8","error_type":"invalid_vault_type"}',
        InvalidRequest,
        "invalid_vault_type",
    ),
    (
        404,
        b'{"title":"Not found","detail":"Path /api/v1/vaults/x/addresses/y not found","request_id":"8f83",'
        b'"resource":"path"}',
        NotFound,
        "path",
    ),
    (
        400,
        b'{"title":"t","detail":"d","error_type":"insufficient_funds"}',
        InsufficientFunds,
        "insufficient_funds",
    ),
    (
        400,
        b'{"title":"t","detail":"d","error_type":"blocked_by_policy"}',
        PermissionDenied,
        "blocked_by_policy",
    ),
    (
        400,
        b'{"title":"t","detail":"d","error_type":"invalid_transaction_state"}',
        OrderRejected,
        "invalid_transaction_state",
    ),
    (401, b'{"title":"Unauthorized","detail":"bad token"}', AuthenticationError, "Unauthorized"),
    (403, b'{"title":"Forbidden","detail":"no"}', PermissionDenied, "Forbidden"),
    (408, b'{"title":"Request Timeout","detail":"slow"}', Timeout, "request_timeout"),
    (429, b'{"title":"Rate limit","detail":"slow down"}', RateLimited, "Rate limit"),
]


@pytest.mark.parametrize(("status", "body", "cls", "mention"), DOCUMENTED)
def test_documented_error_bodies(status: int, body: bytes, cls: type, mention: str) -> None:
    err = http_error_mapper(_resp(status, body, {"Retry-After": "2"}))
    assert type(err) is cls
    assert err is not None and (mention in err.message or err.code == mention)
    assert err.venue == "fordefi" and err.http_status == status


def test_error_table_is_explicit() -> None:
    assert all(row.retry_safe is False and row.documented for row in ERROR_TYPES.values())
    assert http_error_mapper(_resp(500, b'{"title":"x","detail":"y"}')) is None  # transport decides
    assert http_error_mapper(_resp(200, b"{}")) is None
    garbage = http_error_mapper(_resp(400, b"<html>"))
    assert isinstance(garbage, InvalidRequest)


def test_section_builds_a_client(api_pem: str) -> None:
    env = {"FD_TOKEN": "tok", "FD_KEY": api_pem}
    raw = {
        "credentials": {"access_token": {"env": "FD_TOKEN"}, "signing_key": {"env": "FD_KEY"}},
        "poll": {"initial_s": 1, "max_s": 10},
    }
    client = registry.build("fordefi", raw, path="venues.fd", environ=env)
    assert isinstance(client, FordefiClient)
    assert client.config.poll_schedule.maximum == 10
    assert "tok" not in repr(client)
    with pytest.raises(VenueConfigError, match=r"venues\.fd\.credentials\.signing_key"):
        registry.build("fordefi", {"credentials": {"access_token": "t"}}, path="venues.fd", environ=env)
    with pytest.raises(VenueConfigError, match="FD_MISSING"):
        registry.build(
            "fordefi",
            {"credentials": {"access_token": {"env": "FD_MISSING"}, "signing_key": "x"}},
            path="venues.fd",
            environ=env,
        )
