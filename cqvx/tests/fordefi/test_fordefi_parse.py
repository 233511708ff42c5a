"""Parsing recorded Fordefi payloads (fixtures/SOURCES.md); garbage raises ParseError and nothing else."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqc.venues.v1 import custody_pb2 as c
from cqvx.errors import ParseError
from cqvx.venues.fordefi import parse as p


def test_outgoing_evm_transfer(load: Callable[[str], bytes]) -> None:
    tx = p.parse_transaction(load("transaction_evm_transfer_eth.json"))
    assert tx.transaction_id == "b0c5bcc2-5a26-41fc-bff7-ac37bc7caada"
    assert tx.vault_id == "bdb889c8-7f39-4b1c-8973-bd0532143796"
    assert tx.state == c.CUSTODY_TRANSACTION_STATE_APPROVED
    assert (tx.asset, tx.amount, tx.chain) == ("ETH", "0.000000000000000001", "evm_ethereum_mainnet")
    assert tx.destination == "0xB5196134D57Da6996E0473370667f58717D0bF82"
    assert tx.idempotence_id == "bc0ba65a-3c99-4f0c-918b-febf76b0e287"


def test_incoming_transaction_has_no_managed_data(load: Callable[[str], bytes]) -> None:
    # §11: incoming transactions carry no managed_transaction_data; the vault is the recipient.
    tx = p.parse_transaction(load("transaction_get.json"))
    assert tx.state == c.CUSTODY_TRANSACTION_STATE_COMPLETED
    assert tx.vault_id == "f5f13461-803f-455b-86ff-45e1cf8bc884"
    assert (tx.asset, tx.amount) == ("APT", "0.003")
    assert tx.idempotence_id == "" and tx.approval_state == c.APPROVAL_STATE_UNSPECIFIED


def test_erc20_recipient_comes_from_type_details(load: Callable[[str], bytes]) -> None:
    body = json.loads(load("transaction_evm_transfer_eth.json"))
    body["to"] = {"type": "evm", "address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}  # token
    body["evm_transaction_type_details"] = {
        "type": "erc20_transfer",
        "recipient": {"type": "evm", "address": "0x1111111111111111111111111111111111111111"},
    }
    assert p.parse_transaction(json.dumps(body)).destination == "0x1111111111111111111111111111111111111111"


def test_aborted_transaction_and_list(load: Callable[[str], bytes]) -> None:
    tx = p.parse_transaction(load("transaction_black_box_aborted.json"))
    assert tx.state == c.CUSTODY_TRANSACTION_STATE_ABORTED and tx.error
    txs, total = p.parse_transactions(load("transactions_list.json"))
    assert total == 1 and txs[0].state == c.CUSTODY_TRANSACTION_STATE_ABORTED


def test_balances_read_mined_not_deprecated_balance(load: Callable[[str], bytes]) -> None:
    body = json.loads(load("owned_assets_vault.json"))
    asset = body["owned_assets"][0]
    asset["balance"] = "0"  # deprecated and reads "0" in practice (§11)
    asset["balances"] = {"total_mined": "300000", "available_mined": "200000", "frozen_mined": "100000"}
    (bal,) = p.parse_balances(json.dumps(body), "vault-1")
    assert (bal.asset, bal.total, bal.available, bal.locked, bal.account_id) == (
        "APT",
        "0.003",
        "0.002",
        "0.001",
        "vault-1",
    )
    # The recorded (older) shape carries only the deprecated per-field names: mined = available.
    (old,) = p.parse_balances(load("owned_assets_vault.json"))
    assert (old.total, old.available) == ("0.003", "0.003")


def test_balance_without_mined_amounts_is_not_zero(load: Callable[[str], bytes]) -> None:
    body = json.loads(load("owned_assets_vault.json"))
    body["owned_assets"][0]["balances"] = {"pending_incoming": "0"}
    with pytest.raises(ParseError):
        p.parse_balances(json.dumps(body))


def test_vaults(load: Callable[[str], bytes]) -> None:
    vaults, total = p.parse_vaults(load("vaults.json"))
    assert total == 6 and len(vaults) == 6 and vaults[0].name == "Aptos Deposits"


def test_units_are_exact() -> None:
    assert p.to_units("1500000000000000000", 18) == Decimal("1.5")
    assert p.base_units(Decimal("12.345678"), 6) == "12345678"
    with pytest.raises(ValueError):
        p.base_units(Decimal("0.0000001"), 6)  # never rounded
    with pytest.raises(ValueError):
        p.base_units(Decimal("0"), 6)
    for bad in ("-1", "1.5", "1e3", "", " 1"):
        with pytest.raises(ParseError):
            p.to_units(bad, 6)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
PARSERS: list[Callable[[bytes | str], Any]] = [
    p.parse_transaction,
    p.parse_transactions,
    p.parse_balances,
    p.parse_vaults,
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | _json.map(json.dumps))
def test_garbage_raises_only_parse_error(data: bytes | str) -> None:
    for parse in PARSERS:
        with contextlib.suppress(ParseError):
            parse(data)


_FIELDS = [
    "id",
    "state",
    "created_at",
    "modified_at",
    "managed_transaction_data",
    "chain",
    "to",
    "expected_result",
    "evm_transaction_type_details",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_FIELDS), _json)
def test_mutated_transaction_raises_only_parse_error(field: str, value: Any) -> None:

    body = json.loads((Path(__file__).parent / "fixtures" / "transaction_evm_transfer_eth.json").read_text())
    body[field] = value
    with contextlib.suppress(ParseError):
        p.parse_transaction(json.dumps(body))


@settings(max_examples=100, deadline=None)
@given(_json, st.integers(min_value=-5, max_value=500))
def test_mutated_balances_raise_only_parse_error(amount: Any, decimals: int) -> None:
    body = {
        "total": 1,
        "page": 1,
        "size": 50,
        "owned_assets": [
            {
                "priced_asset": {"asset_info": {"symbol": "X", "decimals": decimals}},
                "balances": {"total_mined": amount, "available_mined": "1"},
            }
        ],
    }
    with contextlib.suppress(ParseError):
        p.parse_balances(json.dumps(body))


@settings(max_examples=150, deadline=None)
@given(
    st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat())
    | st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.+Z-]{0,20}\Z")
)
def test_odd_timestamps_raise_only_parse_error(stamp: str) -> None:
    body = json.loads((Path(__file__).parent / "fixtures" / "transaction_evm_transfer_eth.json").read_text())
    body["modified_at"] = stamp
    with contextlib.suppress(ParseError):
        p.parse_transaction(json.dumps(body))
