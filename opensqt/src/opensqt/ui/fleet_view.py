"""Terminal view of a fleet: one row per symbol (rich Live, or plain log lines under CI / without a TTY)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opensqt.engine.fleet import Fleet

__all__ = ["fleet_rows", "run_fleet_view"]

COLUMNS = ("symbol", "state", "price", "open", "fills", "position", "realized", "restarts", "last error")


def fleet_rows(fleet: Fleet) -> list[tuple[str, ...]]:
    """One row of text per symbol, in symbol order (the columns of :data:`COLUMNS`)."""
    out: list[tuple[str, ...]] = []
    for symbol, st in fleet.status()["symbols"].items():
        eng: dict[str, Any] = st.get("engine", {})
        out.append(
            (
                symbol,
                str(st["state"]),
                str(eng.get("price", "-")),
                str(eng.get("open_orders", "-")),
                str(eng.get("fills", "-")),
                str(eng.get("position", "-")),
                str(eng.get("realized_pnl", "-")),
                str(st["restarts"]),
                str(st["last_error"])[:60],
            )
        )
    return out


def _table(fleet: Fleet) -> object:
    from rich.table import Table

    table = Table(title=f"opensqt fleet: account {fleet.registry.account}", expand=True)
    for name in COLUMNS:
        table.add_column(name, no_wrap=name != "last error")
    for row in fleet_rows(fleet):
        style = "green" if row[1] == "running" else ("yellow" if row[1] in ("paused", "starting") else "red")
        table.add_row(*row, style=style)
    return table


async def run_fleet_view(fleet: Fleet, stop: asyncio.Event, *, plain: bool, refresh: float = 0.5) -> None:
    """Refresh until ``stop`` is set."""
    if plain:
        last = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now - last >= 5.0:
                last = now
                for row in fleet_rows(fleet):
                    print("[opensqt] " + " ".join(f"{k}={v}" for k, v in zip(COLUMNS, row, strict=True)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=refresh)
        return
    from rich.console import Console
    from rich.live import Live

    with Live(_table(fleet), console=Console(), refresh_per_second=4, transient=False) as live:  # type: ignore[arg-type]
        while not stop.is_set():
            live.update(_table(fleet))  # type: ignore[arg-type]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=refresh)
