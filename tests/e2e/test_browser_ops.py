"""The operator page in a real browser (Debian's Chromium through Playwright) against the real
gateway on loopback, over a small demo: a theater admin logs in, sees the charts, a table of
their theater only and the forecasts section (or its "unavailable"), and exports CSV; a
customer who logs in is told they have no access."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import storage
from gateway.app import create_app
from storage import analytics
from tests.e2e.test_browser import CHROMIUM
from tests.gateway_support import PASSWORD, Account, gateway_config, make_account

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


class NoEngine:
    async def snapshot(self, show_id: int) -> Any:
        raise AssertionError("the operator page opens no seat map")


@dataclass
class OpsSite:
    url: str
    admin: Account
    customer: Account
    theater_name: str


@pytest.fixture
async def ops_site(
    database_url: str, schema: str, redis_url: str, pool: Any, redis: Any
) -> AsyncIterator[OpsSite]:
    async with pool.acquire() as conn:
        await storage.generate_demo_data(
            conn, scale=0.02, seed=3, today=dt.date.today(), progress=False
        )
        while await analytics.refresh_chunk(conn, limit=5000):
            pass
        theater = await conn.fetchrow("SELECT id, name FROM theaters ORDER BY id LIMIT 1")
    config = gateway_config(database_url, schema, redis_url)
    admin = await make_account(pool, config, "theater_admin", (theater["id"],))
    customer = await make_account(pool, config)
    runner = web.AppRunner(create_app(config, engine=NoEngine()))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield OpsSite(f"http://127.0.0.1:{port}", admin, customer, theater["name"])
    finally:
        await runner.cleanup()
        keys = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
        if keys:
            await redis.delete(*keys)


async def _login(browser: Any, site: OpsSite, who: Account) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(
        locale="en-US", accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    page = await context.new_page()
    problems: list[str] = []  # errors on the page, and requests leaving loopback
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "request",
        lambda r: (
            problems.append(r.url) if not r.url.startswith((site.url, "data:", "blob:")) else None
        ),
    )
    await page.goto(f"{site.url}/ops")
    await page.get_by_label("Email").fill(who.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.keyboard.press("Enter")  # the form submits from the keyboard
    return context, page, problems


async def test_theater_admin_sees_charts_and_table_and_exports_csv(
    ops_site: OpsSite, browser: Any
) -> None:
    from playwright.async_api import expect

    context, page, problems = await _login(browser, ops_site, ops_site.admin)
    try:
        await expect(page.locator("#dashboard")).to_be_visible()
        await expect(page.locator("#login-section")).to_be_hidden()
        await page.get_by_label("Group by").select_option("theater")
        await page.get_by_role("button", name="Show").click()
        rows = page.locator("#figures-table tbody tr")
        await expect(rows).to_have_count(1)  # their one theater, not the other
        await expect(rows.first.locator("th")).to_contain_text(ops_site.theater_name)
        await expect(page.locator("#figures-table tfoot th")).to_have_text("Total")
        # Charts: revenue bars by day, occupancy, the funnel, each an image with a label.
        await expect(page.locator("#chart-days svg[role=img] rect.bar").first).to_be_attached()
        await expect(page.locator("#chart-occupancy svg rect.bar")).to_have_count(1)
        await expect(page.locator("#chart-funnel svg rect")).to_have_count(4)
        label = await page.locator("#chart-days svg").get_attribute("aria-label")
        assert label and "Revenue and tickets over" in label
        theaters = page.get_by_label("Theater")
        await expect(theaters.locator("option")).to_have_count(2)  # all mine, and mine
        tickets = await page.locator("#summary .tile dd").first.inner_text()
        assert int(tickets.replace(",", "")) > 0
        # The forecasts section answers, or says it cannot, without breaking the page.
        status = page.locator("#forecasts-status")
        await expect(status).not_to_have_text("Loading forecasts…")
        text = await status.inner_text()
        assert "unavailable" in text or "forecast" in text.lower(), text

        async with page.expect_download() as waiting:
            await page.get_by_role("button", name="Export CSV").click()
        download = await waiting.value
        assert download.suggested_filename.startswith("figures-theater-")
        assert download.suggested_filename.endswith(".csv")
        content = Path(await download.path()).read_text(encoding="utf-8").splitlines()
        assert content[0].startswith("key,label,currency,revenue_cents")
        assert content[-1].startswith("total,Total,")
        assert len(content) >= 3
        assert problems == [], problems
    finally:
        await context.close()


async def test_a_customer_is_told_there_is_no_access(ops_site: OpsSite, browser: Any) -> None:
    from playwright.async_api import expect

    context, page, problems = await _login(browser, ops_site, ops_site.customer)
    try:
        await expect(page.locator("#no-access")).to_be_visible()
        await expect(page.locator("#no-access")).to_contain_text("no access")
        await expect(page.locator("#dashboard")).to_be_hidden()
        await page.get_by_role("button", name="Log out").first.click()
        await expect(page.locator("#login-section")).to_be_visible()
        assert problems == [], problems
    finally:
        await context.close()
