"""Fordefi REST paths and request bodies (OpenAPI ``paths``; venues.md §4.2).

Transfers are ``evm_transaction`` / ``evm_transfer`` requests (schema ``CreateEvmTransactionRequest``):
the asset identifier comes from the vault's own asset list (so native coins and ERC-20 tokens are
named exactly as Fordefi names them) and the value is the amount in the asset's smallest unit, exact.
Other chain families (Solana, UTXO, ...) have their own request shapes and are not offered yet.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "ASSETS",
    "OWNED_ASSETS",
    "TRANSACTIONS",
    "VAULTS",
    "abort",
    "approve",
    "build_transfer",
    "transaction",
    "vault",
    "vault_assets",
]

PREFIX = "/api/v1"
VAULTS = f"{PREFIX}/vaults"
OWNED_ASSETS = f"{PREFIX}/assets/owned-assets"
TRANSACTIONS = f"{PREFIX}/transactions"
ASSETS = OWNED_ASSETS

# The transfer shape this adapter sends, per chain family (the asset identifier's ``type``).
TRANSFER_TYPES = {"evm": ("evm_transaction", "evm_transfer")}


def vault(vault_id: str) -> str:
    return f"{VAULTS}/{vault_id}"


def vault_assets(vault_id: str) -> str:
    return f"{VAULTS}/{vault_id}/assets"


def transaction(transaction_id: str) -> str:
    return f"{TRANSACTIONS}/{transaction_id}"


def abort(transaction_id: str) -> str:
    return f"{TRANSACTIONS}/{transaction_id}/abort"


def approve(transaction_id: str) -> str:
    return f"{TRANSACTIONS}/{transaction_id}/approve"


def build_transfer(*, vault_id: str, identifier: dict[str, Any], to: str, value: str, note: str) -> bytes:
    """The exact body bytes of a transfer (serialised once; these bytes are signed and sent)."""
    family = identifier.get("type")
    tx_type, details_type = TRANSFER_TYPES[str(family)]
    body: dict[str, Any] = {
        "signer_type": "api_signer",
        "vault_id": vault_id,
        "type": tx_type,
        "details": {
            "type": details_type,
            "to": to,
            "value": {"type": "value", "value": value},
            "asset_identifier": identifier,
            "gas": {"type": "priority", "priority_level": "medium"},
        },
    }
    if note:
        body["note"] = note
    return msgspec.json.encode(body)
