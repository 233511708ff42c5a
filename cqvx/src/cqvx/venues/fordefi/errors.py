"""Fordefi error bodies -> the cqvx taxonomy, through one explicit table.

Error bodies (OpenAPI components, venues.md §4.2): ``BaseError {title, detail, full_detail?,
request_id?}`` for 401/403/408/500; 400 ``DefinedPreconditionError_<Op>ErrorType_`` adds
``error_type`` (+ ``system_error_code``); 404 ``ResourceError`` adds ``resource``; 422
``ValidationError`` has ``detail: [{loc, msg, type}]``, whose ``loc`` names the field (the message
carries it, e.g. ``body.details.to: Field required``); 429 ``RateLimitError``.

:data:`ERROR_TYPES` maps each documented ``error_type`` of the operations this adapter calls
(CreateTransaction, AbortTransaction, ApproveTransaction) to a :class:`~cqvx.venues.codes.Code`
row.  ``retry_safe`` answers "may the same request be sent again?": a precondition that was refused
created nothing (so re-sending is harmless but pointless), except where the state may change on its
own.  Unknown
``error_type`` values of a 400 are InvalidRequest, never retry-safe.

409 is not in the OpenAPI document; the fake server uses it for an idempotence id re-used with a
different body, and it maps to DuplicateOrder (resolve by looking the existing transaction up).
"""

from __future__ import annotations

from typing import Any

from cqvx.errors import (
    AuthenticationError,
    DuplicateOrder,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    PermissionDenied,
    RateLimited,
    Timeout,
    VenueError,
)
from cqvx.transport.http import HttpResponse, parse_retry_after
from cqvx.venues.codes import Code
from cqvx.venues.fordefi import models as m
from cqvx.venues.fordefi.parse import error_body

__all__ = ["ERROR_TYPES", "http_error_mapper"]

VENUE = "fordefi"

ERROR_TYPES: dict[str, Code] = {
    # CreateTransactionErrorType
    "insufficient_funds": Code(InsufficientFunds, False),
    "insufficient_gas_coins": Code(InsufficientFunds, False),
    "funding_blocked_by_policy": Code(PermissionDenied, False),
    "blocked_by_policy": Code(PermissionDenied, False),
    "insufficient_approvers": Code(PermissionDenied, False),
    "transaction_contains_restricted_addresses": Code(
        PermissionDenied, False, "transaction contains restricted addresses"
    ),
    "vault_not_found": Code(NotFound, False),
    "quote_not_found": Code(NotFound, False),
    "sui_package_address_not_found": Code(NotFound, False),
    "invalid_recipient": Code(InvalidRequest, False),
    "dust_not_allowed": Code(InvalidRequest, False),
    "invalid_signer_type": Code(InvalidRequest, False),
    "invalid_creator_type": Code(InvalidRequest, False),
    "invalid_gas_type": Code(InvalidRequest, False),
    "invalid_push_mode": Code(InvalidRequest, False),
    "vault_type_mismatch": Code(InvalidRequest, False),
    "chain_is_disabled": Code(InvalidRequest, False),
    "chain_is_not_supported": Code(InvalidRequest, False),
    "chain_does_not_support_secure_node": Code(InvalidRequest, False),
    "mixed_secure_and_non_secure_transactions": Code(
        InvalidRequest, False, "mixed secure and non secure transactions"
    ),
    "funder_not_allowed_for_transaction_type": Code(
        InvalidRequest, False, "funder not allowed for transaction type"
    ),
    "origin_vault_used_as_funder": Code(InvalidRequest, False),
    "invalid_transaction_gas_config_field": Code(
        InvalidRequest, False, "invalid transaction gas config field"
    ),
    "priority_fee_already_set": Code(InvalidRequest, False),
    "insecure_key_derivation": Code(InvalidRequest, False),
    "reverted_transaction": Code(
        OrderRejected, False, "reverted transaction"
    ),  # simulation says it would revert
    "transaction_to_non_contract": Code(OrderRejected, False),
    "transaction_already_mined": Code(DuplicateOrder, False),
    # AbortTransactionErrorType / ApproveTransactionErrorType
    "invalid_transaction_state": Code(OrderRejected, False),
    "non_managed_transaction": Code(InvalidRequest, False),
    "transactions_already_aborted": Code(OrderRejected, False),
    "transactions_already_approved": Code(OrderRejected, False),
    "transaction_is_in_batch": Code(InvalidRequest, False),
}


# A 400 precondition refusal whose error_type is not listed: the venue refused it (Fordefi creates are
# idempotent by idempotence id, so even a wrong guess here never doubles a transfer).
_UNKNOWN_TYPE = Code(InvalidRequest, False, "an undocumented precondition failed", documented=False)


def _validation_text(details: list[m.ValidationDetail]) -> str:
    parts = []
    for d in details[:5]:
        where = ".".join(str(p) for p in d.loc) or "request"
        parts.append(f"{where}: {d.msg or d.type or 'invalid'}")
    return "; ".join(parts)


def http_error_mapper(resp: HttpResponse) -> VenueError | None:
    """The transport's ``error_mapper``.  Returns None for 5xx and unreadable bodies, so the
    transport's status mapping decides (it knows whether the request was safe to repeat)."""
    status = resp.status
    if status < 400 or status >= 500:
        return None
    body = error_body(resp.body)
    kw: dict[str, Any] = {"venue": VENUE, "http_status": status, "raw": resp.body[:2048]}
    title = body.title if body else f"HTTP {status}"
    detail = body.detail if body else ""
    if isinstance(detail, list):
        return InvalidRequest(f"{title}: {_validation_text(detail)}", code="validation_error", **kw)
    text = f"{title}: {detail[:200]}" if detail else title
    if status == 429:
        return RateLimited(text, retry_after=parse_retry_after(resp.headers.get("Retry-After")), **kw)
    if status == 401:
        return AuthenticationError(text, **kw)
    if status == 403:
        return PermissionDenied(text, **kw)
    if status == 404:
        resource = body.resource if body else None
        return NotFound(text, code=resource, **kw)
    if status == 408:
        # The venue timed the request out: for a create, its outcome is unknown (resolve by re-sending
        # with the same idempotence id, which Fordefi de-duplicates).
        return Timeout(text, code="request_timeout", **kw)
    if status == 409:
        return DuplicateOrder(text, code="idempotence_conflict", **kw)
    error_type = body.error_type if body else None
    if error_type:
        row = ERROR_TYPES.get(error_type, _UNKNOWN_TYPE)
        return row.cls(text, code=error_type, retry_safe=row.retry_safe, **kw)
    return InvalidRequest(text, **kw)
