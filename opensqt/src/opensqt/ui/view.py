"""Terminal view of a running engine (rich Live, or plain log lines under CI / without a TTY)."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING

from cqvx.num import dec_str

if TYPE_CHECKING:
    from opensqt.engine.orchestrator import GridEngine

__all__ = ["run_view"]


def _table(engine: GridEngine, height: int = 40) -> object:
    """One frame, sized to the terminal: a frame taller than the screen cannot be redrawn in place
    (rich Live would scroll a copy of it on every refresh)."""
    import time

    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    st = engine.status()
    head = Table.grid(padding=(0, 2))
    flags = []
    if st["margin_locked"]:
        flags.append("[bold red]MARGIN LOCK[/]")
    risk = st["risk"]
    if risk["volume_monitor"].get("triggered"):
        flags.append("[bold red]VOLUME ANOMALY: paused[/]")
    if risk["circuit_breaker"]["open"]:
        flags.append(f"[bold red]BREAKER OPEN ({risk['circuit_breaker']['reason']})[/]")
    head.add_row(
        f"[bold]{engine.symbol}[/]",
        f"price [cyan]{st['price']}[/]",
        f"anchor {st['anchor']}",
        f"position {st['position']}",
        f"realized PnL [green]{st['realized_pnl']}[/]",
        f"unrealized {st['unrealized_pnl']}",
    )
    counts = Table.grid(padding=(0, 2))
    counts.add_row(
        *[f"{k}: {v}" for k, v in sorted(st["slots"].items())],
        f"fills: {st['fills']}",
        f"placed: {st['placed']}",
        f"rejected: {st['rejected']}",
        f"cancels: {st['cancels']}",
        " ".join(flags) if flags else "[green]running[/]",
    )
    # rows left for the two tables: 2 header lines, 5 lines of chrome per table, 1 spare
    budget = max(6, height - 2 - 10 - 1)
    n_fills = min(len(engine.fills), max(2, budget // 3), 8)
    n_orders = max(3, budget - n_fills - 1)

    orders_all = engine.open_orders()
    price = engine.last_price
    if price is not None and len(orders_all) > n_orders:
        # keep the orders nearest the price; the view reads top (highest) to bottom (lowest)
        orders_all = sorted(orders_all, key=lambda o: abs(Decimal(o["price"]) - price))[: n_orders - 1]
    shown = sorted(orders_all, key=lambda o: Decimal(o["price"]), reverse=True)
    hidden = st["open_orders"] - len(shown)
    title = f"open orders ({st['open_orders']})" + (f", {hidden} farthest not shown" if hidden > 0 else "")
    orders = Table(title=title, expand=False)
    for col in ("level", "state", "side", "price", "quantity", "filled"):
        orders.add_column(col, justify="right" if col not in ("state", "side") else "left")
    for o in shown:
        style = "green" if o["side"] == "buy" else "red"
        orders.add_row(
            o["level"], o["state"], f"[{style}]{o['side']}[/]", o["price"], o["quantity"], o["filled"]
        )
    fills = Table(title="last fills (newest first)")
    for col in ("time", "side", "price", "quantity", "pnl"):
        fills.add_column(col, justify="left" if col in ("time", "side") else "right")
    for f in reversed(engine.fills[-n_fills:] if n_fills else []):
        side = "buy" if f.side == 1 else "sell"
        style = "green" if side == "buy" else "red"
        fills.add_row(
            time.strftime("%H:%M:%S", time.localtime(f.ts)),
            f"[{style}]{side}[/]",
            dec_str(f.price),
            dec_str(f.quantity),
            dec_str(f.realized_pnl),
        )
    parts: list[object] = [head, counts, orders]
    parts.append(fills if engine.fills else Text("no fills yet", style="dim"))
    return Group(*parts)  # type: ignore[arg-type]


async def run_view(
    engine: GridEngine,
    stop: asyncio.Event,
    equity: list[tuple[float, Decimal]],
    *,
    plain: bool,
    refresh: float = 0.5,
    log_every: float = 5.0,
) -> None:
    """Refresh until ``stop`` is set; samples equity (realized + unrealized) for the chart."""
    import time

    def sample() -> None:
        if engine.last_price is not None:
            equity.append((time.time(), engine.stats.realized_pnl + engine.unrealized_pnl()))

    if plain:
        last = 0.0
        while not stop.is_set():
            sample()
            now = time.monotonic()
            if now - last >= log_every:
                last = now
                st = engine.status()
                print(
                    f"[opensqt] {engine.symbol} price={st['price']} open_orders={st['open_orders']} "
                    f"fills={st['fills']} position={st['position']} realized_pnl={st['realized_pnl']}",
                    flush=True,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=refresh)
        return
    from rich.console import Console
    from rich.live import Live

    console = Console()
    with Live(
        _table(engine, console.size.height),  # type: ignore[arg-type]
        console=console,
        refresh_per_second=4,
        transient=False,
        vertical_overflow="crop",
    ) as live:
        while not stop.is_set():
            sample()
            live.update(_table(engine, console.size.height))  # type: ignore[arg-type]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=refresh)
