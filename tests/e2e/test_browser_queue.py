"""The waiting room of a flash sale in a real browser (Debian's Chromium through Playwright)
against the real gateway on loopback: two customers wait in line before the sale (their order
drawn at random when it opens), one leaves and comes back, the sale opens, they are let in one
after the other at the sale's rate and go on to the seat map, where a hold works with the
admission token; a hold with a garbled token, or after the admission was given up elsewhere,
sends the page back to the waiting room with a message."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from gateway import keys
from tests.e2e.test_browser import CHROMIUM, Site, Tab, _is_hold, _live, _login, _open, _serve
from tests.gateway_support import Account, make_account, new_key

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

RATE = 20  # admissions a minute: one every 3 s, so the two customers come in one by one
TOKEN_TTL_S = 600
TEST_S = 120  # the whole test, at most
TURN_MS = 15_000  # the longest wait for one admission (3 s apart, plus the pushes)

# Records each view the page shows (its heading, and the waiting room's notice if shown), so a
# view that lasts a moment (back to the waiting room and straight on again) is seen.
RECORD_VIEWS = """() => {
    window.__views = [];
    const note = () => {
        const h1 = document.querySelector("#view h1");
        const notice = document.querySelector("#queue-notice");
        const entry = (h1 ? h1.textContent : "") + " | "
            + (notice && !notice.hidden ? notice.textContent : "");
        if (window.__views[window.__views.length - 1] !== entry) window.__views.push(entry);
    };
    new MutationObserver(note).observe(document.querySelector("#view"),
        { subtree: true, childList: true, characterData: true, attributes: true });
}"""


# True once the page has shown the waiting room and, after it, the seat map again.
WENT_BACK_AND_ON = """() => {
    const views = window.__views || [];
    const back = views.findIndex((v) => v.startsWith("The Test: waiting room | "));
    return back >= 0 && views.slice(back).some((v) => v.startsWith("The Test | "));
}"""


@dataclass
class FlashSite:
    site: Site
    ops: Account
    queue_opens_at: dt.datetime
    sale_opens_at: dt.datetime


async def _admin(site: Site, account: Account, method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{site.url}/api/v1{path}",
            json=body,
            headers={**account.headers, **new_key()},
        ) as response,
    ):
        assert response.status < 300, await response.text()
        return None if response.status == 204 else await response.json()


async def _set_terms(flash: FlashSite) -> None:
    body = {
        "queue_opens_at": flash.queue_opens_at.isoformat(),
        "sale_opens_at": flash.sale_opens_at.isoformat(),
        "admission_per_min": RATE,
        "token_ttl_s": TOKEN_TTL_S,
    }
    got = await _admin(
        flash.site, flash.ops, "PUT", f"/admin/shows/{flash.site.show_id}/flash-sale", body
    )
    assert got["admission_per_min"] == RATE and got["configured"] is True


@pytest.fixture
async def flash(
    ray_session: None, database_url: str, schema: str, redis_url: str, pool: Any, redis: Any
) -> AsyncIterator[FlashSite]:
    """A show in a flash sale whose queue is open and whose sale opens in ten minutes (the test
    brings it forward); the terms set by an ops admin through the admin API."""
    async for site in _serve(database_url, schema, redis_url, pool, redis):
        ops = await make_account(pool, site.app[keys.CONFIG], "admin")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        sale = FlashSite(site, ops, now - dt.timedelta(minutes=1), now + dt.timedelta(minutes=10))
        await _set_terms(sale)
        status = {"status": "flash_sale"}
        got = await _admin(site, ops, "PUT", f"/admin/shows/{site.show_id}/status", status)
        assert got["status"] == "flash_sale"
        yield sale


def _opens_at(when: dt.datetime) -> re.Pattern[str]:
    """The sale's opening as the page writes it (en-US, the context's New York clock)."""
    local = when.astimezone(ZoneInfo("America/New_York"))
    hour = local.hour % 12 or 12
    return re.compile(rf"drawn at random when the sale opens at {hour}:{local.minute:02d}\W?[AP]M")


async def _waiting(tab: Tab, phase: str, position: str | None = None) -> None:
    from playwright.async_api import expect

    room = tab.page.locator(".queue-room")
    await expect(room).to_have_attribute("data-state", "waiting", timeout=TURN_MS)
    await expect(room).to_have_attribute("data-phase", phase, timeout=TURN_MS)
    if position is not None:
        await expect(room).to_have_attribute("data-position", position, timeout=TURN_MS)


async def _first_admitted(tabs: list[Tab]) -> Tab:
    """The first of ``tabs`` to show its seat map with the time left of its admission."""
    deadline = time.monotonic() + TURN_MS / 1000 * 2
    while True:
        for tab in tabs:
            if await tab.page.locator("#admission-countdown").count():
                return tab
        assert time.monotonic() < deadline, "nobody was let in"
        await asyncio.sleep(0.05)


async def _seat_map(tab: Tab) -> None:
    from playwright.async_api import expect

    page = tab.page
    await expect(page.locator("#admission-countdown")).to_have_text(
        re.compile(r"^(09:[0-5]\d|10:00)$"), timeout=TURN_MS
    )
    await expect(page.locator("#admission-heading")).to_have_text("It's your turn")
    await expect(page.locator("[data-seat]")).to_have_count(60)
    await expect(page.locator(".show-title")).to_be_focused()
    await _live(tab)


async def _hold(tab: Tab, seat: str) -> Any:
    """Click ``seat`` and Hold: the hold's response, and the Admission-Token it carried."""
    page = tab.page
    await page.click(f'[data-seat="{seat}"]')
    async with page.expect_response(_is_hold("POST")) as answer:
        await page.click("#hold-button")
    response = await answer.value
    sent = await response.request.all_headers()
    return response, sent.get("admission-token")


