"""The privacy panel in a real browser: a signed-in customer downloads their data (a JSON file
with their account), then deletes their account: a wrong password is refused in the dialog, the
right one signs them out, and they cannot log in again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from tests.e2e.test_browser import Site, _login, _open
from tests.e2e.test_browser import pytestmark as pytestmark
from tests.gateway_support import PASSWORD, gateway_config, make_account
from tests.integration.shows import make_show


class NoEngine:
    async def snapshot(self, show_id: int) -> Any:
        raise AssertionError("the privacy panel opens no seat map")


@pytest.fixture
async def privacy_site(
    database_url: str, schema: str, redis_url: str, pool: Any, redis: Any
) -> AsyncIterator[Site]:
    config = gateway_config(database_url, schema, redis_url)
    runner = web.AppRunner(create_app(config, engine=NoEngine()))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        show = await make_show(pool)
        alice = await make_account(pool, config)
        bob = await make_account(pool, config)
        yield Site(f"http://127.0.0.1:{port}", show, alice, bob, runner.app)
    finally:
        await runner.cleanup()
        names = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
        if names:
            await redis.delete(*names)


async def test_a_customer_downloads_their_data_and_deletes_their_account(
    browser: Any, privacy_site: Site, pool: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    site, alice = privacy_site, privacy_site.alice
    tab = await _open(browser, site, "#/")
    page = tab.page
    await _login(tab, alice)
    panel = page.locator("#privacy")
    download_button = panel.get_by_role("button", name="Download my data")
    await expect(download_button).to_be_visible(timeout=10_000)

    async with page.expect_download() as started:
        await download_button.click()
    saved = tmp_path / "mine.json"
    await (await started.value).save_as(saved)
    data = json.loads(saved.read_text())
    assert data["account"]["email"] == alice.email and data["account"]["id"] == alice.user_id
    assert "refresh_tokens" in data["tables"] and "generated_at" in data
    await expect(panel.locator("#privacy-status")).to_contain_text("downloaded")

    await panel.get_by_role("button", name="Delete my account…").click()
    dialog = page.get_by_role("dialog", name="Delete your account?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Your password").fill("not my password")
    await dialog.get_by_role("button", name="Delete my account").click()
    await expect(dialog.get_by_role("alert")).to_have_text("That password is not right.")
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT deleted_at FROM users WHERE id = $1", alice.user_id) is None
        )

    await dialog.get_by_label("Your password").fill(PASSWORD)
    await dialog.get_by_role("button", name="Delete my account").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#account-signed-in")).to_be_hidden()
    await expect(page.locator("#account")).to_be_hidden()
    await expect(page.locator("#message")).to_contain_text("Your account is deleted")
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT deleted_at, email_enc FROM users WHERE id = $1", alice.user_id
        )
    assert row["deleted_at"] is not None and row["email_enc"] is None

    await page.click("#account-panel summary")
    await page.fill("#login-email", alice.email)
    await page.fill("#login-password", PASSWORD)
    async with page.expect_response(lambda r: r.url.endswith("/auth/login")) as answer:
        await page.click("#login-submit")
    assert (await answer.value).status == 401
    # The only failures the page saw are the two refusals it was meant to see.
    assert sorted(e.split(" ")[0] for e in tab.errors if e[:3].isdigit()) == ["401", "401"]
