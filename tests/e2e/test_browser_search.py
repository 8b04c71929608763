"""The search box in a real browser: suggestions while typing, results with the "understood
as" chips, and a show that opens its seat map."""

from __future__ import annotations

from typing import Any

from tests.e2e.test_browser import Site, _assert_loopback_only, _open
from tests.e2e.test_browser import pytestmark as pytestmark
from tests.e2e.test_browser import site as site  # the fixture


async def test_typing_suggests_and_a_query_lists_shows(
    browser: Any,
    site: Site,  # noqa: F811  (the fixture imported above)
) -> None:
    from playwright.async_api import expect

    tab = await _open(browser, site, "#/")
    page = tab.page
    await page.fill("#search-input", "the te")
    suggestion = page.locator("#search-suggestions li", has_text="The Test")
    await expect(suggestion).to_be_visible(timeout=10_000)
    await page.fill("#search-input", "drama movies for two")
    await page.press("#search-input", "Enter")
    panel = page.locator("#search-results")
    await expect(panel.locator("h2")).to_have_text("Results for “drama movies for two”")
    await expect(panel.locator(".search-chip", has_text="Genre: drama")).to_be_visible()
    await expect(panel.locator(".search-chip", has_text="Seats for: 2")).to_be_visible()
    show = panel.locator(f'button[data-show-id="{site.show_id}"]')
    await expect(show).to_be_visible()
    await show.click()
    await expect(page).to_have_url(f"{site.url}/#/show/{site.show_id}")
    await expect(panel).to_be_hidden()
    await expect(page.locator("#seatmap")).to_be_visible(timeout=15_000)
    _assert_loopback_only(tab, site)
    await tab.context.close()
