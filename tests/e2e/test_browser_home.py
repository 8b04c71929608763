"""The home page in a real browser: a customer with bookings sees "Recommended for you" with
"Because you booked …" and next-show chips (their theater and usual time marked) that open the
seat map; a visitor sees what is popular in the city they pick, and nothing personal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests.e2e.test_browser import Site, _assert_loopback_only, _login, _open
from tests.e2e.test_browser import pytestmark as pytestmark
from tests.e2e.test_browser import site as site  # the fixture
from tests.integration import home_catalog


async def _catalog(site: Site) -> home_catalog.Catalog:  # noqa: F811
    """The home catalog, with the site's first customer as the one who booked."""
    from gateway import keys

    async with site.app[keys.POOL].acquire() as conn:
        return await home_catalog.build(conn, site.alice.user_id, dt.datetime.now(dt.UTC))


async def test_a_customer_sees_why_and_where_and_a_visitor_what_is_popular(
    browser: Any,
    site: Site,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    catalog = await _catalog(site)
    tab = await _open(browser, site, "#/")
    page = tab.page
    await _login(tab, site.alice)
    movies = page.locator("#home-movies")
    recommended = movies.locator('section[data-kind="recommended"]')
    await expect(recommended.locator("h2")).to_have_text("Recommended for you", timeout=10_000)
    await expect(movies.locator(".home-habits")).to_contain_text("Fav Cinema")
    await expect(movies).not_to_contain_text("null")
    night = recommended.locator(f'li[data-movie="{catalog.movies["Night Chase"]}"]')
    await expect(night.locator(".home-because")).to_have_text("Because you booked Old Action")
    chips = night.locator("a.home-show")
    await expect(chips).to_have_count(3)
    first = chips.nth(0)
    await expect(first).to_have_attribute("data-favourite", "true")
    await expect(first).to_contain_text("Your theater")
    await expect(first).to_contain_text("Your usual time")
    await expect(first).to_contain_text("Fav Cinema")
    await expect(first).to_contain_text("from $12.00")
    await expect(chips.nth(2)).not_to_contain_text("Your usual time")
    shot = tmp_path / "home.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"home page screenshot: {shot}")
    show_id = await first.get_attribute("data-show")
    await first.click()
    await expect(page).to_have_url(f"{site.url}/#/show/{show_id}")
    await expect(page.locator(".show-title")).to_have_text("Night Chase")
    await expect(page.locator("[data-seat]")).to_have_count(60, timeout=15_000)
    _assert_loopback_only(tab, site)
    await tab.context.close()

    visitor = await _open(browser, site, "#/")
    page = visitor.page
    movies = page.locator("#home-movies")
    await expect(movies.locator("#home-city")).to_be_visible(timeout=10_000)
    await page.select_option("#home-city", str(catalog.city))
    popular = movies.locator('section[data-kind="popular"]')
    await expect(popular.locator("h2")).to_have_text("Popular in Hometown")
    await expect(popular.locator("li.home-movie").first.locator("h3")).to_have_text("Laugh Track")
    await expect(popular.locator("a.home-show").first).to_be_visible()
    await expect(movies.locator('section[data-kind="recommended"]')).to_have_count(0)
    assert await movies.locator(".home-mark").count() == 0
    assert await movies.get_by_text("Because you booked").count() == 0
    _assert_loopback_only(visitor, site)
    await visitor.context.close()
