"""The account area in a real browser: a customer who logs in sees their notification settings,
turns kinds on and off per channel (saved as they click), adds a phone number (texts open up),
removes a push device and the number again; the area goes when they log out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import storage
from gateway.app import create_app
from storage import notify
from tests.conftest import TEST_KEYRING
from tests.e2e.test_browser import Site, _login, _open
from tests.e2e.test_browser import pytestmark as pytestmark
from tests.gateway_support import gateway_config, make_account
from tests.integration.shows import make_show


class NoEngine:
    async def snapshot(self, show_id: int) -> Any:
        raise AssertionError("the account area opens no seat map")


@pytest.fixture
async def account_site(
    database_url: str, schema: str, redis_url: str, pool: Any, redis: Any
) -> AsyncIterator[Site]:
    config = gateway_config(database_url, schema, redis_url)
    app = create_app(config, engine=NoEngine())
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        show = await make_show(pool)
        alice = await make_account(pool, config)
        bob = await make_account(pool, config)
        yield Site(f"http://127.0.0.1:{port}", show, alice, bob, app)
    finally:
        await runner.cleanup()
        keys = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
        if keys:
            await redis.delete(*keys)


async def _saved(page: Any, action: Any, path: str, method: str = "PUT") -> Any:
    async with page.expect_response(
        lambda r: path in r.url and r.request.method == method
    ) as answer:
        await action()
    return await answer.value


async def test_a_customer_sets_their_notifications(
    browser: Any, account_site: Site, pool: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    site, alice = account_site, account_site.alice
    tab = await _open(browser, site, "#/")
    page = tab.page
    crashes: list[str] = []  # exceptions thrown on the page
    page.on("pageerror", lambda error: crashes.append(str(error)))
    area = page.locator("#account")
    await expect(area).to_be_hidden()
    await _login(tab, alice)
    await expect(area).to_be_visible()
    await expect(area.locator("#privacy")).to_have_count(1)  # the privacy panel's place
    panel = area.locator("#notifications")
    confirmation_email = panel.get_by_role("checkbox", name="Booking confirmed by email")
    await expect(confirmation_email).to_be_checked(timeout=10_000)
    reminder_text = panel.get_by_role("checkbox", name="Reminder by text")
    await expect(reminder_text).to_be_disabled()  # no phone number yet
    await expect(
        panel.get_by_role("checkbox", name="Your turn in a queue by email")
    ).not_to_be_checked()

    # A click saves the one cell.
    reminder_email = panel.get_by_role("checkbox", name="Reminder by email")
    answer = await _saved(page, reminder_email.uncheck, "/api/v1/me/notifications")
    assert answer.status == 200
    await expect(panel.locator("#notify-status")).to_have_text("Saved.")
    async with pool.acquire() as conn:
        assert (await notify.preferences(conn, alice.user_id))["reminder"]["email"] is False

    # A number that is not one is refused on the page; a good one opens texts up.
    phone = panel.get_by_label("Phone number for texts")
    await phone.fill("12345")
    await phone.press("Enter")
    await expect(panel.locator("#notify-status")).to_contain_text("international format")
    await phone.fill("+1 415 555 0123")
    await _saved(page, lambda: phone.press("Enter"), "/api/v1/me/phone")
    await expect(panel.locator("#notify-phone-hint")).to_contain_text("ending in 23")
    await expect(reminder_text).to_be_enabled()
    await _saved(page, reminder_text.check, "/api/v1/me/notifications")
    async with pool.acquire() as conn:
        user = await storage.get_user(conn, alice.user_id, keyring=TEST_KEYRING)
        assert user.phone == "+14155550123"
        assert (await notify.preferences(conn, alice.user_id))["reminder"]["sms"] is True

    # A device registered by the app is listed, and can be removed here.
    async with aiohttp.ClientSession() as http:
        await http.post(
            f"{site.url}/api/v1/me/devices",
            json={"token": "dGVzdA:APA91b" + "z" * 60, "platform": "android"},
            headers=alice.headers,
        )
    await page.evaluate("window.SeatserverAccount.reload()")
    devices = panel.locator("#notify-devices li")
    await expect(devices).to_have_count(1)
    await expect(devices).to_contain_text("Android phone")
    await _saved(page, devices.get_by_role("button").click, "/api/v1/me/devices/", "DELETE")
    await expect(panel.locator("#notify-devices li")).to_have_count(0)
    async with pool.acquire() as conn:
        assert await notify.devices_of(conn, alice.user_id) == []

    # Removing the number turns texts off.
    remove = panel.get_by_role("button", name="Remove number")
    await _saved(page, remove.click, "/api/v1/me/phone", "DELETE")
    await expect(reminder_text).to_be_disabled()
    await expect(reminder_text).not_to_be_checked()
    shot = tmp_path / "account.png"
    await area.screenshot(path=str(shot))
    print(f"account area screenshot: {shot}")

    # The bar's Account button brings the area into view; logging out hides it.
    await page.click("#account-link")
    await expect(page.locator("#account-area-heading")).to_be_focused()
    await page.click("#logout-button")
    await expect(area).to_be_hidden()
    await expect(panel.locator("table")).to_have_count(0)
    outside = [u for u in tab.requests if not u.startswith((site.url, "data:"))]
    assert outside == []
    assert [e for e in tab.errors if "/api/v1/me/" in e] == []  # no refusal of ours
    assert crashes == []
    await tab.context.close()
