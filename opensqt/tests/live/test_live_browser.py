"""The live page in a real browser (Debian chromium, headless, driven by Playwright from Python).

A missing chromium or an unbuilt page FAILS these tests (``make deps-debian`` / ``make live-page``, which
``make pytest`` runs first); only ``OPENSQT_SKIP_BROWSER=1`` skips them.  Screenshots are written to
``build/live/`` (gitignored) as test artifacts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from opensqt.live.server import STATIC

from .rig import Rig

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "build" / "live"


def _preconditions() -> None:
    if os.environ.get("OPENSQT_SKIP_BROWSER") == "1":
        pytest.skip("OPENSQT_SKIP_BROWSER=1")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("chromium is not installed: run `make deps-debian` (or set OPENSQT_SKIP_BROWSER=1)")
    if not (STATIC / "live.js").is_file():
        pytest.fail("the live page is not built: run `make live-page`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    _preconditions()
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            await b.close()


async def _lines(page: Page) -> list[Decimal]:
    rows = await page.evaluate("window.__live.priceLines")
    return sorted(Decimal(r["price"]) for r in rows)


async def _shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def test_the_page_follows_the_engine(browser: Browser, tmp_path: Path) -> None:
    errors: list[str] = []
    async with Rig(tmp_path) as rig:
        # the page's strict CSP forbids eval; Playwright's string predicates need it (test-only bypass)
        page = await browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(rig.url + "/")
        # connects and draws the history (100 candles)
        await page.wait_for_function(
            "window.__live && window.__live.connected && window.__live.history === 100"
        )
        assert await page.evaluate("window.__live.priceLines.length") == 0
        await _shot(page, "1-history")

        # a tick places the buy window: one dashed price line per new order
        await rig.tick("100")
        want = sorted(Decimal(o.price) for o in rig.open_orders())
        assert want
        await page.wait_for_function(f"window.__live.priceLines.length === {len(want)}")
        assert await _lines(page) == want
        await _shot(page, "2-orders")

        # a fill removes its line and adds a marker
        buy = await rig.fill_highest_buy()
        await page.wait_for_function(f"window.__live.priceLines.length === {len(want) - 1}")
        assert Decimal(buy.price) not in await _lines(page)
        await page.wait_for_function("window.__live.markers.length === 1")
        assert await page.locator("#counts").inner_text() == "1 / 0"

        # the sell one interval higher, then its fill: realized PnL from the engine
        await rig.tick("99.2")
        sell = next(o for o in rig.open_orders() if o.side == 2)
        await page.wait_for_function(
            f"window.__live.priceLines.some(l => l.side === 'SELL' && Number(l.price) === {sell.price})"
        )
        await rig.fill(sell)
        await page.wait_for_function("window.__live.pnl !== null && Number(window.__live.pnl) > 0")
        assert Decimal(await page.evaluate("window.__live.pnl")) == rig.engine.stats.realized_pnl
        assert await page.evaluate("window.__live.markers.length") == 2
        assert (await page.locator("#pnl").inner_text()).strip() not in ("", "—")
        await _shot(page, "3-filled")

        # a risk banner
        rig.engine.margin_lock.trigger()
        rig.engine.events.emit("risk")
        await page.locator("#risk").wait_for(state="visible")
        await _shot(page, "4-risk")

        # reconnect: the server drops every client; the page comes back with history and orders
        lines_before = await _lines(page)
        await rig.server.hub.close_all()
        await page.wait_for_function("window.__live.connects >= 2 && window.__live.connected", timeout=15_000)
        await page.wait_for_function("window.__live.history === 100")
        assert await _lines(page) == lines_before
        assert await page.evaluate("window.__live.markers.length") == 2  # replayed fills are not doubled

        # a phone
        await page.set_viewport_size({"width": 390, "height": 844})
        # nothing overflows sideways once the chart's ResizeObserver has laid it out
        await page.wait_for_function("document.querySelector('#chart').getBoundingClientRect().width <= 390")
        await page.wait_for_function(
            "document.querySelector('#chart canvas').getBoundingClientRect().right <= 390"
        )
        await _shot(page, "5-phone")
        await page.close()
    assert errors == []


async def test_sound_starts_muted(browser: Browser, tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        page = await browser.new_page(bypass_csp=True)
        await page.goto(rig.url + "/")
        await page.wait_for_function("window.__live && window.__live.connected")
        assert await page.locator("#mute").get_attribute("aria-pressed") == "false"
        assert await page.locator("#mute").inner_text() == "♪ off"
        await page.locator("#mute").click()
        assert await page.locator("#mute").get_attribute("aria-pressed") == "true"
        assert await page.locator("#mute").inner_text() == "♪ on"
        await page.close()