async def _stored_token(tab: Tab, show_id: int) -> str:
    saved = await tab.page.evaluate(
        "(id) => JSON.parse(sessionStorage.getItem(`seatserver.admission.${id}`) || 'null')",
        str(show_id),
    )
    assert saved and saved["token"], saved
    return str(saved["token"])


def _assert_clean(tab: Tab, site: Site, refused: int) -> None:
    """Loopback only, and no error but the ``refused`` holds the test provoked (the 403 and
    Chromium's console line about it)."""
    ws_url = site.url.replace("http://", "ws://")
    outside = [u for u in tab.requests if not u.startswith((site.url, ws_url, "data:"))]
    assert outside == [], outside
    expected = [e for e in tab.errors if e.startswith("403 ") and "/holds" in e]
    console = [e for e in tab.errors if "status of 403" in e]
    others = [e for e in tab.errors if e not in expected and e not in console]
    assert others == [], tab.errors
    assert len(expected) == refused, tab.errors


async def test_two_customers_wait_their_turn_then_hold(flash: FlashSite, browser: Any) -> None:
    async with asyncio.timeout(TEST_S):
        await _wait_their_turn_then_hold(flash, browser)


async def _wait_their_turn_then_hold(flash: FlashSite, browser: Any) -> None:
    from playwright.async_api import expect

    site, show = flash.site, flash.site.show_id

    # Logged out: the waiting room asks for a log-in first and joins nothing.
    alice = await _open(browser, site, f"#/show/{show}")
    page = alice.page
    await expect(page.locator("#view h1")).to_have_text("The Test: waiting room")
    await expect(page.locator("#queue-login")).to_be_visible()
    await expect(page.locator(".queue-room")).to_have_attribute("data-state", "signin")
    assert not [u for u in alice.requests if u.endswith(f"/shows/{show}/queue")]
    assert await page.locator("[data-seat]").count() == 0

    # Logged in, both customers are in line before the sale: no position, the draw explained.
    await _login(alice, site.alice)
    bob = await _open(browser, site, f"#/show/{show}")
    await _login(bob, site.bob)
    for tab in (alice, bob):
        p = tab.page
        await _waiting(tab, "pre_sale", "")
        await expect(p.locator("#queue-position")).to_have_text(_opens_at(flash.sale_opens_at))
        await expect(p.locator("#queue-waiting")).to_have_text("2 people", timeout=TURN_MS)
        await expect(p.locator("#queue-rate")).to_have_text(f"{RATE} people a minute")
        await expect(p.locator("#queue-live")).to_have_attribute("data-status", "live")
        bar = p.locator("#queue-progress")
        await expect(bar).to_have_attribute("role", "progressbar")
        await expect(bar).to_have_attribute("aria-valuenow", "0")
        live = p.locator("#queue-announce")
        await expect(live).to_have_attribute("aria-live", "polite")
        await expect(live).to_contain_text("drawn at random")
        await expect(p.locator("#queue-eta")).to_have_text(re.compile(r"^About \d+ minutes$"))

    # Alice leaves the line and comes back (before the sale: a new draw, no harm done).
    leaving = lambda r: r.url.endswith("/queue") and r.request.method == "DELETE"  # noqa: E731
    async with page.expect_response(leaving) as answer:
        await page.click("#queue-leave")
    assert (await answer.value).status == 204
    await expect(page.locator("#queue-position")).to_have_text("You left the queue.")
    await expect(page.locator("#queue-join")).to_be_focused()
    await expect(bob.page.locator("#queue-waiting")).to_have_text("1 person", timeout=TURN_MS)
    await page.click("#queue-join")
    await _waiting(alice, "pre_sale", "")
    await expect(bob.page.locator("#queue-waiting")).to_have_text("2 people", timeout=TURN_MS)

    # Ops bring the sale forward to two seconds from now: the draw, then one in every 3 s.
    flash.sale_opens_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    await _set_terms(flash)
    first = await _first_admitted([alice, bob])
    second = bob if first is alice else alice
    await expect(first.page.locator("#message")).to_contain_text("It's your turn")
    # The other one is next in line, half way to the front, and told so.
    await _waiting(second, "on_sale", "1")
    await expect(second.page.locator("#queue-position")).to_have_text("You are next.")
    await expect(second.page.locator("#queue-progress")).to_have_attribute("aria-valuenow", "50")
    await expect(second.page.locator("#queue-announce")).to_contain_text("next in line")
    assert await second.page.locator("#admission-countdown").count() == 0

    # The first one's seat map: a hold carries the admission token and works.
    await _seat_map(first)
    response, sent = await _hold(first, "C5")
    assert response.status == 201, await response.text()
    assert sent == await _stored_token(first, show)

    # Then the second one's turn; a garbled token is refused and the page goes back to the
    # waiting room, which (the turn still being theirs) brings it straight back.
    await _seat_map(second)
    token = await _stored_token(second, show)
    await second.page.evaluate(RECORD_VIEWS)
    await second.page.evaluate(
        """([id, token]) => {
            const key = `seatserver.admission.${id}`;
            const saved = JSON.parse(sessionStorage.getItem(key));
            saved.token = token;
            sessionStorage.setItem(key, JSON.stringify(saved));
        }""",
        [str(show), token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")],
    )
    response, sent = await _hold(second, "D5")
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "admission_invalid"
    assert sent != token
    await second.page.wait_for_function(WENT_BACK_AND_ON, timeout=TURN_MS)
    await _seat_map(second)
    views = await second.page.evaluate("window.__views")
    back = [v for v in views if v.startswith("The Test: waiting room | ")]
    assert back and "could not be checked" in back[0], views
    assert views[-1].startswith("The Test | "), views
    response, sent = await _hold(second, "D5")
    assert response.status == 201, await response.text()
    assert sent == token  # the same admission, read again from the queue

    # The first one's admission is given up elsewhere (another tab): the next hold is refused,
    # and the waiting room says why and puts them back in line, where their turn comes again.
    await first.page.click("#release-button")
    await expect(first.page.locator("#hold-panel")).to_be_hidden()
    account = site.alice if first is alice else site.bob
    await _admin(site, account, "DELETE", f"/shows/{show}/queue")
    response, _ = await _hold(first, "C6")
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "admission_expired"
    await expect(first.page.locator("#view h1")).to_have_text("The Test: waiting room")
    await expect(first.page.locator("#view h1")).to_be_focused()
    await expect(first.page.locator("#queue-notice")).to_have_text(
        "Your turn to choose seats has ended. You are back in the queue."
    )
    await expect(first.page.locator("#message")).to_contain_text("Your turn to choose seats")
    await _waiting(first, "on_sale", "1")
    await _seat_map(first)
    response, sent = await _hold(first, "C6")
    assert response.status == 201, await response.text()
    assert sent == await _stored_token(first, show)

    _assert_clean(first, site, refused=1)
    _assert_clean(second, site, refused=1)
    for tab in (alice, bob):
        await tab.context.close()


async def test_the_page_goes_on_to_the_seat_map_when_the_sale_ends(
    flash: FlashSite, browser: Any
) -> None:
    from playwright.async_api import expect

    async with asyncio.timeout(TEST_S):
        site, show = flash.site, flash.site.show_id
        alice = await _open(browser, site, f"#/show/{show}")
        await _login(alice, site.alice)
        await _waiting(alice, "pre_sale", "")
        # Ops take the show out of flash-sale mode: those in line are told, and go on.
        got = await _admin(
            site, flash.ops, "PUT", f"/admin/shows/{show}/status", {"status": "on_sale"}
        )
        assert got["status"] == "on_sale"
        page = alice.page
        await expect(page.locator("#message")).to_contain_text(
            "The flash sale is over", timeout=TURN_MS
        )
        await expect(page.locator("[data-seat]")).to_have_count(60)
        assert await page.locator("#admission-countdown").count() == 0
        response, sent = await _hold(alice, "C5")
        assert response.status == 201, await response.text()
        assert sent is None  # no admission needed any more
        _assert_clean(alice, site, refused=0)
        await alice.context.close()
