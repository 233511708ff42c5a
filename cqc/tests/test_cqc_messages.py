"""Every cqc message type, fully populated, round-trips through binary and JSON; the shared
Python <-> Node test vectors (cqc/tests/vectors/) are current and decode to the same values.

Regenerate the vectors after a contract change (`make generate` does both steps):
    CQC_UPDATE_VECTORS=1 .venv/bin/python -m pytest cqc/tests/test_cqc_messages.py
    CQC_UPDATE_VECTORS=1 make ts-test
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import cqc
from cqc.venues.v1 import order_pb2

VECTORS = Path(__file__).resolve().parent / "vectors"
PYTHON_VECTORS = VECTORS / "python_encoded.json"
NODE_VECTORS = VECTORS / "node_encoded.json"
UPDATE = os.environ.get("CQC_UPDATE_VECTORS") == "1"

# Message types with a JSON mapping of their own; populated with valid values, not generically.
_TIMESTAMP = "google.protobuf.Timestamp"
_FIELD_MASK = "google.protobuf.FieldMask"
_MAX_DEPTH = 8

_T = FieldDescriptor
# The stubs type Descriptor.fields as a union of the pure-Python and upb descriptor classes.
_Field = Any


def _walk(desc: Descriptor) -> Iterator[Descriptor]:
    if desc.GetOptions().map_entry:
        return
    yield desc
    for nested in desc.nested_types:
        yield from _walk(nested)


def all_message_types() -> list[Descriptor]:
    """Every message type defined in a cqc module (nested ones too, map entries excluded)."""
    found: dict[str, Descriptor] = {}
    for info in pkgutil.walk_packages(cqc.__path__, "cqc."):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(info.name)
        for top in module.DESCRIPTOR.message_types_by_name.values():
            for desc in _walk(top):
                found[desc.full_name] = desc
    return [found[name] for name in sorted(found)]


def variants(desc: Descriptor) -> int:
    """Instances needed so that every member of every (real) oneof is populated once."""
    sizes = [len(o.fields) for o in desc.oneofs if not _synthetic(o.fields[0])]
    return max([1, *sizes])


def _synthetic(field: _Field) -> bool:
    # proto3 `optional` fields sit in a one-member synthetic oneof; they are ordinary fields here.
    return (
        field.containing_oneof is not None and len(field.containing_oneof.fields) == 1 and field.has_presence
    )


def _scalar(field: _Field, variant: int, salt: int = 0) -> Any:
    n = field.number + salt
    t = field.type
    if t == _T.TYPE_STRING:
        # Non-ASCII on purpose: both sides must agree on UTF-8.
        return f"{field.name}-{variant}-{salt}-€"
    if t == _T.TYPE_BOOL:
        return True
    if t in (_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32):
        return -1000 - n  # negative: 10-byte varints on the wire
    if t in (_T.TYPE_UINT32, _T.TYPE_FIXED32):
        return 4_000_000_000 + n  # above int32
    if t in (_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64):
        return -(2**53) - n  # beyond a JS number's exact range
    if t in (_T.TYPE_UINT64, _T.TYPE_FIXED64):
        return 2**63 + n
    if t == _T.TYPE_DOUBLE:
        return n + 0.5
    if t == _T.TYPE_FLOAT:
        return 0.25
    if t == _T.TYPE_BYTES:
        return bytes([0, 255, n % 256])
    if t == _T.TYPE_ENUM:
        values = [v.number for v in field.enum_type.values if v.number != 0]
        return values[(variant + salt) % len(values)]
    raise AssertionError(f"unhandled field type {t} of {field.full_name}")


def _fill(msg: Message, variant: int, depth: int = 0) -> None:
    desc = msg.DESCRIPTOR
    if desc.full_name == _TIMESTAMP:
        msg.seconds = 1_700_000_000 + variant  # type: ignore[attr-defined]
        msg.nanos = 123_000_000  # type: ignore[attr-defined]
        return
    if desc.full_name == _FIELD_MASK:
        msg.paths.extend(["asset_id", "display_name"])  # type: ignore[attr-defined]
        return
    assert not desc.full_name.startswith("google.protobuf."), f"no generic filler for {desc.full_name}"
    if depth > _MAX_DEPTH:
        return
    for field in desc.fields:
        oneof = field.containing_oneof
        if (
            oneof is not None
            and not _synthetic(field)
            and oneof.fields[variant % len(oneof.fields)] is not field
        ):
            continue  # another member of this oneof is populated in this variant
        value = getattr(msg, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f, val_f = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            for salt in (1, 2):
                key = _scalar(key_f, variant, salt)
                if val_f.message_type is not None:
                    _fill(value[key], variant, depth + 1)
                else:
                    value[key] = _scalar(val_f, variant, salt)
        elif field.is_repeated:
            for salt in (1, 2):
                if field.message_type is not None:
                    _fill(value.add(), variant + salt, depth + 1)
                else:
                    value.append(_scalar(field, variant, salt))
        elif field.message_type is not None:
            _fill(value, variant, depth + 1)
        else:
            setattr(msg, field.name, _scalar(field, variant))


def populated(desc: Descriptor, variant: int) -> Message:
    msg = GetMessageClass(desc)()
    _fill(msg, variant)
    return msg


def _expected_set_fields(desc: Descriptor) -> int:
    real_oneofs = {o.full_name for o in desc.oneofs if not _synthetic(o.fields[0])}
    plain = [
        f
        for f in desc.fields
        if f.containing_oneof is None or f.containing_oneof.full_name not in real_oneofs
    ]
    return len(plain) + len(real_oneofs)


CASES = [(d, v) for d in all_message_types() for v in range(variants(d))]


def test_every_domain_is_covered() -> None:
    packages = {d.file.package for d, _ in CASES}
    assert packages == {
        f"cqc.{d}.v1" for d in ("assets", "markets", "venues", "portfolio", "events", "services")
    }
    # Sanity: the walk finds the types other code relies on, nested ones included.
    names = {d.full_name for d, _ in CASES}
    assert {
        "cqc.venues.v1.Order",
        "cqc.events.v1.EventEnvelope",
        "cqc.services.v1.PlaceOrderRequest",
    } <= names


@pytest.mark.parametrize(("desc", "variant"), CASES, ids=[f"{d.full_name}#{v}" for d, v in CASES])
def test_round_trip(desc: Descriptor, variant: int) -> None:
    msg = populated(desc, variant)
    # Populated: every field holds a non-default value (one member per oneof).
    assert len(msg.ListFields()) == _expected_set_fields(desc)
    cls = type(msg)
    wire = msg.SerializeToString()
    assert cls.FromString(wire) == msg
    text = json_format.MessageToJson(msg)
    assert json_format.Parse(text, cls()) == msg
    # The JSON names are the lowerCamelCase proto3 names, as every other language emits them.
    assert set(json.loads(text)) == {f.json_name for f, _ in msg.ListFields()}


def test_money_is_never_floating_point() -> None:
    """Decimal policy: a double/float is allowed only where a value is not money (durations, latencies)."""
    allowed = {"cqc.venues.v1.VenueError.retry_after_seconds", "cqc.venues.v1.VenueHealth.latency_ms"}
    floats = {
        f.full_name
        for d, _ in CASES
        for f in d.fields
        if f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
    }
    assert floats <= allowed, f"floating-point fields outside the allowed list: {sorted(floats - allowed)}"


# ---------------------------------------------------------------------------------------------------
# Shared test vectors


def python_vectors() -> list[dict[str, Any]]:
    out = []
    for desc, variant in CASES:
        msg = populated(desc, variant)
        out.append(
            {
                "type": desc.full_name,
                "variant": variant,
                "binary": base64.b64encode(msg.SerializeToString(deterministic=True)).decode(),
                "json": json_format.MessageToDict(msg),
            }
        )
    return out


def _dump(path: Path, vectors: list[dict[str, Any]], producer: str) -> None:
    doc = {"producer": producer, "vectors": vectors}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def _load(path: Path) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["vectors"]
    return vectors


def test_python_vectors_are_current() -> None:
    fresh = python_vectors()
    if UPDATE:
        VECTORS.mkdir(exist_ok=True)
        _dump(PYTHON_VECTORS, fresh, "cqc/tests/test_cqc_messages.py")
    committed = _load(PYTHON_VECTORS)
    assert committed == fresh, "stale vectors: run CQC_UPDATE_VECTORS=1 on this test, then on make ts-test"


def test_python_vectors_decode() -> None:
    """The committed bytes decode to the committed JSON (independent of how the file was produced)."""
    for vec in _load(PYTHON_VECTORS):
        cls = GetMessageClass(_descriptor(vec["type"]))
        msg = cls.FromString(base64.b64decode(vec["binary"]))
        assert json_format.MessageToDict(msg) == vec["json"], vec["type"]


def _descriptor(full_name: str) -> Descriptor:
    by_name = {d.full_name: d for d, _ in CASES}
    return by_name[full_name]


def test_node_vectors_decode_to_the_python_values() -> None:
    """Bytes encoded by the generated TypeScript code decode in Python to exactly the original message."""
    node = _load(NODE_VECTORS)
    generic = [v for v in node if "variant" in v]
    assert {(v["type"], v["variant"]) for v in generic} == {(d.full_name, i) for d, i in CASES}, (
        "node vectors do not cover every message type: run CQC_UPDATE_VECTORS=1 make ts-test"
    )
    for vec in generic:
        desc = _descriptor(vec["type"])
        decoded = GetMessageClass(desc).FromString(base64.b64decode(vec["binary"]))
        assert decoded == populated(desc, vec["variant"]), vec["type"]
        assert json_format.MessageToDict(decoded) == vec["json"], vec["type"]


def test_node_built_order_decodes() -> None:
    """A message built field by field in TypeScript (not from our JSON) carries the same values here."""
    node = {v["name"]: v for v in _load(NODE_VECTORS) if "name" in v}
    order = order_pb2.Order.FromString(base64.b64decode(node["order"]["binary"]))
    assert order.client_order_id == "osq-grid-btcusd-7-b-3"
    assert order.symbol == "BTC-USD"
    assert order.side == order_pb2.ORDER_SIDE_BUY
    assert order.order_type == order_pb2.ORDER_TYPE_LIMIT
    assert order.time_in_force == order_pb2.TIME_IN_FORCE_GTC
    assert (order.price, order.quantity) == ("64250.12", "0.00012300")
    assert order.post_only is True
    assert order.status == order_pb2.ORDER_STATUS_PARTIALLY_FILLED
    assert order.created_at.seconds == 1_718_000_000 and order.created_at.nanos == 5_000_000
    assert dict(order.venue_extras) == {"stp": "cancel_newest", "näme": "ü"}

    ref = order_pb2.OrderRef.FromString(base64.b64decode(node["order_ref"]["binary"]))
    assert ref.WhichOneof("id") == "client_order_id"
    assert ref.client_order_id == "osq-grid-btcusd-7-b-3"


# ---------------------------------------------------------------------------------------------------
# Service shape rules (cqc/README.md, "Conventions")


def _services() -> list[Any]:
    from cqc.services.v1 import (
        asset_registry_pb2,
        market_data_pb2,
        portfolio_pb2,
        risk_engine_pb2,
        venue_gateway_pb2,
    )

    modules = (asset_registry_pb2, market_data_pb2, portfolio_pb2, risk_engine_pb2, venue_gateway_pb2)
    return [s for m in modules for s in m.DESCRIPTOR.services_by_name.values()]


def test_all_five_services_exist() -> None:
    names = {s.name for s in _services()}
    assert names == {"AssetRegistry", "MarketData", "Portfolio", "VenueGateway", "RiskEngine"}


def test_streamed_messages_carry_a_sequence_and_venue() -> None:
    for service in _services():
        for method in service.methods:
            if not method.server_streaming:
                continue
            fields = method.output_type.fields_by_name
            assert fields["sequence"].type == FieldDescriptor.TYPE_UINT64, method.full_name
            if service.name in {"VenueGateway", "MarketData"}:
                assert fields["venue"].type == FieldDescriptor.TYPE_STRING, method.full_name


def test_list_rpcs_page() -> None:
    for service in _services():
        if service.name == "VenueGateway":
            continue  # venue lists are bounded by the venue itself
        for method in service.methods:
            if method.name.startswith("List") and method.name != "ListRiskLimits":
                assert {"page_size", "page_token"} <= set(method.input_type.fields_by_name), method.full_name
                assert "next_page_token" in method.output_type.fields_by_name, method.full_name
