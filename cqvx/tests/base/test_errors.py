from __future__ import annotations

import subprocess
import sys

import pytest

from cqvx import errors
from cqvx.errors import DuplicateOrder, ErrorKind, NotFound, RateLimited, VenueError, redact

ALL = [errors.error_class(k) for k in ErrorKind]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_kind_has_a_class_and_a_stable_name(cls: type[VenueError]) -> None:
    assert errors.error_class(cls.kind) is cls
    assert errors.error_class(cls.kind.value) is cls
    assert cls("x").to_dict()["kind"] == cls.kind.value


def test_the_taxonomy_knows_no_transport() -> None:
    # The gRPC table lives in the connector (opensqt.connector.errors); cqvx.errors imports no grpc.
    code = "import sys, cqvx.errors; assert 'grpc' not in sys.modules, 'cqvx.errors imported grpc'"
    subprocess.run([sys.executable, "-c", code], check=True)


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


def test_duplicate_order_describes_the_existing_order() -> None:
    err = DuplicateOrder(
        "id reused", client_order_id="cqx-grid-7", order_id="v-9", venue="coinbase", code="DUP"
    )
    info = err.to_dict()
    assert (info["client_order_id"], info["order_id"]) == ("cqx-grid-7", "v-9")
    assert "client_order_id" not in DuplicateOrder("x").to_dict()
    assert RateLimited("slow", retry_after=1.5).to_dict()["retry_after"] == 1.5


def test_partial_failure_is_attached_and_defaults_empty() -> None:
    plain = NotFound("gone")
    assert plain.completed == () and plain.failures == ()
    inner = NotFound("unknown order", code="UNKNOWN_CANCEL_ORDER")
    raised = NotFound("1 of 3 failed", retry_safe=True).with_partial(
        completed=["a", "b"], failures=[("c", inner)]
    )
    assert raised.completed == ("a", "b") and raised.failures == (("c", inner),)
    assert raised.retry_safe
