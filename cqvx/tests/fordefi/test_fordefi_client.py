"""FordefiClient against the wire-level fake: transfers, the approval lifecycle, await_terminal, abort."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cqc.venues.v1 import custody_pb2 as c
from cqc.venues.v1 import order_pb2, venue_pb2
from cqvx.client import SupportsCustody, VenueClient
from cqvx.errors import (
    AuthenticationError,
    InvalidRequest,
    NotFound,
    OrderRejected,
    Timeout,
    UnsupportedOperation,
)
from cqvx.testing.fake_fordefi import FakeFordefi, default_vault
from cqvx.venues.fordefi import FordefiClient
from cqvx.venues.fordefi import endpoints as ep
from cqvx.venues.fordefi.auth import idempotence_id

VAULT = default_vault().id
DEST = "0x" + "ab" * 20
TX_PATH = "/api/v1/transactions"


def transfer(key: str = "payout-1", amount: str = "1.5", asset: str = "ETH") -> c.CustodyTransferRequest:
    return c.CustodyTransferRequest(
        venue="fordefi",
        vault_id=VAULT,
        asset=asset,
        chain="evm_ethereum_mainnet",
        amount=amount,
        destination=DEST,
        idempotence_id=key,
        note="test payout",
    )


async def test_create_transfer_is_signed_and_waits_for_approval(
    fake: FakeFordefi, client: FordefiClient
) -> None:
    tx = await client.create_transaction(transfer())
    assert tx.state == c.CUSTODY_TRANSACTION_STATE_WAITING_FOR_APPROVAL
    assert tx.approval_state == c.APPROVAL_STATE_PENDING
    assert (tx.vault_id, tx.asset, tx.amount, tx.destination) == (VAULT, "ETH", "1.5", DEST)
    assert tx.idempotence_id == idempotence_id("payout-1")
    (sent,) = fake.requests_to(TX_PATH, "POST")
    headers = {k.lower(): v for k, v in sent.headers.items()}
    assert headers["x-idempotence-id"] == idempotence_id("payout-1")
    assert "x-signature" in headers and headers["x-timestamp"].isdigit()
    body = json.loads(sent.body)
    assert body["details"]["value"] == {"type": "value", "value": "1500000000000000000"}
    assert body["details"]["asset_identifier"]["details"]["type"] == "native"
    assert fake.signature_failures == 0


async def test_erc20_transfer_names_the_recipient(fake: FakeFordefi, client: FordefiClient) -> None:
    tx = await client.create_transaction(transfer(asset="USDC", amount="12.345678"))
    assert (tx.asset, tx.amount, tx.destination) == ("USDC", "12.345678", DEST)
    body = json.loads(fake.requests_to(TX_PATH, "POST")[0].body)
    assert body["details"]["value"]["value"] == "12345678"
    assert body["details"]["asset_identifier"]["details"]["type"] == "erc20"


async def test_amount_finer_than_the_asset_is_refused_not_rounded(
    fake: FakeFordefi, client: FordefiClient
) -> None:
    with pytest.raises(InvalidRequest, match="amount"):
        await client.create_transaction(transfer(asset="USDC", amount="0.0000001"))
    with pytest.raises(InvalidRequest, match="asset"):
        await client.create_transaction(transfer(asset="DOGE"))
    with pytest.raises(InvalidRequest, match="idempotence_id"):
        await client.create_transaction(transfer(key=""))
    with pytest.raises(InvalidRequest, match="transaction_id"):
        await client.get_transaction("../vaults")  # ids never reach a URL path unchecked
    bad_vault = transfer()
    bad_vault.vault_id = "x/../y"
    with pytest.raises(InvalidRequest, match="vault_id"):
        await client.create_transaction(bad_vault)
    assert fake.requests_to(TX_PATH, "POST") == []


async def test_approved_transfer_is_followed_to_completed(fake: FakeFordefi, client: FordefiClient) -> None:
    tx = await client.create_transaction(transfer())
    fake.clock.rate = 50.0  # chain time: completed 6 fake seconds after approval = 0.12 s real
    fake.approve(tx.transaction_id)
    done = await client.await_terminal(tx.transaction_id, timeout=10)
    assert done.state == c.CUSTODY_TRANSACTION_STATE_COMPLETED
    assert done.approval_state == c.APPROVAL_STATE_APPROVED
    assert done.tx_hash
    (eth,) = [b for b in await client.get_vault_balances(VAULT) if b.asset == "ETH"]
    assert eth.total == "8.5"


async def test_mined_is_not_terminal(fake: FakeFordefi, client: FordefiClient) -> None:
    tx = await client.create_transaction(transfer())
    fake.approve(tx.transaction_id)
    fake.clock.advance(4.5)  # mined, not yet completed
    assert fake.state_of(tx.transaction_id) == "mined"
    with pytest.raises(Timeout, match="mined"):
        await client.await_terminal(tx.transaction_id, timeout=0.3)
    # A wanted non-terminal state is returned when asked for.
    got = await client.await_transaction(
        tx.transaction_id, frozenset({c.CUSTODY_TRANSACTION_STATE_MINED}), timeout=1
    )
    assert got.state == c.CUSTODY_TRANSACTION_STATE_MINED


@pytest.mark.parametrize(
    ("action", "state", "approval", "error"),
    [
        ("reject", c.CUSTODY_TRANSACTION_STATE_ABORTED, c.APPROVAL_STATE_DENIED, "Rejected by approver"),
        ("expire", c.CUSTODY_TRANSACTION_STATE_ABORTED, c.APPROVAL_STATE_DENIED, "Approval request expired"),
    ],
)
async def test_rejection_and_approval_timeout_end_aborted(
    fake: FakeFordefi, client: FordefiClient, action: str, *, state: int, approval: int, error: str
) -> None:
    tx = await client.create_transaction(transfer())
    getattr(fake, action)(tx.transaction_id)
    done = await client.await_terminal(tx.transaction_id, timeout=5)
    assert (done.state, done.approval_state, done.error) == (state, approval, error)


async def test_signing_failure_ends_failed(fake: FakeFordefi, client: FordefiClient) -> None:
    tx = await client.create_transaction(transfer())
    fake.approve(tx.transaction_id)
    fake.fail_transaction(tx.transaction_id, "error_signing", "signer offline")
    done = await client.await_terminal(tx.transaction_id, timeout=5)
    assert (done.state, done.venue_state, done.error) == (
        c.CUSTODY_TRANSACTION_STATE_FAILED,
        "error_signing",
        "signer offline",
    )


async def test_await_times_out_with_a_typed_error(fake: FakeFordefi, client: FordefiClient) -> None:
    tx = await client.create_transaction(transfer())
    with pytest.raises(Timeout) as info:
        await client.await_terminal(tx.transaction_id, timeout=0.3)
    assert info.value.code == "await_timeout" and "waiting_for_approval" in info.value.message


async def test_await_does_not_poll_faster_than_the_schedule(fake: FakeFordefi, client: FordefiClient) -> None:
    tx = await client.create_transaction(transfer())
    path = f"{TX_PATH}/{tx.transaction_id}"
    with pytest.raises(Timeout):
        await client.await_terminal(tx.transaction_id, timeout=0.8)
    polls = [r.at for r in fake.requests_to(path, "GET")]
    schedule = client.config.poll_schedule
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    assert len(polls) >= 3
    for attempt, gap in enumerate(gaps, start=1):
        assert gap >= schedule.cap(attempt) / 2 - 0.005, f"poll {attempt + 1} came after {gap:.3f} s"
    # Bounded: at most one poll per floor interval (cap/2 = 0.04 s once capped) over 0.8 s, plus the first.
    assert len(polls) <= 1 + 0.8 / (schedule.maximum / 2) + 1


async def test_same_key_twice_is_one_transaction(fake: FakeFordefi, client: FordefiClient) -> None:
    first = await client.create_transaction(transfer())
    again = await client.create_transaction(transfer())
    assert again.transaction_id == first.transaction_id
    assert fake.transactions_with_idempotence_id(idempotence_id("payout-1")) == 1


@pytest.mark.parametrize("fault", ["status", "reset"])
async def test_lost_reply_is_resolved_by_resending_the_same_id(
    fake: FakeFordefi, client: FordefiClient, fault: str
) -> None:
    if fault == "status":
        fake.fail(TX_PATH, status=503, method="POST", after=True)
    else:
        fake.reset(TX_PATH, method="POST", after=True)
    tx = await client.create_transaction(transfer())
    posts = fake.requests_to(TX_PATH, "POST")
    assert len(posts) == 2
    ids = {{k.lower(): v for k, v in r.headers.items()}["x-idempotence-id"] for r in posts}
    assert ids == {idempotence_id("payout-1")}
    assert fake.transactions_with_idempotence_id(idempotence_id("payout-1")) == 1
    assert tx.transaction_id in fake.transactions


@pytest.mark.parametrize("conflict", ["reject", "replay"])
async def test_same_key_for_another_transfer_is_a_duplicate(
    fake: FakeFordefi, client: FordefiClient, conflict: str
) -> None:
    from cqvx.errors import DuplicateOrder

    fake.conflict = conflict  # type: ignore[assignment]
    first = await client.create_transaction(transfer(amount="1"))
    with pytest.raises(DuplicateOrder) as info:
        await client.create_transaction(transfer(amount="2"))
    assert not info.value.retry_safe
    if conflict == "replay":
        assert info.value.order_id == first.transaction_id
    assert len(fake.transactions) == 1


async def test_abort_where_allowed(fake: FakeFordefi, client: FordefiClient) -> None:
    tx = await client.create_transaction(transfer())
    aborted = await client.abort_transaction(tx.transaction_id)
    assert aborted.state == c.CUSTODY_TRANSACTION_STATE_ABORTED
    again = await client.abort_transaction(tx.transaction_id)  # idempotent: already aborted
    assert again.state == c.CUSTODY_TRANSACTION_STATE_ABORTED
    other = await client.create_transaction(transfer(key="payout-2"))
    fake.approve(other.transaction_id)
    fake.clock.advance(10)
    with pytest.raises(OrderRejected) as late:
        await client.abort_transaction(other.transaction_id)
    assert late.value.code == "invalid_transaction_state"


async def test_abort_whose_reply_was_lost(fake: FakeFordefi, client: FordefiClient) -> None:
    tx = await client.create_transaction(transfer())
    fake.fail(f"{TX_PATH}/{tx.transaction_id}/abort", status=503, method="POST", after=True)
    aborted = await client.abort_transaction(tx.transaction_id)
    assert aborted.state == c.CUSTODY_TRANSACTION_STATE_ABORTED
    assert len(fake.requests_to(f"{TX_PATH}/{tx.transaction_id}/abort", "POST")) == 2


async def test_approve_as_an_api_approver(fake: FakeFordefi, client: FordefiClient) -> None:
    tx = await client.create_transaction(transfer())
    approved = await client.approve_transaction(tx.transaction_id)
    assert approved.state == c.CUSTODY_TRANSACTION_STATE_APPROVED
    assert (await client.approve_transaction(tx.transaction_id)).approval_state == c.APPROVAL_STATE_APPROVED
    rejected = await client.create_transaction(transfer(key="payout-2"))
    fake.reject(rejected.transaction_id)
    with pytest.raises(OrderRejected) as info:
        await client.approve_transaction(rejected.transaction_id)
    assert info.value.code == "invalid_transaction_state"
    fake.clock.advance(10)
    assert (await client.await_terminal(approved, timeout=1)).state == c.CUSTODY_TRANSACTION_STATE_COMPLETED


async def test_list_and_get(fake: FakeFordefi, client: FordefiClient) -> None:
    a = await client.create_transaction(transfer(key="a"))
    b = await client.create_transaction(transfer(key="b"))
    fake.reject(b.transaction_id)
    listed = await client.list_transactions(vault_ids=[VAULT], states=["waiting_for_approval"])
    assert [t.transaction_id for t in listed] == [a.transaction_id]
    everything = {t.transaction_id for t in await client.list_transactions()}
    assert everything == {a.transaction_id, b.transaction_id}
    with pytest.raises(NotFound) as info:
        await client.get_transaction("00000000-0000-0000-0000-000000000000")
    assert info.value.code == "transaction"


async def test_validation_error_names_the_field(fake: FakeFordefi, client: FordefiClient) -> None:
    with pytest.raises(InvalidRequest, match=r"body\.details") as info:
        body = b'{"vault_id":"v","type":"evm_transaction"}'
        await client._post(ep.TRANSACTIONS, "/transactions", body, idempotent=False)
    assert info.value.http_status == 422


async def test_insufficient_funds(fake: FakeFordefi, client: FordefiClient) -> None:
    from cqvx.errors import InsufficientFunds

    with pytest.raises(InsufficientFunds) as info:
        await client.create_transaction(transfer(amount="11"))
    assert info.value.code == "insufficient_funds"
    # Fordefi stores the refusal under the idempotence id: the same key is refused again even once
    # the request would pass; a new intent needs a new key.
    info_eth, _ = fake.vaults[VAULT].assets["ETH"]
    fake.vaults[VAULT].assets["ETH"] = (info_eth, 100 * 10**18)  # funded now
    with pytest.raises(InsufficientFunds):
        await client.create_transaction(transfer(amount="11"))
    assert (await client.create_transaction(transfer(key="payout-1b", amount="11"))).amount == "11"
    assert len(fake.transactions) == 1


async def test_wrong_signing_key_is_refused(fake: FakeFordefi, config_for: Callable[..., Any]) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    async with FordefiClient(config_for(fake.url, pem)) as bad:
        assert await bad.list_vaults()  # GETs are bearer-only
        with pytest.raises(AuthenticationError):
            await bad.create_transaction(transfer())
    assert fake.signature_failures == 1 and not fake.transactions


async def test_balances_and_vaults(client: FordefiClient) -> None:
    vaults = await client.list_vaults()
    assert [v.id for v in vaults] == [VAULT]
    balances = {b.asset: b for b in await client.get_balances()}
    assert (balances["ETH"].total, balances["USDC"].available) == ("10", "5000")
    assert balances["ETH"].account_id == VAULT


async def test_custody_only_capabilities(client: FordefiClient) -> None:
    assert isinstance(client, VenueClient) and isinstance(client, SupportsCustody)
    assert client.capabilities() == {venue_pb2.CAPABILITY_CUSTODY}
    with pytest.raises(UnsupportedOperation):
        await client.place_order(order_pb2.Order(symbol="BTC-USD"))
    with pytest.raises(UnsupportedOperation):
        await client.get_order_book("BTC-USD")
    with pytest.raises(UnsupportedOperation):
        await client.subscribe_trades("BTC-USD").wait_live()
    health = await client.health()
    assert health.reachable and health.venue == "fordefi"


async def test_credentials_required(fake: FakeFordefi, config_for: Callable[..., Any]) -> None:
    async with FordefiClient(config_for(fake.url, "", access_token=None, signing_key=None)) as anon:
        with pytest.raises(InvalidRequest, match="credentials"):
            await anon.list_vaults()


def test_rng_is_injectable() -> None:
    FordefiClient(rng=random.Random(1))


async def test_auto_approved_policy(fake: FakeFordefi, client: FordefiClient) -> None:
    fake.require_approval = False  # the vault's policy auto-approves (as in the recorded samples)
    tx = await client.create_transaction(transfer())
    assert (tx.state, tx.approval_state) == (c.CUSTODY_TRANSACTION_STATE_APPROVED, c.APPROVAL_STATE_APPROVED)
    assert [a.state for a in tx.approvals] == [c.APPROVAL_STATE_SKIPPED]
    fake.clock.advance(2.5)
    pushed = await client.get_transaction(tx.transaction_id)
    assert pushed.state == c.CUSTODY_TRANSACTION_STATE_PUSHED and pushed.tx_hash
