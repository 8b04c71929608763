"""The chat panel in a real browser (Debian's Chromium through Playwright) against the real
gateway, show actors and localstripe on loopback, answered by the local assistant: open the
panel from the keyboard, ask, pick a show from its card, see the hold card with its countdown,
say yes and land on the show page's own payment form for that hold, pay, and close the panel
with Escape (focus back on its button)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.test_browser import CHROMIUM, _login
from tests.e2e.test_browser_payment import (  # noqa: F401
    PAYS,
    WAIT_MS,
    Shop,
    Tab,
    _answers,
    _assert_clean,
    _pay,
    localstripe,
    models,
    shop,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


async def _open_home(browser: Any, shop: Shop) -> Tab:  # noqa: F811
    context = await browser.new_context(
        locale="en-US", timezone_id="America/New_York", viewport={"width": 1280, "height": 900}
    )
    page = await context.new_page()
    tab = Tab(context, page)
    page.on(
        "request",
        lambda r: tab.requests.append((r.method, r.url, r.headers, r.post_data or "")),
    )
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    page.on(
        "console",
        lambda message: tab.errors.append(message.text) if message.type == "error" else None,
    )
    await page.goto(f"{shop.url}/#/")
    await _login(tab, shop.alice)  # type: ignore[arg-type]
    return tab


async def _ask(tab: Tab, text: str) -> None:
    page = tab.page
    await page.fill("#chat-input", text)
    await page.press("#chat-input", "Enter")


async def test_the_chat_panel_finds_a_show_holds_and_opens_the_payment_form(
    shop: Shop,  # noqa: F811
    browser: Any,
) -> None:
    from playwright.async_api import expect

    tab = await _open_home(browser, shop)
    page = tab.page
    toggle = page.locator("#chat-toggle")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#chat-panel")).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(page.locator("#chat-input")).to_be_focused()
    await expect(page.locator("#chat-log")).to_have_attribute("aria-live", "polite")
    await expect(page.locator("#chat-panel")).to_have_attribute("data-state", "ready")

    await _ask(tab, "drama movies")
    pick = page.locator(f'.chat-pick[data-show-id="{shop.show_id}"]')
    await expect(pick).to_contain_text("The Test")
    await pick.click()
    await expect(page.locator(".chat-assistant").last).to_contain_text("How many seats")

    await _ask(tab, "two seats please")
    hold = page.locator(".chat-hold")
    await expect(hold).to_contain_text("Held for you")
    await expect(hold).to_contain_text("$24.00")
    await expect(hold.locator(".chat-countdown")).to_have_text(re.compile(r"^0[45]:\d\d$"))
    hold_id = await hold.get_attribute("data-hold-id")

    # "Yes, check out": the assistant starts the checkout, the page opens its payment form.
    async with page.expect_response(_answers("/checkout"), timeout=WAIT_MS) as answer:
        await hold.locator(".chat-yes").click()
    checkout = page.locator(".chat-checkout")
    await expect(checkout).to_be_visible()
    payment_id = await checkout.get_attribute("data-payment-id")
    response = await answer.value
    assert response.status == 201, await response.text()
    opened = await response.json()
    assert opened["payment_id"] == payment_id and opened["hold_id"] == hold_id
    assert page.url.endswith(f"#/show/{shop.show_id}")
    await expect(page.locator("#payment-panel")).to_be_visible()
    await expect(page.locator("#payment-amount")).to_have_text("$24.00")

    confirmed = await _pay(tab, PAYS)
    assert confirmed.status == 200, await confirmed.text()
    await expect(page.locator("#confirmation-panel")).to_be_visible(timeout=WAIT_MS)

    await page.locator("#chat-input").focus()
    await page.keyboard.press("Escape")
    await expect(page.locator("#chat-panel")).to_be_hidden()
    await expect(toggle).to_be_focused()
    _assert_clean(tab, shop)
    await tab.context.close()
