"""The operator page in a real browser (Debian's Chromium through Playwright) against the real
gateway on loopback, over a small demo: a theater admin logs in, sees the charts, a table of
their theater only and the forecasts section (or its "unavailable"), and exports CSV, but not
model health, experiments nor the audit log; an ops admin pages through the forecasts,
acknowledges an alert, stops an experiment and finds the stop in the audit log; a customer who
logs in is told they have no access."""

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
from gateway.ops import forecasts_refresh
from gateway.ops.monitoring_stats import MODELS
from storage import analytics
from storage import monitoring as monitoring_store
from tests.conftest import TEST_KEYRING
from tests.e2e.test_browser import CHROMIUM
from tests.gateway_support import PASSWORD, Account, gateway_config, make_account

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


PAGE = 25  # forecasts on a page of the table (and in the interval chart)
OPS_ONLY = ("/admin/models/", "/admin/alerts", "/admin/experiments", "/admin/audit")


class NoEngine:
    async def snapshot(self, show_id: int) -> Any:
        raise AssertionError("the operator page opens no seat map")


@dataclass
class OpsSite:
    url: str
    admin: Account
    ops: Account
    customer: Account
    theater_name: str
    alert_id: int
    pool: Any


@pytest.fixture
async def ops_site(
    database_url: str, schema: str, redis_url: str, pool: Any, redis: Any
) -> AsyncIterator[OpsSite]:
    async with pool.acquire() as conn:
        await storage.generate_demo_data(
            conn, scale=0.02, seed=3, today=dt.date.today(), keyring=TEST_KEYRING, progress=False
        )
        while await analytics.refresh_chunk(conn, limit=5000):
            pass
        theater = await conn.fetchrow("SELECT id, name FROM theaters ORDER BY id LIMIT 1")
        alert_id = await monitoring_store.open_alert(
            conn, "latency", "pricing", {"p95_ms": 250.0, "threshold_ms": 200.0}
        )
    assert alert_id is not None
    config = gateway_config(database_url, schema, redis_url)
    admin = await make_account(pool, config, "theater_admin", (theater["id"],))
    ops = await make_account(pool, config, "admin")
    customer = await make_account(pool, config)
    app = create_app(config, engine=NoEngine())
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        assert await forecasts_refresh.refresh(app) > 2 * PAGE  # models off: the naive forecast
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield OpsSite(
            f"http://127.0.0.1:{port}", admin, ops, customer, theater["name"], alert_id, pool
        )
    finally:
        await runner.cleanup()
        keys = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
        if keys:
            await redis.delete(*keys)


