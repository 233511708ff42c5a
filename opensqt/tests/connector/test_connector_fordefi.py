"""Fordefi custody through the connector, as a client sees it in production.

``RemoteVenue`` -> connector (built from a YAML file whose Fordefi credentials come from environment
variables) -> ``FordefiClient`` -> the wire-level fake Fordefi.  A transfer is created over gRPC, waits
for approval, is approved by the vault's approver (at the fake, as a person would in the console) and
is followed to COMPLETED through ``GetCustodyTransaction``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cqc.venues.v1 import custody_pb2 as c
from cqc.venues.v1 import venue_pb2
from cqvx.client import SupportsCustody
from cqvx.errors import InvalidRequest
from cqvx.testing.fake_fordefi import FakeClock, FakeFordefi, default_vault
from cqvx.testing.harnesses import pem_of
from cqvx.transport.ratelimit import limiters
from opensqt.connector import RemoteVenue

from .served import YamlConnector

pytestmark = pytest.mark.timeout(60)

TOKEN = "fordefi-api-user-token"
VENUES_YAML = """\
  fordefi:
    type: fordefi
    rest_url: ${FD_URL}
    retry_base_delay_s: 0.01
    poll: {initial_s: 0.02, max_s: 0.05}
    credentials:
      access_token: {env: FD_ACCESS_TOKEN}
      signing_key: {file: "${FD_KEY_FILE}"}
"""


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    limiters.clear()
    yield
    limiters.clear()


class Stack:
    """The fake Fordefi behind a YAML-configured connector."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.fake = FakeFordefi(keys={TOKEN: self.key.public_key()}, clock=FakeClock())
        self.connector: YamlConnector | None = None

    async def start(self) -> None:
        await self.fake.start()
        key_file = self.tmp / "fordefi.pem"
        key_file.write_text(pem_of(self.key), encoding="utf-8")
        env = {"FD_URL": self.fake.url, "FD_ACCESS_TOKEN": TOKEN, "FD_KEY_FILE": str(key_file)}
        self.connector = YamlConnector(self.tmp, VENUES_YAML, env)
        await self.connector.start()

    async def remote(self) -> RemoteVenue:
        assert self.connector is not None
        venue = await self.connector.connect("fordefi")
        venue.poll_interval = 0.02  # type: ignore[attr-defined]  # the custody mixin's poll period
        return venue

    async def close(self) -> None:
        if self.connector is not None:
            await self.connector.stop()
        await self.fake.stop()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    s = Stack(tmp_path)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def _transfer(key: str, amount: str = "0.25") -> c.CustodyTransferRequest:
    return c.CustodyTransferRequest(
        vault_id=default_vault().id,
        asset="ETH",
        chain="evm_ethereum_mainnet",
        amount=amount,
        destination="0x" + "cd" * 20,
        idempotence_id=key,
        note="treasury rebalance",
    )


async def test_a_transfer_is_approved_end_to_end(stack: Stack) -> None:
    remote = await stack.remote()
    try:
        assert isinstance(remote, SupportsCustody)
        assert venue_pb2.CAPABILITY_CUSTODY in remote.capabilities()
        created = await remote.create_transaction(_transfer("rebalance-42"))
        assert created.venue == "fordefi"
        assert created.state == c.CUSTODY_TRANSACTION_STATE_WAITING_FOR_APPROVAL
        assert created.approval_state == c.APPROVAL_STATE_PENDING

        # A retry of the same intent (e.g. after a lost reply) is the same transaction.
        again = await remote.create_transaction(_transfer("rebalance-42"))
        assert again.transaction_id == created.transaction_id
        assert len(stack.fake.transactions) == 1

        stack.fake.clock.rate = 100.0  # the chain moves fast from here on
        stack.fake.approve(created.transaction_id)  # the vault's approver approves in the console
        terminal = frozenset({c.CUSTODY_TRANSACTION_STATE_COMPLETED})
        done = await remote.await_transaction(created.transaction_id, terminal, timeout=10)
        assert done.state == c.CUSTODY_TRANSACTION_STATE_COMPLETED
        assert done.approval_state == c.APPROVAL_STATE_APPROVED
        assert (done.amount, done.asset, done.tx_hash != "") == ("0.25", "ETH", True)
        assert stack.fake.signature_failures == 0

        balances = {b.asset: b for b in await remote.get_balances()}
        assert balances["ETH"].total == "9.75"
    finally:
        await remote.aclose()


async def test_a_rejected_transfer_and_a_typed_refusal_cross_the_wire(stack: Stack) -> None:
    remote = await stack.remote()
    try:
        assert isinstance(remote, SupportsCustody)
        created = await remote.create_transaction(_transfer("rebalance-43"))
        stack.fake.reject(created.transaction_id)
        done = await remote.await_transaction(created.transaction_id, frozenset(), timeout=5)
        assert (done.state, done.approval_state) == (
            c.CUSTODY_TRANSACTION_STATE_ABORTED,
            c.APPROVAL_STATE_DENIED,
        )
        with pytest.raises(InvalidRequest, match="amount"):
            await remote.create_transaction(_transfer("rebalance-44", amount="0.1234567890123456789"))
    finally:
        await remote.aclose()
