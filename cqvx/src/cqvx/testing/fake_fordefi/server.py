"""A wire-level fake Fordefi API, built from the OpenAPI document (``fixtures/fordefi/openapi.json``).

It shares no code with the adapter.  It checks what the real API checks:

* ``Authorization: Bearer <token>`` on every request, the token registered with a public key; on every
  POST that carries ``x-signature`` (and always on ``POST /api/v1/transactions``, a "signed" endpoint)
  the base64 DER ECDSA-P256-SHA256 signature over ``path|x-timestamp|body`` is verified with that
  public key, and the timestamp must be within ``skew_s`` of the wall clock.  Failures are 401
  ``BaseError`` bodies.
* ``x-idempotence-id`` (a UUID, else 422 naming the header): the same id with the same body replays the
  stored transaction with 200 (docs.fordefi.com/reference/idempotent-requests); the same id with a
  different body is refused with 409 (``conflict="reject"``, the default; not documented by Fordefi) or
  replays the first result as the docs literally say (``conflict="replay"``).
* Bodies: a 422 ``ValidationError`` whose ``loc`` names the field; 400 ``DefinedPreconditionError``
  with ``error_type`` (``vault_not_found``, ``insufficient_funds``, ``invalid_transaction_state``,
  ``transactions_already_aborted``); 404 ``ResourceError`` with ``resource``.

Transactions walk the approval lifecycle on :class:`FakeClock` (see ``_lifecycle``): with
``require_approval`` they wait in ``waiting_for_approval`` until :meth:`approve` (or the API's
``/approve``), :meth:`reject` or :meth:`expire`; then ``signed``, ``pushed_to_blockchain``, ``mined``
and ``completed`` follow at :data:`AFTER_APPROVAL` offsets; :meth:`fail_transaction` ends one in an
error state.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from cqvx.testing.fake_fordefi._lifecycle import AFTER_APPROVAL, FakeClock, FakeTx
from cqvx.testing.fakeserver import FakeServer, Fault

__all__ = ["FakeFordefi", "FakeVault"]

_API = "/api/v1"
_CHAIN = {"chain_type": "evm", "unique_id": "evm_ethereum_mainnet", "native_currency_symbol": "ETH"}


@dataclass
class FakeVault:
    id: str
    name: str
    address: str
    # symbol -> (asset_info, total_mined base units)
    assets: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)

    def ref(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "address": self.address, "state": "active", "type": "evm"}


def default_vault() -> FakeVault:
    eth = {
        "id": "ebef1507-2916-4a42-bfb1-2c65d164f6f5",
        "asset_identifier": {"type": "evm", "details": {"type": "native", "chain": "evm_ethereum_mainnet"}},
        "name": "Ether",
        "symbol": "ETH",
        "decimals": 18,
    }
    usdc = {
        "id": "5b0c7a3e-2f8b-4d0e-9e53-6b0f2b1f7a11",
        "asset_identifier": {
            "type": "evm",
            "details": {
                "type": "erc20",
                "token": {
                    "chain": "evm_ethereum_mainnet",
                    "hex_repr": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
                },
            },
        },
        "name": "USD Coin",
        "symbol": "USDC",
        "decimals": 6,
    }
    return FakeVault(
        id="bdb889c8-7f39-4b1c-8973-bd0532143796",
        name="EVM Releases",
        address="0xA031314c1bFc27b83163978DFB8549829789ae63",
        assets={"ETH": (eth, 10 * 10**18), "USDC": (usdc, 5_000 * 10**6)},
    )


def _error(status: int, title: str, detail: Any, **extra: Any) -> web.Response:
    body = {"title": title, "detail": detail, "request_id": str(uuid.uuid4()), **extra}
    return web.json_response(body, status=status)


def _invalid(loc: list[str], msg: str) -> web.Response:
    return _error(
        422, "Cannot process data due to validation error", [{"loc": loc, "msg": msg, "type": "value_error"}]
    )


def _precondition(error_type: str, detail: str) -> web.Response:
    return _error(400, detail, detail, error_type=error_type, system_error_code=error_type)


class FakeFordefi(FakeServer):
    def __init__(
        self,
        keys: dict[str, ec.EllipticCurvePublicKey],
        *,
        vaults: list[FakeVault] | None = None,
        require_approval: bool = True,
        conflict: Literal["reject", "replay"] = "reject",
        clock: FakeClock | None = None,
        skew_s: float = 300.0,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        self.keys = dict(keys)
        self.vaults = {v.id: v for v in (vaults if vaults is not None else [default_vault()])}
        self.require_approval = require_approval
        self.conflict = conflict
        self.clock = clock or FakeClock()
        self.skew_s = skew_s
        self.transactions: dict[str, FakeTx] = {}
        # idempotence id -> (canonical body, tx id or the stored refusal (status, body)).
        self._by_idem: dict[str, tuple[str, str | tuple[int, bytes]]] = {}
        self._ids = itertools.count(1)
        self.signature_failures = 0
        self.rate_limits_served = 0

    def setup_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get(f"{_API}/vaults", self._list_vaults)
        r.add_get(f"{_API}/vaults/{{id}}", self._get_vault)
        r.add_get(f"{_API}/vaults/{{id}}/assets", self._vault_assets)
        r.add_post(f"{_API}/transactions", self._create)
        r.add_get(f"{_API}/transactions", self._list_transactions)
        r.add_get(f"{_API}/transactions/{{id}}", self._get_transaction)
        r.add_post(f"{_API}/transactions/{{id}}/abort", self._abort)
        r.add_post(f"{_API}/transactions/{{id}}/approve", self._approve_route)

    def _take_fault(self, path: str, method: str) -> Fault | None:
        fault = super()._take_fault(path, method)
        if fault is not None and fault.kind == "status" and fault.status == 429:
            self.rate_limits_served += 1
        return fault

    # --- test controls -------------------------------------------------------------------------------

    def _tx(self, tx_id: str) -> FakeTx:
        tx = self.transactions[tx_id]
        self._settle(tx)
        return tx

    def approve(self, tx_id: str) -> None:
        """An approver approves: the transaction then signs, pushes, mines and completes on the clock."""
        tx = self._tx(tx_id)
        if tx.state != "waiting_for_approval":
            raise ValueError(f"transaction {tx_id} is {tx.state}, not waiting_for_approval")
        now = self.clock.now()
        tx.approval, tx.approver_state = "approved", "approved"
        tx.move(now, "approved")
        tx.steps = [(now + dt, state) for dt, state in AFTER_APPROVAL]

    def reject(self, tx_id: str) -> None:
        """An approver denies it: the approval request fails and the transaction is aborted."""
        self._end_approval(tx_id, "unauthorized", "Rejected by approver")

    def expire(self, tx_id: str) -> None:
        """The approval request times out without quorum."""
        self._end_approval(tx_id, "not_participated", "Approval request expired")

    def _end_approval(self, tx_id: str, approver_state: str, error: str) -> None:
        tx = self._tx(tx_id)
        tx.approval, tx.approver_state, tx.error = "failed", approver_state, error
        tx.steps = []
        tx.move(self.clock.now(), "aborted")

    def fail_transaction(
        self, tx_id: str, state: str = "error_signing", message: str = "signing failed"
    ) -> None:
        tx = self._tx(tx_id)
        tx.steps, tx.error = [], message
        tx.move(self.clock.now(), state)

    def state_of(self, tx_id: str) -> str:
        return self._tx(tx_id).state

    def transactions_with_idempotence_id(self, key: str) -> int:
        return sum(1 for t in self.transactions.values() if t.idempotence_id == key)

    # --- auth ----------------------------------------------------------------------------------------

    def _authenticate(self, request: web.Request, body: bytes, *, signed: bool) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        key = self.keys.get(token)
        if key is None:
            return _error(401, "Unauthorized", "Invalid or missing access token")
        signature, stamp = request.headers.get("x-signature"), request.headers.get("x-timestamp")
        if signature is None and not signed:
            return None
        if signature is None or stamp is None:
            self.signature_failures += 1
            return _error(401, "Unauthorized", "Missing request signature")
        try:
            skew = abs(int(stamp) - time.time())
            der = base64.b64decode(signature, validate=True)
            key.verify(
                der, request.path.encode() + b"|" + stamp.encode() + b"|" + body, ec.ECDSA(hashes.SHA256())
            )
        except (ValueError, binascii.Error, InvalidSignature):
            self.signature_failures += 1
            return _error(401, "Unauthorized", "Invalid request signature")
        if skew > self.skew_s:
            self.signature_failures += 1
            return _error(401, "Unauthorized", "Request timestamp out of range")
        return None

    # --- vaults and assets ------------------------------------------------------------------------------

    @staticmethod
    def _page(request: web.Request, items: list[Any], name: str) -> web.Response:
        try:
            page = int(request.query.get("page", "1"))
            size = int(request.query.get("size", "50"))
        except ValueError:
            return _invalid(["query", "page"], "Input should be a valid integer")
        if page < 1 or not 0 <= size <= 100:
            return _invalid(["query", "size" if page >= 1 else "page"], "Out of range")
        chunk = items[(page - 1) * size : page * size]
        return web.json_response({"total": len(items), "page": page, "size": size, name: chunk})

    def _vault_json(self, v: FakeVault) -> dict[str, Any]:
        return {**v.ref(), "created_at": self.clock.iso(0), "modified_at": self.clock.iso(0)}

    async def _list_vaults(self, request: web.Request) -> web.Response:
        if (denied := self._authenticate(request, b"", signed=False)) is not None:
            return denied
        return self._page(request, [self._vault_json(v) for v in self.vaults.values()], "vaults")

    async def _get_vault(self, request: web.Request) -> web.Response:
        if (denied := self._authenticate(request, b"", signed=False)) is not None:
            return denied
        vault = self.vaults.get(request.match_info["id"])
        if vault is None:
            return _error(404, "Not found", "Vault not found", resource="vault")
        return web.json_response(self._vault_json(vault))

    async def _vault_assets(self, request: web.Request) -> web.Response:
        if (denied := self._authenticate(request, b"", signed=False)) is not None:
            return denied
        vault = self.vaults.get(request.match_info["id"])
        if vault is None:
            return _error(404, "Not found", "Vault not found", resource="vault")
        for tx in list(self.transactions.values()):
            self._settle(tx)
        items = []
        for info, total in vault.assets.values():
            held = str(total)
            items.append(
                {
                    "priced_asset": {"type": "asset_price", "asset_info": info},
                    "balance": "0",  # deprecated; reads 0 in practice (venues.md §11)
                    "balances": {
                        "total_mined": held,
                        "available_mined": held,
                        "frozen_mined": "0",
                        "total_pending_incoming": "0",
                        "mined": held,
                        "pending_incoming": "0",
                    },
                }
            )
        return self._page(request, items, "owned_assets")

    # --- transactions ------------------------------------------------------------------------------------

    def _settle(self, tx: FakeTx) -> None:
        for state in tx.advance_to(self.clock.now()):
            if state == "pushed_to_blockchain":
                tx.hash = "0x" + uuid.uuid5(uuid.NAMESPACE_OID, tx.id).hex * 2
            if state == "completed":
                vault = self.vaults[tx.vault["id"]]
                info, total = vault.assets[tx.asset["symbol"]]
                vault.assets[tx.asset["symbol"]] = (info, total - int(tx.body["details"]["value"]["value"]))

    def _validate(self, body: Any) -> web.Response | tuple[FakeVault, dict[str, Any]]:
        if not isinstance(body, dict):
            return _invalid(["body"], "Input should be a valid dictionary")
        for name in ("vault_id", "type", "details"):
            if name not in body:
                return _invalid(["body", name], "Field required")
        if body["type"] != "evm_transaction":
            return _invalid(["body", "type"], "Only evm_transaction is simulated")
        details = body["details"]
        if not isinstance(details, dict):
            return _invalid(["body", "details"], "Input should be a valid dictionary")
        for name in ("type", "to", "value", "asset_identifier"):
            if name not in details:
                return _invalid(["body", "details", name], "Field required")
        value = details["value"]
        if not isinstance(value, dict) or not str(value.get("value", "")).isdigit():
            return _invalid(["body", "details", "value", "value"], "String should match pattern '^\\d+$'")
        vault = self.vaults.get(str(body["vault_id"]))
        if vault is None:
            return _precondition("vault_not_found", "Vault not found")
        for info, total in vault.assets.values():
            if info["asset_identifier"] == details["asset_identifier"]:
                if int(value["value"]) > total:
                    return _precondition("insufficient_funds", "Insufficient funds")
                return vault, info
        return _precondition("insufficient_funds", "Asset not held by the vault")

    async def _create(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if (denied := self._authenticate(request, raw, signed=True)) is not None:
            return denied
        key = request.headers.get("x-idempotence-id", "")
        if key:
            try:
                uuid.UUID(key)
            except ValueError:
                return _invalid(["header", "x-idempotence-id"], "Input should be a valid UUID")
        try:
            body = json.loads(raw)
        except ValueError:
            return _invalid(["body"], "JSON decode error")
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        if key and key in self._by_idem:
            first, stored = self._by_idem[key]
            if first != canonical and self.conflict == "reject":
                return _error(
                    409, "Idempotence ID conflict", "The idempotence ID was used with another request"
                )
            if isinstance(stored, tuple):  # the first request's refusal, replayed as it was
                return web.Response(status=stored[0], body=stored[1], content_type="application/json")
            return web.json_response(self._render(self._tx(stored)), status=200)
        checked = self._validate(body)
        if isinstance(checked, web.Response):
            # Validation failures (422) are not stored; a refusal once the endpoint ran (400) is, and
            # every later request with the id gets it again (docs: "regardless of whether the request
            # was successful or not").
            if key and checked.status == 400 and isinstance(checked.body, bytes):
                self._by_idem[key] = (canonical, (checked.status, checked.body))
            return checked
        vault, info = checked
        now = self.clock.now()
        tx = FakeTx(
            id=str(uuid.UUID(int=next(self._ids) + 0xF0DEF1 * 2**96)),
            body=body,
            vault=vault.ref(),
            asset=info,
            idempotence_id=key,
            created=now,
        )
        tx.move(now, "waiting_for_approval")
        self.transactions[tx.id] = tx
        if key:
            self._by_idem[key] = (canonical, tx.id)
        if not self.require_approval:
            tx.approval, tx.approver_state = "auto_approved", "not_participated"
            tx.move(now, "approved")
            tx.steps = [(now + dt, state) for dt, state in AFTER_APPROVAL]
        return web.json_response(self._render(tx), status=201)

    async def _get_transaction(self, request: web.Request) -> web.Response:
        if (denied := self._authenticate(request, b"", signed=False)) is not None:
            return denied
        tx_id = request.match_info["id"]
        if tx_id not in self.transactions:
            return _error(404, "Not found", f"Transaction {tx_id} not found", resource="transaction")
        return web.json_response(self._render(self._tx(tx_id)))

    async def _list_transactions(self, request: web.Request) -> web.Response:
        if (denied := self._authenticate(request, b"", signed=False)) is not None:
            return denied
        vault_ids = set(request.query.getall("vault_ids", []))
        states = set(request.query.getall("states", []))
        items = []
        for tx in sorted(self.transactions.values(), key=lambda t: -t.created):
            self._settle(tx)
            if vault_ids and tx.vault["id"] not in vault_ids:
                continue
            if states and tx.state not in states:
                continue
            items.append(self._render(tx))
        return self._page(request, items, "transactions")

    async def _abort(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if (denied := self._authenticate(request, raw, signed=False)) is not None:
            return denied
        tx_id = request.match_info["id"]
        if tx_id not in self.transactions:
            return _error(404, "Not found", f"Transaction {tx_id} not found", resource="transaction")
        tx = self._tx(tx_id)
        if tx.state == "aborted":
            return _precondition("transactions_already_aborted", "Transaction already aborted")
        if tx.state not in ("waiting_for_approval", "approved"):
            return _precondition(
                "invalid_transaction_state", f"Cannot abort a transaction in state {tx.state}"
            )
        tx.steps = []
        tx.move(self.clock.now(), "aborted")
        return web.Response(status=204)

    async def _approve_route(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if (denied := self._authenticate(request, raw, signed=False)) is not None:
            return denied
        tx_id = request.match_info["id"]
        if tx_id not in self.transactions:
            return _error(404, "Not found", f"Transaction {tx_id} not found", resource="transaction")
        state = self._tx(tx_id).state
        if state != "waiting_for_approval":
            if self._tx(tx_id).approval in ("approved", "auto_approved"):
                return _precondition("transactions_already_approved", "Transaction already approved")
            return _precondition("invalid_transaction_state", "Transaction is not waiting for approval")
        self.approve(tx_id)
        return web.Response(status=204)

    # --- rendering (schema EvmTransaction) -------------------------------------------------------------

    def _render(self, tx: FakeTx) -> dict[str, Any]:
        details = tx.body["details"]
        info = tx.asset
        is_token = info["asset_identifier"]["details"]["type"] == "erc20"
        to = {"type": "evm", "address": details["to"]}
        type_details: dict[str, Any] = {"type": "native_transfer", "direction": "outgoing"}
        if is_token:
            token = info["asset_identifier"]["details"]["token"]["hex_repr"]
            type_details = {"type": "erc20_transfer", "direction": "outgoing", "recipient": to}
            to = {"type": "evm", "address": token}
        approver = {
            "user": {
                "id": "f0669f81-5a18-4545-baa9-c51b937399b5",
                "user_type": "person",
                "name": "Example User",
            },
            "state": tx.approver_state,
            "modified_at": self.clock.iso(tx.modified),
        }
        managed: dict[str, Any] = {
            "created_by": {
                "id": "7e94b222-22f1-437a-b2a5-8d866d3d4d28",
                "user_type": "api_user",
                "name": "api",
            },
            "approval_request": {
                "state": tx.approval,
                "required_groups": 1,
                "approval_groups": [{"quorum_size": 1, "approvers": [approver]}],
                **({"error_message": tx.error} if tx.approval == "failed" else {}),
            },
            "signer_type": "api_signer",
            "vault": tx.vault,
            "idempotence_id": tx.idempotence_id or None,
            "push_mode": "auto",
            "sign_mode": "auto",
        }
        if tx.state.startswith("error") and tx.error:
            managed["error_pushing_to_blockchain_message"] = tx.error
        out: dict[str, Any] = {
            "id": tx.id,
            "created_at": self.clock.iso(tx.created),
            "modified_at": self.clock.iso(tx.modified),
            "managed_transaction_data": managed,
            "signatures": [],
            "spam_state": "unset",
            "direction": "outgoing",
            "state": tx.state,
            "state_changes": [
                {
                    "changed_at": self.clock.iso(at),
                    "new_state": new,
                    **({"previous_state": old} if old else {}),
                }
                for at, old, new in tx.history
            ],
            "type": "evm_transaction",
            "evm_transaction_type_details": type_details,
            "chain": _CHAIN,
            "from": {"type": "evm", "address": tx.vault["address"], "vault": tx.vault},
            "to": to,
            "value": "0" if is_token else details["value"]["value"],
            "expected_result": {
                "reversion": {"state": "not_reverted"},
                "effects": {
                    "balance_changes": [],
                    "transfers": [
                        {
                            "priced_asset": {"type": "asset_price", "asset_info": info},
                            "amount": details["value"]["value"],
                            "type": "erc20" if is_token else "native",
                            "from": {"type": "evm", "address": tx.vault["address"]},
                            "to": {"type": "evm", "address": details["to"]},
                        }
                    ],
                },
            },
        }
        if "note" in tx.body:
            out["note"] = tx.body["note"]
        if tx.hash:
            out["hash"] = tx.hash
        return out
