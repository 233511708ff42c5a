"""The durable symbol registry: which symbols an account's engine runs, with what config, in what state.

Rules:

* One row per (account, symbol) in ``<prefix>symbols``: the account key (``state.account_key``, the same
  key as the lease), the symbol, the ``trading:`` overrides as JSON (validated against the process's
  config when the symbol starts), the DESIRED status (``active`` | ``paused`` | ``removed``) and when it
  last changed.  The row is the operator's intent: the CLI (``opensqt symbols ...``), the HTTP endpoint and
  the running fleet all write here first; the fleet (``engine/fleet.py``) then makes the running engines
  match it.  So a change made while the engine is down is applied at its next start, and a crash between
  "registry changed" and "engine stopped" is finished by the next sync.
* A removed symbol keeps its row (the history, and its slots stay in the store: re-adding it recovers
  them).
* Overrides may not change the symbol; they are plain YAML/JSON scalars (decimals as strings).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Column, Float, MetaData, String, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

__all__ = ["STATUSES", "SymbolEntry", "SymbolRegistry", "UnknownSymbol"]

Status = Literal["active", "paused", "removed"]
STATUSES: tuple[Status, ...] = ("active", "paused", "removed")


class UnknownSymbol(KeyError):
    """No registry row for this symbol on this account."""


@dataclass(frozen=True, slots=True)
class SymbolEntry:
    account: str
    symbol: str
    overrides: dict[str, Any]
    status: Status
    updated_at: float


class SymbolRegistry:
    def __init__(
        self,
        engine: Engine,
        account: str,
        *,
        table_prefix: str = "osq_",
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.account = account
        self._wall = wall
        md = MetaData()
        self.table = Table(
            f"{table_prefix}symbols",
            md,
            Column("account", String(128), primary_key=True),
            Column("symbol", String(64), primary_key=True),
            Column("config", String(4000), nullable=False),
            Column("status", String(16), nullable=False),
            Column("updated_at", Float, nullable=False),
        )
        md.create_all(engine)

    def entries(self, *, include_removed: bool = True) -> list[SymbolEntry]:
        t = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.account == self.account).order_by(t.c.symbol)).mappings()
            out = [
                SymbolEntry(r["account"], r["symbol"], json.loads(r["config"]), r["status"], r["updated_at"])
                for r in rows
            ]
        return [e for e in out if include_removed or e.status != "removed"]

    def get(self, symbol: str) -> SymbolEntry:
        for e in self.entries():
            if e.symbol == symbol:
                return e
        raise UnknownSymbol(symbol)

    def add(self, symbol: str, overrides: Mapping[str, Any] | None = None) -> SymbolEntry:
        """Register (or re-activate) ``symbol`` as active with ``overrides`` (replacing earlier ones)."""
        if not symbol:
            raise ValueError("symbol: empty")
        extra = dict(overrides or {})
        if extra.pop("symbol", symbol) != symbol:
            raise ValueError("overrides: 'symbol' must not differ from the symbol added")
        text = json.dumps(extra, sort_keys=True, default=str)
        if len(text) > 4000:
            raise ValueError("overrides: too large")
        row = {
            "account": self.account,
            "symbol": symbol,
            "config": text,
            "status": "active",
            "updated_at": self._wall(),
        }
        ins = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(self.table)
        stmt = ins.values(**row).on_conflict_do_update(
            index_elements=["account", "symbol"],
            set_={k: v for k, v in row.items() if k not in ("account", "symbol")},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
        return self.get(symbol)

    def seed(self, symbol: str) -> None:
        """Register ``symbol`` as active only when the account has no row for it yet (first start)."""
        try:
            self.get(symbol)
        except UnknownSymbol:
            self.add(symbol)

    def set_status(self, symbol: str, status: Status) -> SymbolEntry:
        """Set the desired status; unchanged stays unchanged (``updated_at`` too: a removal's workflow id
        is derived from it, so the same change asked again is the same workflow)."""
        if status not in STATUSES:
            raise ValueError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.account == self.account, t.c.symbol == symbol, t.c.status != status)
                .values(status=status, updated_at=self._wall())
            )
        return self.get(symbol)  # raises UnknownSymbol
