"""The exit chart of a run: price, fills and PnL as a PNG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opensqt.engine.context import FillEvent

__all__ = ["render_chart"]


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

    import matplotlib.dates as mdates
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
    # readable time ticks at any run length (the default shows microseconds on short runs)
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax2.xaxis.set_major_locator(locator)
    ax2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
