"""The web page in a real browser (Debian's Chromium through Playwright) against the real
gateway on loopback: two customers on one show see each other's holds live, a hold counts
down and is released, best-available holds, the hold expires on screen, and the seat map works
by keyboard alone with a label on every seat."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web

from gateway import keys
from gateway.app import create_app
from tests.gateway_support import PASSWORD, Account, gateway_config, make_account, new_key
from tests.integration.shows import make_show, start_engine, stop_engine

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

SEAT_LABEL = re.compile(
    r"^Row [A-E], seat \d{1,2}, (standard|wheelchair space|companion seat), \$12\.00, "
    r"(available|selected|held for you|held by someone else|booked|not for sale)$"
)


@dataclass
class Site:
    url: str
    show_id: int
    alice: Account
    bob: Account
    app: web.Application


@dataclass
class Tab:
    """A browser context with one page, and what it asked of the network."""

    context: Any
    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _serve(
    database_url: str,
    schema: str,
    redis_url: str,
    pool: Any,
    redis: Any,
    payments: Any = None,
    models: Any = None,
    **engine_config: Any,
) -> AsyncIterator[Site]:
    config = gateway_config(database_url, schema, redis_url, payments=payments)
    if models is not None:
        config = dataclasses.replace(config, models=models)
    engine = await start_engine(
        database_url, schema, redis_url, channel_prefix=config.redis_prefix, **engine_config
    )
    app = create_app(config, engine=engine.client)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        assert host == "127.0.0.1"
        # Show deltas go out on a Redis channel named by the show id alone: a random first id
        # keeps concurrent test runs on one Redis from hearing each other's shows.
        start = random.randrange(10**12, 10**15)
        await pool.execute(f"ALTER TABLE shows ALTER COLUMN id RESTART WITH {start}")
        show_id = await make_show(pool)
        alice = await make_account(pool, config)
        bob = await make_account(pool, config)
        yield Site(f"http://127.0.0.1:{port}", show_id, alice, bob, app)
    finally:
        await runner.cleanup()
        await stop_engine(engine)
        keys = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
        if keys:
            await redis.delete(*keys)


@pytest.fixture
async def site(
    ray_session: None, database_url: str, schema: str, redis_url: str, pool: Any, redis: Any
) -> AsyncIterator[Site]:
    async for running in _serve(database_url, schema, redis_url, pool, redis):
        yield running


@pytest.fixture
async def short_hold_site(
    ray_session: None, database_url: str, schema: str, redis_url: str, pool: Any, redis: Any
) -> AsyncIterator[Site]:
    async for running in _serve(database_url, schema, redis_url, pool, redis, hold_ttl_s=4.0):
        yield running


async def _open(browser: Any, site: Site, hash_: str) -> Tab:
    context = await browser.new_context(
        locale="en-US", timezone_id="America/New_York", viewport={"width": 1280, "height": 900}
    )
    page = await context.new_page()
    tab = Tab(context, page)
    page.on("request", lambda request: tab.requests.append(request.url))
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    page.on(
        "response",
        lambda r: tab.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.on(
        "console",
        lambda message: tab.errors.append(message.text) if message.type == "error" else None,
    )
    await page.goto(f"{site.url}/{hash_}")
    return tab


def _assert_loopback_only(tab: Tab, site: Site) -> None:
    ws_url = site.url.replace("http://", "ws://")
    outside = [u for u in tab.requests if not u.startswith((site.url, ws_url, "data:"))]
    assert outside == [], outside
    assert tab.errors == [], tab.errors


async def _login(tab: Tab, account: Account) -> None:
    from playwright.async_api import expect

    page = tab.page
    await page.click("#account-panel summary")
    await page.fill("#login-email", account.email)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#account-signed-in")).to_be_visible()
    await expect(page.locator("#login-email")).to_be_hidden()


async def _live(tab: Tab) -> None:
    from playwright.async_api import expect

    await expect(tab.page.locator("#live-status")).to_have_attribute("data-status", "live")


def _is_hold(method: str) -> Any:
    return lambda r: "/holds" in r.url and r.request.method == method


async def _states(tab: Tab, labels: list[str]) -> list[str]:
    return [
        await tab.page.get_attribute(f'[data-seat="{label}"]', "data-state") for label in labels
    ]


async def _wait_states(tab: Tab, labels: list[str], state: str, timeout_ms: float) -> None:
    await tab.page.wait_for_function(
        """([labels, state]) => labels.every(
            (l) => document.querySelector(`[data-seat="${l}"]`)?.dataset.state === state)""",
        arg=[labels, state],
        timeout=timeout_ms,
        polling=20,
    )


async def test_two_customers_see_each_others_holds_live(
    site: Site, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    alice = await _open(browser, site, f"#/show/{site.show_id}")
    bob = await _open(browser, site, f"#/show/{site.show_id}")
    await _login(alice, site.alice)
    await _login(bob, site.bob)
    await _live(alice)
    await _live(bob)

    seats = ["C5", "C6"]
    for label in seats:
        await alice.page.click(f'[data-seat="{label}"]')
    assert await _states(alice, seats) == ["selected", "selected"]
    assert await alice.page.get_attribute('[data-seat="C5"]', "aria-pressed") == "true"
    async with alice.page.expect_response(_is_hold("POST")) as answer:
        await alice.page.click("#hold-button")
    response = await answer.value
    answered = time.monotonic()
    assert response.status == 201, await response.text()
    assert sorted((await response.json())["seats"]) == seats

    # The other customer sees exactly those two seats taken within a second of the answer.
    await _wait_states(bob, seats, "held", timeout_ms=1000)
    assert time.monotonic() - answered < 1.0
    held = await bob.page.eval_on_selector_all(
        '[data-seat][data-state="held"]', "els => els.map((e) => e.dataset.seat)"
    )
    assert sorted(held) == seats
    assert await _states(alice, seats) == ["mine", "mine"]

    # A visible countdown (mm:ss) that goes down.
    countdown = alice.page.locator("#countdown")
    await expect(countdown).to_have_text(re.compile(r"^0[45]:\d\d$"))
    first = await countdown.text_content()
    await alice.page.wait_for_timeout(1300)
    assert (await countdown.text_content()) != first
    await expect(alice.page.locator("#hold-total")).to_have_text("$24.00")
    await expect(alice.page.locator("#hold-seats")).to_have_text("C5, C6")

    shot = tmp_path / "seatmap.png"
    await alice.page.locator(".show-page").screenshot(path=str(shot))
    print(f"seat map screenshot: {shot}")

    async with alice.page.expect_response(_is_hold("DELETE")) as answer:
        await alice.page.click("#release-button")
    assert (await answer.value).status == 200
    await _wait_states(bob, seats, "available", timeout_ms=2000)
    await _wait_states(alice, seats, "available", timeout_ms=2000)
    await expect(alice.page.locator("#hold-panel")).to_be_hidden()

    # "Best 2" in the second browser holds two seats next to each other; the first sees them.
    await bob.page.fill("#best-count", "2")
    await bob.page.select_option("#best-category", "standard")
    async with bob.page.expect_response(_is_hold("POST")) as answer:
        await bob.page.click("#best-button")
    response = await answer.value
    assert response.status == 201, await response.text()
    best = (await response.json())["seats"]
    assert len(best) == 2
    await _wait_states(bob, best, "mine", timeout_ms=1000)
    await _wait_states(alice, best, "held", timeout_ms=1000)
    await expect(bob.page.locator("#countdown")).to_have_text(re.compile(r"^0[45]:\d\d$"))

    # Someone else's seat does not become mine by clicking it.
    await alice.page.click(f'[data-seat="{best[0]}"]', force=True)  # aria-disabled
    assert await _states(alice, [best[0]]) == ["held"]
    await expect(alice.page.locator("#message")).to_contain_text("held by someone else")

    for tab in (alice, bob):
        _assert_loopback_only(tab, site)
        await tab.context.close()


async def test_keyboard_only_and_labels(site: Site, browser: Any) -> None:
    from playwright.async_api import expect

    tab = await _open(browser, site, f"#/show/{site.show_id}")
    page = tab.page
    await _login(tab, site.alice)
    await _live(tab)

    # Every seat is a labelled button; exactly one is in the tab order (roving tabindex).
    seats = await page.eval_on_selector_all(
        "[data-seat]",
        """els => els.map((e) => ({seat: e.dataset.seat, role: e.getAttribute("role"),
            label: e.getAttribute("aria-label"), tabindex: e.getAttribute("tabindex"),
            pressed: e.getAttribute("aria-pressed")}))""",
    )
    assert len(seats) == 60
    for seat in seats:
        assert seat["role"] == "button" and seat["pressed"] == "false", seat
        assert SEAT_LABEL.match(seat["label"] or ""), seat
    assert [s["tabindex"] for s in seats].count("0") == 1
    labels = {s["seat"]: s["label"] for s in seats}
    assert labels["C7"] == "Row C, seat 7, standard, $12.00, available"
    assert labels["A1"] == "Row A, seat 1, wheelchair space, $12.00, available"

    async def focused() -> dict[str, Any]:
        return await page.evaluate(
            """() => ({seat: document.activeElement?.dataset?.seat ?? null,
                id: document.activeElement?.id ?? null})"""
        )

    # Tab from the top of the page to the seat map.
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(15):
        await page.keyboard.press("Tab")
        if (await focused())["seat"]:
            break
    start = (await focused())["seat"]
    assert start, "Tab never reached a seat"

    # Arrows move by column within a row and by row between rows.
    await page.keyboard.press("ArrowRight")
    right = (await focused())["seat"]
    assert right != start and right[0] == start[0]
    await page.keyboard.press("ArrowDown")
    down = (await focused())["seat"]
    assert down[0] == chr(ord(right[0]) + 1)
    await page.keyboard.press("ArrowUp")
    assert (await focused())["seat"] == right
    await page.keyboard.press("Home")
    assert (await focused())["seat"] == f"{right[0]}1"
    await page.keyboard.press("End")
    assert (await focused())["seat"] == f"{right[0]}12"
    await page.keyboard.press("ArrowLeft")
    chosen = (await focused())["seat"]
    assert chosen == f"{right[0]}11"

    # Space selects; the focus outline shows.
    await page.keyboard.press("Space")
    seat = page.locator(f'[data-seat="{chosen}"]')
    await expect(seat).to_have_attribute("data-state", "selected")
    await expect(seat).to_have_attribute("aria-pressed", "true")
    ring = await page.eval_on_selector(
        f'[data-seat="{chosen}"] .seat-ring', "e => getComputedStyle(e).stroke"
    )
    assert ring not in ("none", ""), ring

    # Tab on to the hold button (the rest of the map is one tab stop) and press Enter.
    for _ in range(5):
        await page.keyboard.press("Tab")
        if (await focused())["id"] == "hold-button":
            break
    assert (await focused())["id"] == "hold-button"
    async with page.expect_response(_is_hold("POST")) as answer:
        await page.keyboard.press("Enter")
    assert (await answer.value).status == 201
    await expect(seat).to_have_attribute("data-state", "mine")
    await expect(seat).to_have_attribute("aria-label", re.compile(r", held for you$"))
    await expect(page.locator("#message")).to_contain_text(f"Held seat {chosen}")

    # Focus moved to Release; Enter releases.
    assert (await focused())["id"] == "release-button"
    async with page.expect_response(_is_hold("DELETE")) as answer:
        await page.keyboard.press("Enter")
    assert (await answer.value).status == 200
    await expect(seat).to_have_attribute("data-state", "available")

    _assert_loopback_only(tab, site)
    await tab.context.close()


async def test_browse_to_a_show_and_back(site: Site, browser: Any) -> None:
    """City → day → movie → showtime → seat map, with the location in the hash and the back
    button working."""
    from playwright.async_api import expect

    tab = await _open(browser, site, "")
    page = tab.page
    await page.click("text=Testville 1")
    await expect(page).to_have_url(re.compile(r"#/city/\d+$"))
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    day = starts.astimezone(ZoneInfo("America/New_York")).date().isoformat()
    await page.click(f'a.day-chip[href$="date={day}"]')
    await expect(page.locator(f'a.day-chip[href$="date={day}"]')).to_have_attribute(
        "aria-current", "date"
    )
    await page.click("text=The Test")
    await page.click(f'a.showtime[href="#/show/{site.show_id}"]')
    await expect(page).to_have_url(re.compile(rf"#/show/{site.show_id}$"))
    await expect(page.locator(".show-title")).to_have_text("The Test")
    await expect(page.locator("[data-seat]")).to_have_count(60)
    await expect(page.locator("#breadcrumbs")).to_contain_text("Testville 1")
    legend = page.locator("#legend-categories")
    await expect(legend).to_contain_text("Standard")
    await expect(legend).to_contain_text("$12.00")
    await _live(tab)

    await page.go_back()
    await expect(page).to_have_url(re.compile(r"#/city/\d+/movie/\d+\?date="))
    await expect(page.locator("h1")).to_have_text("The Test")
    await page.go_forward()
    await expect(page.locator("[data-seat]")).to_have_count(60)
    _assert_loopback_only(tab, site)
    await tab.context.close()


async def test_hold_counts_down_to_expired(short_hold_site: Site, browser: Any) -> None:
    from playwright.async_api import expect

    site = short_hold_site
    tab = await _open(browser, site, f"#/show/{site.show_id}")
    page = tab.page
    await _login(tab, site.bob)
    await _live(tab)
    await page.click('[data-seat="E3"]')
    async with page.expect_response(_is_hold("POST")) as answer:
        await page.click("#hold-button")
    assert (await answer.value).status == 201
    await expect(page.locator("#countdown")).to_have_text(re.compile(r"^00:0[1-4]$"))
    await expect(page.locator("#countdown")).to_have_text("00:00", timeout=8000)
    await expect(page.locator("#hold-panel")).to_have_attribute("data-expired", "true")
    await expect(page.locator("#hold-heading")).to_have_text("Hold expired")
    # The server expires it too, and says so on the live feed.
    await _wait_states(tab, ["E3"], "available", timeout_ms=5000)
    await page.click("#release-button")  # now "Dismiss"
    await expect(page.locator("#hold-panel")).to_be_hidden()
    _assert_loopback_only(tab, site)
    await tab.context.close()


async def test_reconnects_after_the_server_drops_the_socket(site: Site, browser: Any) -> None:
    """Closed with 1013 ("try again later"), the page says so, reconnects with backoff, and
    its fresh snapshot shows what changed meanwhile."""
    from playwright.async_api import expect

    tab = await _open(browser, site, f"#/show/{site.show_id}")
    page = tab.page
    await _live(tab)
    await page.evaluate(
        """() => {
            window.seen = [];
            const badge = document.querySelector("#live-status");
            new MutationObserver(() => window.seen.push(badge.dataset.status))
                .observe(badge, {attributes: true, attributeFilter: ["data-status"]});
        }"""
    )
    sockets = list(site.app[keys.SOCKETS])
    assert len(sockets) == 1
    await sockets[0].close(code=1013, message=b"try again later")
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            f"{site.url}/api/v1/shows/{site.show_id}/holds",
            json={"seats": ["B2", "B3"]},
            headers={**site.bob.headers, **new_key()},
        )
        assert answer.status == 201, await answer.text()
    await _wait_states(tab, ["B2", "B3"], "held", timeout_ms=10000)
    await expect(page.locator("#live-status")).to_have_attribute("data-status", "live")
    assert "reconnecting" in await page.evaluate("window.seen")
    assert len(site.app[keys.SOCKETS]) == 1
    _assert_loopback_only(tab, site)
    await tab.context.close()
