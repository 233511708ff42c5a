"""Fordefi payloads -> cqc messages.  Every failure is a :class:`~cqvx.errors.ParseError`.

The lifecycle table (:data:`STATES`) maps every transaction state of the OpenAPI document
(``PushableTransactionState`` plus the message and exchange states) onto the cqc custody contract:

* ``mined`` is NOT final (venues.md §11: balances can lag and only ``completed`` means settled), so it
  maps to MINED, which is not terminal; ``mined_reverted`` likewise stays MINED (its end is
  ``completed_reverted``, FAILED).
* Terminal cqc states are COMPLETED, ABORTED and FAILED (:data:`TERMINAL`).
* ``rejected`` and ``failed`` are not in the spec but appear in Fordefi's own agent CLI's terminal set:
  read as ABORTED and FAILED.  Any other unknown state is UNSPECIFIED (non-final) and logged, with the
  venue's name kept in ``venue_state``.
* ``aborting`` / ``accelerating`` / ``canceling`` / ``accelerated`` are in-flight operations: not final.

Amounts come from the simulated effects (``expected_result.effects.transfers``: amount in base units
with the asset's symbol and decimals) and are converted exactly to asset units.  Incoming transactions
carry no ``managed_transaction_data``; for ERC-20 transfers ``to`` is the token contract and the
recipient is ``evm_transaction_type_details.recipient`` (venues.md §11).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from cqc.venues.v1 import balance_pb2, custody_pb2
from cqvx.errors import ParseError
from cqvx.num import dec_str, excerpt
from cqvx.timeutil import timestamp_from_datetime
from cqvx.venues.fordefi import models as m

__all__ = [
    "APPROVALS",
    "APPROVAL_REQUESTS",
    "STATES",
    "TERMINAL",
    "base_units",
    "decode",
    "parse_balances",
    "parse_transaction",
    "to_units",
]

VENUE = "fordefi"
_log = structlog.get_logger("cqvx.venues.fordefi")

S = custody_pb2
STATES: dict[str, int] = {
    "waiting_for_approval": S.CUSTODY_TRANSACTION_STATE_WAITING_FOR_APPROVAL,
    "approved": S.CUSTODY_TRANSACTION_STATE_APPROVED,
    "waiting_for_signing_trigger": S.CUSTODY_TRANSACTION_STATE_WAITING_FOR_SIGNING,
    "signed": S.CUSTODY_TRANSACTION_STATE_SIGNED,
    "pushed_to_blockchain": S.CUSTODY_TRANSACTION_STATE_PUSHED,
    "sent_to_provider": S.CUSTODY_TRANSACTION_STATE_PUSHED,
    "pending_exchange": S.CUSTODY_TRANSACTION_STATE_PUSHED,
    "accelerating": S.CUSTODY_TRANSACTION_STATE_PUSHED,
    "canceling": S.CUSTODY_TRANSACTION_STATE_PUSHED,
    "accelerated": S.CUSTODY_TRANSACTION_STATE_PUSHED,  # replaced by a faster copy: follow that one
    "mined": S.CUSTODY_TRANSACTION_STATE_MINED,  # NOT final (§11)
    "mined_reverted": S.CUSTODY_TRANSACTION_STATE_MINED,  # not final either; ends completed_reverted
    "completed": S.CUSTODY_TRANSACTION_STATE_COMPLETED,
    "aborted": S.CUSTODY_TRANSACTION_STATE_ABORTED,
    "rejected": S.CUSTODY_TRANSACTION_STATE_ABORTED,
    "cancelled": S.CUSTODY_TRANSACTION_STATE_ABORTED,
    "aborting": S.CUSTODY_TRANSACTION_STATE_UNSPECIFIED,  # abort requested, not yet done
    "completed_reverted": S.CUSTODY_TRANSACTION_STATE_FAILED,
    "error_pushing_to_blockchain": S.CUSTODY_TRANSACTION_STATE_FAILED,
    "error_signing": S.CUSTODY_TRANSACTION_STATE_FAILED,
    "dropped": S.CUSTODY_TRANSACTION_STATE_FAILED,
    "insufficient_funds": S.CUSTODY_TRANSACTION_STATE_FAILED,
    "error_submitting_to_provider": S.CUSTODY_TRANSACTION_STATE_FAILED,
    "error_submitting_to_exchange": S.CUSTODY_TRANSACTION_STATE_FAILED,
    "error_processing_by_exchange": S.CUSTODY_TRANSACTION_STATE_FAILED,
    "failed": S.CUSTODY_TRANSACTION_STATE_FAILED,
    "stuck": S.CUSTODY_TRANSACTION_STATE_STUCK,
    "queued": S.CUSTODY_TRANSACTION_STATE_QUEUED,
}
TERMINAL = frozenset(
    {
        S.CUSTODY_TRANSACTION_STATE_COMPLETED,
        S.CUSTODY_TRANSACTION_STATE_ABORTED,
        S.CUSTODY_TRANSACTION_STATE_FAILED,
    }
)
# ApprovalRequestState (the whole request) and ApprovalState (one approver).
APPROVAL_REQUESTS: dict[str, int] = {
    "created": S.APPROVAL_STATE_PENDING,
    "approved": S.APPROVAL_STATE_APPROVED,
    "auto_approved": S.APPROVAL_STATE_APPROVED,
    "insufficient_approvers": S.APPROVAL_STATE_DENIED,
    "failed": S.APPROVAL_STATE_DENIED,
}
APPROVALS: dict[str, int] = {
    "pending": S.APPROVAL_STATE_PENDING,
    "approved": S.APPROVAL_STATE_APPROVED,
    "unauthorized": S.APPROVAL_STATE_DENIED,
    "not_participated": S.APPROVAL_STATE_SKIPPED,
}

T = TypeVar("T")
_INT = re.compile(r"[0-9]{1,80}")
_MAX_DECIMALS = 80


def decode(body: bytes | str, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise ParseError(f"{kind.__name__}: {err}", venue=VENUE, raw=excerpt(str(body)[:200])) from None


def _decimals(value: int, field: str) -> int:
    if not 0 <= value <= _MAX_DECIMALS:
        raise ParseError(f"{field}: decimals out of range: {value}", venue=VENUE)
    return value


def to_units(base: str, decimals: int, field: str = "amount") -> Decimal:
    """Integer base-unit string -> asset units, exactly."""
    if not isinstance(base, str) or _INT.fullmatch(base) is None:
        raise ParseError(f"{field}: expected an integer string, got {excerpt(str(base))}", venue=VENUE)
    return Decimal(base).scaleb(-_decimals(decimals, field))


def base_units(amount: Decimal, decimals: int) -> str:
    """Asset units -> integer base units; raises ValueError when it is not a whole number of them
    (never rounded: a transfer is sent exactly or not at all)."""
    scaled = amount.scaleb(decimals)
    if scaled != scaled.to_integral_value() or scaled <= 0:
        raise ValueError(f"{dec_str(amount)} is not a positive whole number of 1e-{decimals} units")
    return str(int(scaled))


def _ts(value: str | None, field: str) -> Timestamp | None:
    if not value:
        return None
    try:
        return timestamp_from_datetime(datetime.fromisoformat(value))
    except (ValueError, OverflowError, TypeError):
        raise ParseError(f"{field}: not an ISO 8601 time: {excerpt(value)}", venue=VENUE) from None


def _approvals(request: m.ApprovalRequest) -> list[custody_pb2.Approval]:
    people = list(request.approvers)
    for group in request.approval_groups:
        people.extend(group.approvers)
    out: list[custody_pb2.Approval] = []
    for person in people:
        approval = custody_pb2.Approval(
            approver=(person.user.name or person.user.id) if person.user else "",
            state=APPROVALS.get(person.state, S.APPROVAL_STATE_UNSPECIFIED),  # type: ignore[arg-type]
        )
        decided = _ts(person.modified_at, "approvers.modified_at")
        if decided is not None and person.state != "pending":
            approval.decided_at.CopyFrom(decided)
        out.append(approval)
    return out


def _recipient(tx: m.Transaction) -> tuple[str, str]:
    """(address, vault id) of the receiving side: the type details' ``recipient`` when present (ERC-20
    and incoming transfers, where ``to`` is the token contract or absent), else ``to``."""
    recipient = tx.type_details().get("recipient")
    if isinstance(recipient, dict):
        vault = recipient.get("vault")
        vault_id = vault.get("id") if isinstance(vault, dict) else None
        address = recipient.get("address")
        return (
            address if isinstance(address, str) else "",
            vault_id if isinstance(vault_id, str) else "",
        )
    if isinstance(recipient, str):
        return recipient, ""
    if tx.to is not None:
        vault = tx.to.vault
        return tx.to.address or (vault.address or "" if vault else ""), vault.id if vault else ""
    return "", ""


def state_of(name: str, transaction_id: str = "") -> int:
    state = STATES.get(name)
    if state is None:
        # Unknown is not final: report it, keep following (venues.md §11).
        _log.warning("fordefi_unknown_state", state=excerpt(name), transaction_id=transaction_id)
        return S.CUSTODY_TRANSACTION_STATE_UNSPECIFIED
    return state


def transaction_from_model(tx: m.Transaction) -> custody_pb2.CustodyTransaction:
    managed = tx.managed_transaction_data
    vault = (managed.vault if managed else None) or tx.vault or (tx.from_.vault if tx.from_ else None)
    destination, to_vault = _recipient(tx)
    vault_id = vault.id if vault else ""
    if tx.direction == "incoming" and to_vault:
        vault_id = to_vault  # incoming: no managed data; the vault is the receiving side (§11)
    out = custody_pb2.CustodyTransaction(
        transaction_id=tx.id,
        venue=VENUE,
        vault_id=vault_id,
        transaction_type=tx.type,
        state=state_of(tx.state, tx.id),  # type: ignore[arg-type]
        venue_state=tx.state,
        chain=tx.chain.unique_id if tx.chain else "",
        destination=destination,
        tx_hash=tx.hash or "",
        note=tx.note or "",
    )
    if managed is not None:
        out.idempotence_id = managed.idempotence_id or ""
        request = managed.approval_request
        if request is not None:
            out.approval_state = APPROVAL_REQUESTS.get(request.state, S.APPROVAL_STATE_UNSPECIFIED)  # type: ignore[assignment]
            out.approvals.extend(_approvals(request))
            if request.error_message:
                out.error = request.error_message
        if managed.error_pushing_to_blockchain_message:
            out.error = managed.error_pushing_to_blockchain_message
    result = tx.mined_result or tx.expected_result
    effects = result.effects if result else None
    if effects is not None and effects.transfers:
        first = effects.transfers[0]
        info = first.priced_asset.asset_info
        out.asset = info.symbol
        out.amount = dec_str(to_units(first.amount, info.decimals, "transfers.amount"))
    elif tx.chain is not None and tx.value is not None:
        out.asset = tx.chain.native_currency_symbol  # decimals unknown here: amount left unset
    if (
        out.state in (S.CUSTODY_TRANSACTION_STATE_FAILED, S.CUSTODY_TRANSACTION_STATE_ABORTED)
        and not out.error
    ):
        out.error = tx.state
    created = _ts(tx.created_at, "created_at")
    assert created is not None  # required field, non-empty checked by _ts's caller below
    out.created_at.CopyFrom(created)
    updated = _ts(tx.modified_at, "modified_at")
    if updated is not None:
        out.updated_at.CopyFrom(updated)
    return out


def parse_transaction(body: bytes | str) -> custody_pb2.CustodyTransaction:
    tx = decode(body, m.Transaction)
    if not tx.id or not tx.state or not tx.created_at:
        raise ParseError("transaction: id, state and created_at must not be empty", venue=VENUE)
    return transaction_from_model(tx)


def parse_transactions(body: bytes | str) -> tuple[list[custody_pb2.CustodyTransaction], int]:
    page = decode(body, m.TransactionsPage)
    out = []
    for tx in page.transactions:
        if not tx.id or not tx.state or not tx.created_at:
            raise ParseError("transaction: id, state and created_at must not be empty", venue=VENUE)
        out.append(transaction_from_model(tx))
    return out, page.total


def balance_from_owned(asset: m.OwnedAsset, account_id: str = "") -> balance_pb2.Balance:
    info = asset.priced_asset.asset_info
    b = asset.balances
    total_raw = b.total_mined if b.total_mined is not None else b.mined
    available_raw = b.available_mined if b.available_mined is not None else b.mined
    if total_raw is None or available_raw is None:
        raise ParseError(f"owned asset {excerpt(info.symbol)}: no mined balance", venue=VENUE)
    total = to_units(total_raw, info.decimals, "balances.total_mined")
    available = to_units(available_raw, info.decimals, "balances.available_mined")
    return balance_pb2.Balance(
        venue=VENUE,
        account_id=account_id,
        asset=info.symbol,
        balance_type=balance_pb2.BALANCE_TYPE_SPOT,
        total=dec_str(total),
        available=dec_str(available),
        locked=dec_str(max(total - available, Decimal(0))),
    )


def parse_owned_assets(body: bytes | str, account_id: str = "") -> tuple[list[m.OwnedAsset], int]:
    page = decode(body, m.OwnedAssetsPage)
    for asset in page.owned_assets:
        balance_from_owned(asset, account_id)  # validates the amounts now: garbage never reads as 0
    return page.owned_assets, page.total


def parse_balances(body: bytes | str, account_id: str = "") -> list[balance_pb2.Balance]:
    assets, _ = parse_owned_assets(body, account_id)
    return [balance_from_owned(a, account_id) for a in assets]


def parse_vaults(body: bytes | str) -> tuple[list[m.Vault], int]:
    page = decode(body, m.VaultsPage)
    return page.vaults, page.total


def error_body(body: bytes) -> m.ErrorBody | None:
    """The documented error body, or None when the reply is not one (never raises)."""
    try:
        return msgspec.json.decode(body, type=m.ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def asset_identifier(info: m.AssetInfo) -> dict[str, Any]:
    """The request form of an owned asset's identifier (the response adds a ``chain`` object)."""
    return {k: v for k, v in info.asset_identifier.items() if k != "chain"}
