"""The approval lifecycle table: every documented state is mapped, explicitly, and ``mined`` is not final."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from cqc.venues.v1 import custody_pb2 as c
from cqvx.venues.fordefi import parse as p

# The explicit table the adapter must implement (venues.md §4.2 states, §11 corrections).
EXPECTED = {
    "waiting_for_approval": c.CUSTODY_TRANSACTION_STATE_WAITING_FOR_APPROVAL,
    "approved": c.CUSTODY_TRANSACTION_STATE_APPROVED,
    "waiting_for_signing_trigger": c.CUSTODY_TRANSACTION_STATE_WAITING_FOR_SIGNING,
    "signed": c.CUSTODY_TRANSACTION_STATE_SIGNED,
    "pushed_to_blockchain": c.CUSTODY_TRANSACTION_STATE_PUSHED,
    "mined": c.CUSTODY_TRANSACTION_STATE_MINED,
    "mined_reverted": c.CUSTODY_TRANSACTION_STATE_MINED,
    "completed": c.CUSTODY_TRANSACTION_STATE_COMPLETED,
    "completed_reverted": c.CUSTODY_TRANSACTION_STATE_FAILED,
    "aborted": c.CUSTODY_TRANSACTION_STATE_ABORTED,
    "rejected": c.CUSTODY_TRANSACTION_STATE_ABORTED,
    "error_signing": c.CUSTODY_TRANSACTION_STATE_FAILED,
    "error_pushing_to_blockchain": c.CUSTODY_TRANSACTION_STATE_FAILED,
    "dropped": c.CUSTODY_TRANSACTION_STATE_FAILED,
    "failed": c.CUSTODY_TRANSACTION_STATE_FAILED,
    "stuck": c.CUSTODY_TRANSACTION_STATE_STUCK,
    "queued": c.CUSTODY_TRANSACTION_STATE_QUEUED,
    "aborting": c.CUSTODY_TRANSACTION_STATE_UNSPECIFIED,
}


@pytest.mark.parametrize(("state", "expected"), sorted(EXPECTED.items()))
def test_state_table(state: str, expected: int) -> None:
    assert p.STATES[state] == expected


def test_every_documented_state_is_mapped(load: Callable[[str], bytes]) -> None:
    enums = json.loads(load("openapi_states.json"))
    documented = set()
    for name in ("PushableTransactionState", "NonPushableTransactionState", "ExchangeTransactionState"):
        documented |= set(enums[name])
    assert documented - set(p.STATES) == set()
    assert set(enums["ApprovalRequestState"]) == set(p.APPROVAL_REQUESTS)
    assert set(enums["ApprovalState"]) == set(p.APPROVALS)


def test_only_completed_aborted_failed_are_terminal() -> None:
    assert {
        c.CUSTODY_TRANSACTION_STATE_COMPLETED,
        c.CUSTODY_TRANSACTION_STATE_ABORTED,
        c.CUSTODY_TRANSACTION_STATE_FAILED,
    } == p.TERMINAL
    assert p.STATES["mined"] not in p.TERMINAL  # §11: mined is not final
    terminal_names = {name for name, state in p.STATES.items() if state in p.TERMINAL}
    assert "mined" not in terminal_names and "mined_reverted" not in terminal_names


def test_unknown_state_is_not_final_and_kept(load: Callable[[str], bytes]) -> None:
    body = json.loads(load("transaction_evm_transfer_eth.json"))
    body["state"] = "teleported"
    tx = p.parse_transaction(json.dumps(body))
    assert tx.state == c.CUSTODY_TRANSACTION_STATE_UNSPECIFIED
    assert tx.venue_state == "teleported"
    assert tx.state not in p.TERMINAL


def test_approval_states() -> None:
    assert p.APPROVAL_REQUESTS["created"] == c.APPROVAL_STATE_PENDING
    assert p.APPROVAL_REQUESTS["auto_approved"] == c.APPROVAL_STATE_APPROVED
    assert p.APPROVAL_REQUESTS["failed"] == c.APPROVAL_STATE_DENIED
    assert p.APPROVALS["not_participated"] == c.APPROVAL_STATE_SKIPPED
