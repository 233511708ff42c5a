from __future__ import annotations

import json

import grpc
import pytest

from cqvx import errors
from cqvx.errors import (
    GRPC_METADATA_KEY,
    DuplicateOrder,
    ErrorKind,
    NotFound,
    RateLimited,
    Timeout,
    Unavailable,
    VenueError,
    from_grpc,
    redact,
)

ALL = [errors.error_class(k) for k in ErrorKind]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_kind_round_trips_through_grpc(cls: type[VenueError]) -> None:
    err = cls("boom", venue="sim", code="X1", http_status=400)
    status = errors.GRPC_STATUS[err.kind]
    back = from_grpc(status, "boom", {GRPC_METADATA_KEY: json.dumps(err.to_dict())})
    assert type(back) is cls
    assert (back.venue, back.code, back.retry_safe) == ("sim", "X1", err.retry_safe)


def test_rate_limited_keeps_retry_after() -> None:
    err = RateLimited("slow down", retry_after=1.5)
    back = from_grpc(grpc.StatusCode.RESOURCE_EXHAUSTED, "", {GRPC_METADATA_KEY: json.dumps(err.to_dict())})
    assert isinstance(back, RateLimited) and back.retry_after == 1.5 and back.retry_safe


def test_without_metadata_internal_errors_are_ambiguous_not_retry_safe() -> None:
    back = from_grpc(grpc.StatusCode.INTERNAL, "oops")
    assert isinstance(back, Timeout) and not back.retry_safe


def test_redact_hides_secrets_in_nested_payloads_and_text() -> None:
    raw = {"order": {"id": "1"}, "api_key": "AKIA", "headers": {"Authorization": "Bearer abc.def"}}
    out = redact(raw)
    assert out["api_key"] == "***" and out["order"] == {"id": "1"}
    assert out["headers"] == {"Authorization": "***"}
    text = redact('{"secret": "s3", "ok": 1}')
    assert "s3" not in text
    assert "abc" not in redact("failed with Bearer abc.def.ghi")
    err = VenueError("bad", raw={"passphrase": "pp", "code": 7})
    assert "pp" not in repr(err.raw) and "pp" not in str(err)


def test_truncated_json_payload_still_loses_its_secrets() -> None:
    # Error payloads are cut to 2 KiB before they are attached; the cut JSON no longer parses.
    body = (b'{"message":"bad","api_key":"AKIA-SECRET","pad":"' + b"x" * 3000 + b'"}')[:2048]
    err = VenueError("rejected", raw=body)
    assert "AKIA-SECRET" not in str(err.raw) and '"api_key":"***"' in str(err.raw)
    cut_inside = redact(b'{"ok":1,"private_key":"-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEE')
    assert "MHcCAQEE" not in cut_inside and "BEGIN" not in cut_inside


def test_duplicate_order_keeps_its_client_order_id_through_grpc() -> None:
    err = DuplicateOrder("id reused", client_order_id="cqx-grid-7", venue="coinbase", code="DUP")
    info = err.to_dict()
    assert info["client_order_id"] == "cqx-grid-7"
    back = from_grpc(grpc.StatusCode.ALREADY_EXISTS, "id reused", {GRPC_METADATA_KEY: json.dumps(info)})
    assert isinstance(back, DuplicateOrder)
    assert (back.client_order_id, back.venue, back.code) == ("cqx-grid-7", "coinbase", "DUP")
    # Without the trailer the class survives, the id is simply unknown.
    bare = from_grpc(grpc.StatusCode.ALREADY_EXISTS, "id reused")
    assert isinstance(bare, DuplicateOrder) and bare.client_order_id == ""
    assert "client_order_id" not in DuplicateOrder("x").to_dict()


def test_partial_failure_is_attached_and_defaults_empty() -> None:
    plain = NotFound("gone")
    assert plain.completed == () and plain.failures == ()
    inner = NotFound("unknown order", code="UNKNOWN_CANCEL_ORDER")
    raised = NotFound("1 of 3 failed", retry_safe=True).with_partial(
        completed=["a", "b"], failures=[("c", inner)]
    )
    assert raised.completed == ("a", "b") and raised.failures == (("c", inner),)
    assert raised.retry_safe


def test_attempts_cross_grpc_so_a_remote_caller_does_not_retry_again() -> None:
    err = RateLimited("slow down", retry_after=0.5)
    err.attempts = 4
    back = from_grpc(grpc.StatusCode.RESOURCE_EXHAUSTED, "", {GRPC_METADATA_KEY: json.dumps(err.to_dict())})
    assert back.attempts == 4 and back.retried
    fresh = from_grpc(
        grpc.StatusCode.UNAVAILABLE, "", {GRPC_METADATA_KEY: json.dumps(Unavailable("x").to_dict())}
    )
    assert fresh.attempts == 1 and not fresh.retried
