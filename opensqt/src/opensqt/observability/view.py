"""Terminal view of a running engine (rich Live, or plain log lines under CI / without a TTY) and the
exit chart (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from cqvx.num import dec_str

if TYPE_CHECKING:
    from opensqt.engine.orchestrator import FillEvent, GridEngine

__all__ = ["render_chart", "run_view"]


def _table(engine: GridEngine) -> object:
    from rich.console import Group
    from rich.table import Table

    st = engine.status()
    head = Table.grid(padding=(0, 2))
    head.add_row(
        f"[bold]{engine.symbol}[/]",
        f"price [cyan]{st['price']}[/]",
        f"anchor {st['anchor']}",
        f"position {st['position']}",
        f"realized PnL [green]{st['realized_pnl']}[/]",
        f"unrealized {st['unrealized_pnl']}",
        "[red]MARGIN LOCK[/]" if st["margin_locked"] else "",
    )
    slots = Table.grid(padding=(0, 2))
    slots.add_row(
        *[f"{k}: {v}" for k, v in sorted(st["slots"].items())],
        f"fills: {st['fills']}",
        f"placed: {st['placed']}",
        f"rejected: {st['rejected']}",
    )
    orders = Table(title="open orders", show_lines=False, expand=False)
    for col in ("level", "state", "side", "price", "quantity", "filled"):
        orders.add_column(col)
    for o in engine.open_orders()[:16]:
        orders.add_row(o["level"], o["state"], o["side"], o["price"], o["quantity"], o["filled"])
    fills = Table(title="last fills")
    for col in ("side", "price", "quantity", "pnl"):
        fills.add_column(col)
    for f in engine.fills[-8:]:
        fills.add_row(
            "buy" if f.side == 1 else "sell", dec_str(f.price), dec_str(f.quantity), dec_str(f.realized_pnl)
        )
    return Group(head, slots, orders, fills)


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
    from rich.live import Live

    with Live(_table(engine), refresh_per_second=4, transient=False) as live:  # type: ignore[arg-type]
        while not stop.is_set():
            sample()
            live.update(_table(engine))  # type: ignore[arg-type]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=refresh)


def render_chart(
    path: Path,
    prices: Sequence[tuple[float, Decimal]],
    fills: Sequence[FillEvent],
    equity: Sequence[tuple[float, Decimal]],
    symbol: str,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime

    import matplotlib.pyplot as plt

    def ts(t: float) -> datetime:
        return datetime.fromtimestamp(t, tz=UTC)

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, height_ratios=[3, 1])
    ax1.plot([ts(t) for t, _ in prices], [float(p) for _, p in prices], lw=0.8, color="#555", label="price")
    buys = [f for f in fills if f.side == 1]
    sells = [f for f in fills if f.side != 1]
    ax1.scatter(
        [ts(f.ts) for f in buys],
        [float(f.price) for f in buys],
        marker="^",
        color="#1a7f37",
        s=30,
        label="buy fill",
    )
    ax1.scatter(
        [ts(f.ts) for f in sells],
        [float(f.price) for f in sells],
        marker="v",
        color="#cf222e",
        s=30,
        label="sell fill",
    )
    ax1.set_title(f"opensqt paper: {symbol}")
    ax1.legend(loc="upper left")
    ax1.grid(alpha=0.3)
    ax2.plot([ts(t) for t, _ in equity], [float(e) for _, e in equity], color="#0969da", lw=1)
    ax2.set_ylabel("PnL (quote)")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
