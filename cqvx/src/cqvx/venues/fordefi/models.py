"""msgspec models of the Fordefi payloads this adapter reads (schemas of the OpenAPI document
``fixtures/fordefi/openapi.json``; only the fields used are declared, unknown fields are ignored).

Fields that carry a payload's meaning are required (a reply without them is a ParseError, never an
empty result); the rest default.  Amounts are integer strings in the asset's smallest unit.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "ApprovalRequest",
    "AssetInfo",
    "Balances",
    "ErrorBody",
    "OwnedAsset",
    "OwnedAssetsPage",
    "Transaction",
    "TransactionsPage",
    "Vault",
    "VaultsPage",
]


class _S(msgspec.Struct):
    pass


class VaultRef(_S):
    id: str
    name: str = ""
    address: str | None = None


class UserRef(_S):
    id: str = ""
    name: str = ""


class RequestApprover(_S):
    state: str
    user: UserRef | None = None
    modified_at: str | None = None


class ApprovalGroup(_S):
    approvers: list[RequestApprover] = []
    quorum_size: int = 0


class ApprovalRequest(_S):
    state: str
    approvers: list[RequestApprover] = []
    approval_groups: list[ApprovalGroup] = []
    error_message: str | None = None


class ManagedData(_S):
    vault: VaultRef | None = None
    idempotence_id: str | None = None
    approval_request: ApprovalRequest | None = None
    error_pushing_to_blockchain_message: str | None = None


class Chain(_S):
    unique_id: str
    native_currency_symbol: str = ""


class Party(_S):
    address: str | None = None
    vault: VaultRef | None = None


class AssetInfo(_S):
    symbol: str
    decimals: int
    asset_identifier: dict[str, Any] = {}
    id: str = ""


class PricedAsset(_S):
    asset_info: AssetInfo


class TransferEffect(_S):
    priced_asset: PricedAsset
    amount: str
    to: Party | None = None


class Effects(_S):
    transfers: list[TransferEffect] = []


class ExpectedResult(_S):
    effects: Effects | None = None


class Transaction(_S, rename={"from_": "from"}):
    id: str
    state: str
    created_at: str
    type: str
    modified_at: str | None = None
    direction: str = ""
    managed_transaction_data: ManagedData | None = None
    note: str | None = None
    chain: Chain | None = None
    vault: VaultRef | None = None
    from_: Party | None = None
    to: Party | None = None
    hash: str | None = None
    value: str | None = None
    # "<family>_transaction_type_details": the recipient of token/incoming transfers lives here.
    evm_transaction_type_details: dict[str, Any] | None = None
    aptos_transaction_type_details: dict[str, Any] | None = None
    solana_transaction_type_details: dict[str, Any] | None = None
    sui_transaction_type_details: dict[str, Any] | None = None
    ton_transaction_type_details: dict[str, Any] | None = None
    tron_transaction_type_details: dict[str, Any] | None = None
    expected_result: ExpectedResult | None = None  # simulated before signing
    mined_result: ExpectedResult | None = None  # what the chain did, once mined

    def type_details(self) -> dict[str, Any]:
        for details in (
            self.evm_transaction_type_details,
            self.aptos_transaction_type_details,
            self.solana_transaction_type_details,
            self.sui_transaction_type_details,
            self.ton_transaction_type_details,
            self.tron_transaction_type_details,
        ):
            if details is not None:
                return details
        return {}


class Vault(_S):
    id: str
    name: str
    type: str
    state: str = ""
    address: str | None = None


class Balances(_S):
    # OwnedAsset.balance is deprecated and reads "0" in practice (venues.md §11): read these.
    total_mined: str | None = None
    available_mined: str | None = None
    frozen_mined: str | None = None
    # Deprecated older names, still sent (recorded samples carry only these): mined = available.
    mined: str | None = None
    pending_incoming: str | None = None


class OwnedAsset(_S):
    priced_asset: PricedAsset
    balances: Balances


class _Page(_S):
    total: int
    page: int
    size: int


class VaultsPage(_Page):
    vaults: list[Vault]


class OwnedAssetsPage(_Page):
    owned_assets: list[OwnedAsset]


class TransactionsPage(_Page):
    transactions: list[Transaction]


class ValidationDetail(_S):
    loc: list[str | int] = []
    msg: str = ""
    type: str = ""


class ErrorBody(_S):
    # BaseError / DefinedPreconditionError_*_ / ResourceError / ValidationError share title + detail.
    title: str
    detail: str | list[ValidationDetail] = ""
    error_type: str | None = None
    system_error_code: str | None = None
    resource: str | None = None
    request_id: str | None = None
