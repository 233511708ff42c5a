"""The live page's arbitrage panel in a real browser: ``opensqt arb`` (in process, the simulated venue,
DBOS on SQLite) publishes ``arb`` messages on ``/ws``; the page draws one row per pair (pair, direction,
size, funding PnL, state).  Preconditions and screenshots as in ``test_live_browser.py``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Browser

from opensqt.arb.cli import run_arb
from opensqt.arb.config import ArbFile
from opensqt.config import parse_model

from .test_live_browser import ARTIFACTS, browser

__all__ = ["browser"]

pytestmark = pytest.mark.browser

CONFIG = """
arb:
  pairs: [{spot: BTC-USDT, perp: BTC-USDT-PERP}]
  directions: [positive]
  entry_apr: 0.05
  exit_apr: 0.0
  notional: 1000
  poll_interval: 0.1
venue: {kind: sim, seed: 11}
state: {account: arb-live-page}
http: {enabled: true, port: 0, live: true}
system: {log_level: WARNING}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_page_draws_the_arbitrage_positions(browser: Browser, tmp_path: Path) -> None:
    errors: list[str] = []
    port = _free_port()
    arb = asyncio.create_task(
        run_arb(
            parse_model(CONFIG, ArbFile), state=tmp_path / "arb.db", duration=120, speed=10, http_port=port
        )
    )
    try:
        page = await browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        page.on("pageerror", lambda e: errors.append(str(e)))
        for _ in range(600):  # until the process serves
            if arb.done():
                arb.result()  # raises what stopped it
            with contextlib.suppress(Exception):
                await page.goto(f"http://127.0.0.1:{port}/")
                break
            await asyncio.sleep(0.1)
        await page.wait_for_function("window.__live && window.__live.connected")
        # the sim's funding (~11 % a year) is above entry_apr: the pair enters, the row shows it open
        await page.wait_for_function(
            "window.__live.arb.length === 1 && window.__live.arb[0].state === 'open'", timeout=60_000
        )
        (row,) = await page.evaluate("window.__live.arb")
        assert row["symbol"] == "BTC-USDT" and row["direction"] == "positive"
        assert Decimal(row["spotQty"]) > 0 and Decimal(row["perpQty"]) > 0
        assert await page.locator("#arbpanel").is_visible()
        assert await page.locator("#narb").inner_text() == "1"
        cells = await page.locator("#arb tbody tr[data-symbol='BTC-USDT'] td").all_inner_texts()
        assert len(cells) == 5
        assert cells[0] == "BTC-USDT" and cells[1] == "+" and cells[4] == "open"
        assert Decimal(cells[2]) == Decimal(row["spotQty"]) == Decimal(row["perpQty"])  # hedged: one size
        assert cells[3] not in ("", "—")  # funding PnL
        fits = "document.querySelector('#arb').scrollWidth <= document.querySelector('aside').clientWidth"
        assert await page.evaluate(fits), "the arbitrage table overflows the side panel"
        await page.screenshot(path=str(ARTIFACTS / "6-arb.png"))
        await page.close()
    finally:
        arb.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await arb
    assert errors == []