async def _login(
    browser: Any, site: OpsSite, who: Account, asked: list[str] | None = None, path: str = "/ops"
) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(
        locale="en-US", accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    page = await context.new_page()
    problems: list[str] = []  # errors on the page, and requests leaving loopback
    page.on("pageerror", lambda error: problems.append(str(error)))
    if asked is not None:
        page.on("request", lambda r: asked.append(r.url))
    page.on(
        "request",
        lambda r: (
            problems.append(r.url) if not r.url.startswith((site.url, "data:", "blob:")) else None
        ),
    )
    await page.goto(f"{site.url}{path}")
    await page.get_by_label("Email").fill(who.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.keyboard.press("Enter")  # the form submits from the keyboard
    return context, page, problems


async def test_theater_admin_sees_charts_and_table_and_exports_csv(
    ops_site: OpsSite, browser: Any
) -> None:
    from playwright.async_api import expect

    asked: list[str] = []
    context, page, problems = await _login(browser, ops_site, ops_site.admin, asked)
    try:
        await expect(page.locator("#dashboard")).to_be_visible()
        await expect(page.locator("#login-section")).to_be_hidden()
        # Model health and experiments are for ops admins: hidden, and never asked for.
        await expect(page.locator("#model-health")).to_be_hidden()
        await expect(page.locator("#experiments")).to_be_hidden()
        await expect(page.locator("#audit")).to_be_hidden()
        await expect(page.get_by_role("heading", name="Model health")).to_have_count(0)
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
        assert not [u for u in asked if any(p in u for p in OPS_ONLY)], asked
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


async def test_an_ops_admin_pages_forecasts_acks_an_alert_and_stops_an_experiment(
    ops_site: OpsSite, browser: Any
) -> None:
    from playwright.async_api import expect

    context, page, problems = await _login(browser, ops_site, ops_site.ops)
    try:
        # The revenue chart's labels lie inside the drawing, and both axes say their unit.
        days = page.locator("#chart-days svg")
        await expect(days.locator("rect.bar").first).to_be_attached()
        outside = await days.evaluate(
            """svg => {
                const box = svg.getBoundingClientRect();
                return [...svg.querySelectorAll("text")].filter((t) => {
                    const r = t.getBoundingClientRect();
                    return r.left < box.left || r.right > box.right;
                }).map((t) => t.textContent);
            }"""
        )
        assert outside == [], outside
        titles = await days.locator("text.axis-title").all_text_contents()
        assert any(t.startswith("Revenue, ") for t in titles), titles
        assert any(t.startswith("Tickets") for t in titles), titles

        # Forecasts: 25 a page, the chart showing the page's shows; next and previous.
        rows = page.locator("#forecasts-table tbody tr")
        await expect(rows).to_have_count(PAGE)
        await expect(page.locator("#chart-forecasts circle")).to_have_count(PAGE)
        pager = page.locator("#forecasts-page")
        await expect(pager).to_contain_text("Page 1 of ")
        previous = page.get_by_role("button", name="Previous")
        await expect(previous).to_be_disabled()
        first_title = await rows.first.locator("th").inner_text()
        label = page.locator("#chart-forecasts text.label").first
        await expect(label).to_have_text(first_title)  # the whole title, on its own line
        page_one = await rows.first.inner_text()
        await page.get_by_role("button", name="Next").click()
        await expect(pager).to_contain_text("Page 2 of ")
        await expect(page.locator("#forecasts-caption")).to_contain_text(f"shows {PAGE + 1}–")
        assert await rows.first.inner_text() != page_one
        await previous.click()
        await expect(pager).to_contain_text("Page 1 of ")
        # Flagged first: likely sell-outs, then likely empty, then the rest.
        await page.get_by_label("Order").select_option("flagged")
        await expect(pager).to_contain_text("Page 1 of ")
        await expect(rows).to_have_count(PAGE)
        flags = [await r.locator("td").last.inner_text() for r in await rows.all()]
        rank = {"Likely to sell out": 0, "Likely to stay empty": 1, "": 2}
        assert [rank[f] for f in flags] == sorted(rank[f] for f in flags), flags

        # Model health: a row per model, and the open alert, acknowledged from the keyboard.
        health = page.locator("#model-health")
        await expect(health.get_by_role("heading", name="Model health")).to_be_visible()
        await expect(page.locator("#models-table tbody tr")).to_have_count(len(MODELS))
        await expect(page.locator("#models-table tbody th")).to_have_text(list(MODELS))
        ack = page.get_by_role("button", name=f"Acknowledge alert {ops_site.alert_id}")
        await ack.focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#alerts-table tbody tr").first).to_contain_text("Yes, ")
        await expect(page.locator("#health-status")).to_have_text(
            f"Alert {ops_site.alert_id} acknowledged."
        )
        async with ops_site.pool.acquire() as conn:
            acked = await conn.fetchrow(
                "SELECT acked_at, acked_by FROM alerts WHERE id = $1", ops_site.alert_id
            )
        assert acked["acked_at"] is not None and acked["acked_by"] == ops_site.ops.user_id

        # Experiments: the pricing experiment runs; Escape keeps it; confirming stops it.
        section = page.locator("#experiments")
        await expect(section.get_by_role("heading", name="Experiments")).to_be_visible()
        article = section.locator("article").first
        badge = article.locator("h3 .badge")
        await expect(badge).to_have_text("running")
        name = (await article.locator("h3").inner_text()).split()[0]
        stop = section.get_by_role("button", name=f"Stop {name}")
        await stop.click()
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(badge).to_have_text("running")
        await stop.click()
        await dialog.get_by_role("button", name=f"Stop {name}", exact=True).click()
        await expect(badge).to_have_text("stopped")
        await expect(stop).to_have_count(0)
        await expect(page.locator("#experiments-status")).to_contain_text(f"{name} stopped")
        async with ops_site.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT status, final_arm FROM experiments WHERE name = $1", name
            )
        assert (row["status"], row["final_arm"]) == ("stopped", "control")

        # The audit log: the stop is there, with who, what and the outcome.
        audit = page.locator("#audit")
        await expect(audit.get_by_role("heading", name="Audit log")).to_be_visible()
        await audit.get_by_label("Action").fill("stop_experiment")
        await audit.get_by_label("Actor (user id)").fill(str(ops_site.ops.user_id))
        await audit.get_by_role("button", name="Search the log").click()
        entries = page.locator("#audit-table tbody tr")
        await expect(entries).to_have_count(1)
        cells = await entries.first.locator("th, td").all_inner_texts()
        assert cells[1:6] == [
            f"user {ops_site.ops.user_id} (admin)",
            "stop_experiment",
            f"experiment {name}",
            "–",
            "200 done",
        ], cells
        assert cells[6] == "POST /api/v1/admin/experiments/{name}/stop", cells
        await expect(page.locator("#audit-status")).to_have_text("1 entry shown.")
        await audit.get_by_label("Action").fill("Not An Action")
        await audit.get_by_role("button", name="Search the log").click()
        await expect(page.locator("#audit-status")).to_contain_text("Check the filters")
        await audit.get_by_label("Action").fill("audit_log.read")
        await audit.get_by_role("button", name="Search the log").click()
        await expect(page.locator("#audit-status")).to_have_text("2 entries shown.")
        assert problems == [], problems
    finally:
        await context.close()


async def test_more_forecasts_load_page_after_page(ops_site: OpsSite, browser: Any) -> None:
    from playwright.async_api import expect

    context, page, problems = await _login(
        browser, ops_site, ops_site.ops, path="/ops?forecast_limit=20"
    )
    try:
        status = page.locator("#forecasts-status")
        more = page.get_by_role("button", name="Load the next shows")
        await expect(status).to_contain_text("20 shows forecast")
        await more.click()
        await expect(status).to_contain_text("40 shows forecast")
        for _ in range(50):  # the rest, 20 at a time, until the API says there is no more
            if not await more.is_visible():
                break
            await more.click()
            await expect(page.locator("#forecasts-more")).to_be_enabled()  # the answer is in
        else:
            raise AssertionError("the forecasts never came to an end")
        total = int((await status.inner_text()).split()[0].replace(",", ""))
        assert total > 50
        await expect(page.locator("#forecasts-page")).to_contain_text(f"of {total:,})")
        assert problems == []
    finally:
        await context.close()
