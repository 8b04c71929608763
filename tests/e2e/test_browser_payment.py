"""The payment step of the web page in a real browser (Debian's Chromium through Playwright),
against the real gateway and the local payment provider (localstripe), all on loopback: pay for
a hold with a test card, be declined and pay with another card, wait out the provider being
down with the seats still held, and cancel a booking from "My bookings" with its refund shown.
The card goes from the browser to localstripe only; the gateway sees the token's id."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.models import ModelsConfig
from payments.config import PaymentsConfig
from tests.e2e.test_browser import CHROMIUM, _live, _login, _serve, _wait_states
from tests.gateway_support import PASSWORD, Account

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

PAYS = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0341"
WAIT_MS = 15_000  # a payment: the provider, the show actor and Postgres, all on loopback


@dataclass
class LocalProvider:
    """localstripe in a child process on loopback, its state in a file so it can restart."""

    state: Path
    handle: Any = None
    webhook: str | None = None

    @property
    def url(self) -> str:
        return str(self.handle.url).rstrip("/")

    async def start(self, port: int = 0) -> None:
        from payments.localstripe import start_localstripe

        self.handle = await _maybe(start_localstripe(port=port, state=self.state))
        await self.handle.wait_ready()
        assert self.url.startswith("http://127.0.0.1:"), self.url
        if self.webhook is not None:  # localstripe keeps its webhooks in memory only
            await self.send_webhooks_to(self.webhook)

    async def send_webhooks_to(self, url: str) -> None:
        from payments.localstripe import register_webhook

        self.webhook = url
        await _maybe(register_webhook(self.url, "seatserver", url, "whsec_test"))

    async def stop(self) -> None:
        if self.handle is not None:
            await _maybe(self.handle.stop())

    async def restart(self) -> None:
        await self.start(int(self.url.rsplit(":", 1)[1]))


@dataclass
class Shop:
    url: str
    stripe_url: str
    show_id: int
    alice: Account
    provider: LocalProvider


@dataclass
class Tab:
    """A browser context with one page, what it asked of the network and what went wrong."""

    context: Any
    page: Any
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _maybe(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


@pytest.fixture
async def localstripe(tmp_path: Path) -> AsyncIterator[LocalProvider]:
    provider = LocalProvider(tmp_path / "localstripe.pickle")
    try:
        await provider.start()
        yield provider
    finally:
        await provider.stop()


@pytest.fixture
def models() -> Any:
    return None  # the tests' default: no models, no fraud check


@pytest.fixture
async def shop(
    ray_session: None,
    database_url: str,
    schema: str,
    redis_url: str,
    pool: Any,
    redis: Any,
    localstripe: LocalProvider,
    models: Any,
) -> AsyncIterator[Shop]:
    payments = PaymentsConfig(
        stripe_api_key="sk_test_x",
        stripe_webhook_secret="whsec_test",
        stripe_publishable_key="pk_test_x",
        stripe_api_base=localstripe.url,
        stripe_js_base=localstripe.url,
        reconcile_interval_s=0,
    )
    async for site in _serve(database_url, schema, redis_url, pool, redis, payments, models):
        await localstripe.send_webhooks_to(f"{site.url}/api/v1/payments/webhook")
        # The show is two days away: a cancellation is refunded in full.
        yield Shop(site.url, localstripe.url, site.show_id, site.alice, localstripe)


async def _open(browser: Any, shop: Shop) -> Tab:
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
        "response",
        lambda r: tab.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.on(
        "console",
        lambda message: tab.errors.append(message.text) if message.type == "error" else None,
    )
    await page.goto(f"{shop.url}/#/show/{shop.show_id}")
    await _login(tab, shop.alice)  # type: ignore[arg-type]
    await _live(tab)  # type: ignore[arg-type]
    return tab


def _answers(path: str, method: str = "POST") -> Any:
    return lambda r: r.url.endswith(path) and r.request.method == method


async def _hold(tab: Tab, seats: list[str]) -> str:
    page = tab.page
    for label in seats:
        await page.click(f'[data-seat="{label}"]')
    async with page.expect_response(_answers("/holds")) as answer:
        await page.click("#hold-button")
    response = await answer.value
    assert response.status == 201, await response.text()
    hold_id: str = (await response.json())["hold_id"]
    return hold_id


async def _open_payment(tab: Tab) -> dict[str, Any]:
    from playwright.async_api import expect

    page = tab.page
    async with page.expect_response(_answers("/checkout"), timeout=WAIT_MS) as answer:
        await page.click("#pay-button")
    response = await answer.value
    assert response.status == 201, await response.text()
    await expect(page.locator("#card-number")).to_be_focused()
    payment: dict[str, Any] = await response.json()
    return payment


async def _enter_card(tab: Tab, number: str) -> None:
    page = tab.page
    await page.fill("#card-number", number)
    await page.fill("#card-exp", "12/34")
    await page.fill("#card-cvc", "123")


async def _pay(tab: Tab, number: str) -> Any:
    """Enter a card and press Pay; returns the answer of confirm."""
    page = tab.page
    await _enter_card(tab, number)
    async with page.expect_response(_answers("/confirm"), timeout=WAIT_MS) as answer:
        await page.click("#card-submit")
    return await answer.value


async def _pay_for(tab: Tab, seats: list[str]) -> dict[str, Any]:
    """Hold ``seats`` and pay for them with the good card; returns the booked payment."""
    from playwright.async_api import expect

    await _hold(tab, seats)
    await _open_payment(tab)
    confirmed = await _pay(tab, PAYS)
    assert confirmed.status == 200, await confirmed.text()
    payment: dict[str, Any] = await confirmed.json()
    await expect(tab.page.locator("#confirmation-panel")).to_be_visible(timeout=WAIT_MS)
    return payment


def _assert_clean(tab: Tab, shop: Shop, expected_errors: tuple[str, ...] = ()) -> None:
    """Loopback only; card data only to localstripe's token endpoint; no other errors."""
    ws_url = shop.url.replace("http://", "ws://")
    outside = [
        url
        for _, url, _, _ in tab.requests
        if not url.startswith((shop.url, ws_url, "data:")) and url != f"{shop.stripe_url}/v1/tokens"
    ]
    assert outside == [], outside
    for _, url, _, body in tab.requests:
        if url.startswith(shop.url):
            assert "4242" not in body and "0341" not in body, (url, body)
    unexpected = [e for e in tab.errors if not any(re.search(p, e) for p in expected_errors)]
    assert unexpected == [], unexpected


def _keys(tab: Tab, path: str) -> list[str]:
    return [
        headers.get("idempotency-key", "")
        for method, url, headers, _ in tab.requests
        if method == "POST" and url.endswith(path)
    ]


async def test_pay_for_a_hold_with_a_test_card(shop: Shop, browser: Any, pool: Any) -> None:
    from playwright.async_api import expect

    tab = await _open(browser, shop)
    page = tab.page
    seats = ["C5", "C6"]
    hold_id = await _hold(tab, seats)
    await expect(page.locator("#pay-button")).to_have_text("Pay $24.00")
    await expect(page.locator("#countdown")).to_have_text(re.compile(r"^0[45]:\d\d$"))

    payment = await _open_payment(tab)
    assert payment["status"] == "open" and payment["hold_id"] == hold_id
    assert payment["provider"]["js_base"].rstrip("/") == shop.stripe_url
    # Checkout pushed the hold's expiry, and the countdown (still on screen) shows it.
    await expect(page.locator("#countdown")).to_have_text(re.compile(r"^(09|10):\d\d$"))
    await expect(page.locator("#hold-panel")).to_be_visible()
    await expect(page.locator("#payment-amount")).to_have_text("$24.00")
    await expect(page.locator("#card-submit")).to_have_text("Pay $24.00")
    await expect(page.locator("#card-hint")).to_contain_text("4242 4242 4242 4242")
    await expect(page.locator("#card-hint")).to_contain_text("4000 0000 0000 0341")
    fields = await page.eval_on_selector_all(
        "#card-form input",
        """els => els.map((e) => ({id: e.id, mode: e.inputMode, auto: e.autocomplete,
            label: e.labels.length ? e.labels[0].textContent.trim() : ""}))""",
    )
    assert [(f["id"], f["mode"], f["auto"]) for f in fields] == [
        ("card-number", "numeric", "cc-number"),
        ("card-exp", "numeric", "cc-exp"),
        ("card-cvc", "numeric", "cc-csc"),
    ]
    assert all(f["label"] for f in fields), fields

    # A mistyped number is caught on the page, next to its field.
    await page.fill("#card-number", "4242 4242 4242 4241")
    await page.fill("#card-exp", "12/34")
    await page.fill("#card-cvc", "123")
    await page.click("#card-submit")
    await expect(page.locator("#card-number-error")).to_have_text(re.compile("not valid"))
    await expect(page.locator("#card-number")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#card-number")).to_be_focused()

    confirmed = await _pay(tab, PAYS)
    assert confirmed.status == 200, await confirmed.text()
    paid = await confirmed.json()
    assert paid["status"] == "booked" and paid["booking_id"], paid
    panel = page.locator("#confirmation-panel")
    await expect(panel).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#confirmation-heading")).to_be_focused()
    await expect(page.locator("#confirmation-id")).to_have_text(paid["booking_id"])
    await expect(page.locator("#confirmation-seats")).to_have_text("C5, C6")
    await expect(page.locator("#confirmation-time")).to_contain_text("The Test")
    await expect(panel).to_contain_text("$24.00")
    await expect(page.locator("#hold-panel")).to_be_hidden()
    await expect(page.locator("#payment-panel")).to_be_hidden()
    await _wait_states(tab, seats, "booked", timeout_ms=5000)  # type: ignore[arg-type]

    rows = await pool.fetch("SELECT status, booking_id FROM payments WHERE hold_id = $1", hold_id)
    assert [(r["status"], str(r["booking_id"])) for r in rows] == [("booked", paid["booking_id"])]
    booking = await pool.fetchrow(
        "SELECT status, seats, price_cents FROM bookings WHERE booking_id = $1",
        paid["booking_id"],
    )
    assert booking is not None
    assert (booking["status"], sorted(booking["seats"]), booking["price_cents"]) == (
        "confirmed",
        seats,
        2400,
    )
    checkout_keys, confirm_keys = _keys(tab, "/checkout"), _keys(tab, "/confirm")
    assert len(checkout_keys) == 1 and len(confirm_keys) == 1
    assert all(checkout_keys + confirm_keys)
    _assert_clean(tab, shop)
    await tab.context.close()


async def test_declined_then_another_card(shop: Shop, browser: Any, pool: Any) -> None:
    from playwright.async_api import expect

    tab = await _open(browser, shop)
    page = tab.page
    seats = ["D5", "D6"]
    hold_id = await _hold(tab, seats)
    first = await _open_payment(tab)
    assert first["attempt"] == 1

    declined = await _pay(tab, DECLINED)
    assert declined.status == 402, await declined.text()
    error = (await declined.json())["error"]
    assert error["code"] == "payment_declined"
    assert error["details"]["attempts_left"] == 2 and not error["details"]["hold_released"]
    notice = page.locator("#payment-notice")
    await expect(notice).to_contain_text("declined")
    await expect(notice).to_contain_text("Try another card")
    await expect(notice).to_contain_text("2 attempts left")
    await expect(page.locator("#card-number")).to_have_value("")
    await expect(page.locator("#card-number")).to_be_focused()
    await expect(page.locator("#hold-panel")).to_be_visible()  # the seats are still held
    assert await page.get_attribute('[data-seat="D5"]', "data-state") == "mine"

    # Another card: a new checkout (a new attempt, a new key), then confirm.
    await _enter_card(tab, PAYS)
    async with (
        page.expect_response(_answers("/checkout"), timeout=WAIT_MS) as checkout,
        page.expect_response(_answers("/confirm"), timeout=WAIT_MS) as confirm,
    ):
        await page.click("#card-submit")
    second = await (await checkout.value).json()
    assert second["attempt"] == 2 and second["payment_id"] != first["payment_id"]
    answer = await confirm.value
    assert answer.status == 200, await answer.text()
    paid = await answer.json()
    assert paid["status"] == "booked"
    await expect(page.locator("#confirmation-panel")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#confirmation-seats")).to_have_text("D5, D6")
    await _wait_states(tab, seats, "booked", timeout_ms=5000)  # type: ignore[arg-type]

    rows = await pool.fetch(
        "SELECT payment_id, attempt, status FROM payments WHERE hold_id = $1 ORDER BY attempt",
        hold_id,
    )
    assert [(r["attempt"], r["status"]) for r in rows] == [(1, "failed"), (2, "booked")]
    assert str(rows[1]["payment_id"]) == second["payment_id"]
    bookings = await pool.fetchval(
        "SELECT count(*) FROM bookings WHERE hold_id = $1 AND status = 'confirmed'", hold_id
    )
    assert bookings == 1
    checkout_keys, confirm_keys = _keys(tab, "/checkout"), _keys(tab, "/confirm")
    assert len(checkout_keys) == 2 and len(confirm_keys) == 2
    assert len(set(checkout_keys + confirm_keys)) == 4
    # The decline is the one failure the page expects (Chromium logs it to the console too).
    _assert_clean(tab, shop, expected_errors=(r"^402 .*/confirm$", r"status of 402"))
    await tab.context.close()


async def test_my_bookings_cancel_shows_the_refund(shop: Shop, browser: Any, pool: Any) -> None:
    from playwright.async_api import expect

    tab = await _open(browser, shop)
    page = tab.page
    paid = await _pay_for(tab, ["E5", "E6"])
    booking_id = paid["booking_id"]

    await page.click("#bookings-link")
    await expect(page).to_have_url(re.compile(r"#/bookings$"))
    await expect(page.locator("h1")).to_have_text("My bookings")
    card = page.locator(f'[data-booking="{booking_id}"]')
    await expect(card).to_contain_text("The Test")
    await expect(card).to_contain_text("Seats E5, E6")
    await expect(card).to_contain_text("Confirmed")

    await card.locator('[data-action="cancel"]').click()
    await expect(card.locator('[data-action="keep"]')).to_be_focused()
    async with page.expect_response(_answers("/cancel"), timeout=WAIT_MS) as answer:
        await card.locator('[data-action="confirm-cancel"]').click()
    response = await answer.value
    assert response.status == 200, await response.text()
    refund = (await response.json())["refund"]
    assert refund["amount_cents"] == 2400, refund  # more than two hours before the show
    status = card.locator(".booking-status")
    await expect(status).to_contain_text("Cancelled")
    await expect(status).to_contain_text(re.compile(r"Refunded \$24\.00|refund of \$24\.00"))
    await expect(card.locator('[data-action="cancel"]')).to_have_count(0)

    row = await pool.fetchrow(
        "SELECT b.status, r.amount_cents, r.reason FROM bookings b "
        "JOIN refunds r ON r.booking_id = b.booking_id WHERE b.booking_id = $1",
        booking_id,
    )
    assert row is not None
    assert (row["status"], row["amount_cents"], row["reason"]) == (
        "cancelled",
        2400,
        "customer_cancel",
    )

    # Read again, the list still tells of the refund; the seats are back on sale.
    await page.reload()
    await expect(card.locator(".booking-status")).to_contain_text(re.compile(r"\$24\.00"))
    await page.goto(f"{shop.url}/#/show/{shop.show_id}")
    await _wait_states(tab, ["E5", "E6"], "available", timeout_ms=5000)  # type: ignore[arg-type]
    _assert_clean(tab, shop)
    await tab.context.close()


async def test_provider_down_keeps_the_seats_and_retries(shop: Shop, browser: Any) -> None:
    """Checkout while the provider is down: 503 with Retry-After; the page says the seats are
    still held, counts down, and retries with the same Idempotency-Key once it is back."""
    from playwright.async_api import expect

    tab = await _open(browser, shop)
    page = tab.page
    seats = ["B8", "B9"]
    await _hold(tab, seats)
    await shop.provider.stop()
    async with page.expect_response(_answers("/checkout"), timeout=WAIT_MS) as answer:
        await page.click("#pay-button")
    down = await answer.value
    assert down.status == 503, await down.text()
    assert (await down.json())["error"]["code"] == "payment_provider_unavailable"
    retry_after = int(down.headers["retry-after"])
    assert retry_after >= 1
    notice = page.locator("#payment-notice")
    await expect(notice).to_contain_text(
        re.compile(
            r"Payment service unavailable, your seats are still held, retrying in \d+ s",
            re.IGNORECASE,
        )
    )
    await expect(page.locator("#hold-panel")).to_be_visible()
    assert await page.get_attribute('[data-seat="B8"]', "data-state") == "mine"

    await shop.provider.restart()
    await expect(page.locator("#card-number")).to_be_focused(timeout=WAIT_MS + retry_after * 1000)
    await expect(notice).to_be_hidden()
    keys = _keys(tab, "/checkout")
    assert len(keys) >= 2 and len(set(keys)) == 1, keys  # one action, one key
    confirmed = await _pay(tab, PAYS)
    assert confirmed.status == 200, await confirmed.text()
    await expect(page.locator("#confirmation-seats")).to_have_text("B8, B9", timeout=WAIT_MS)
    await _wait_states(tab, seats, "booked", timeout_ms=5000)  # type: ignore[arg-type]
    _assert_clean(tab, shop, expected_errors=(r"^503 .*/checkout$", r"status of 503"))
    await tab.context.close()


@pytest.mark.parametrize(
    "models", [ModelsConfig(enabled=False, fraud_check=True, fraud_verify_at=0.05)]
)
async def test_a_checkout_the_fraud_check_doubts_asks_for_the_password(
    shop: Shop, browser: Any, pool: Any
) -> None:
    """With the verify threshold set low, every checkout asks the customer to confirm it is
    them: a wrong password is said so, the right one leads on to the card form, and the seats
    are booked."""
    from playwright.async_api import expect

    tab = await _open(browser, shop)
    page = tab.page
    await _hold(tab, ["C5"])
    async with page.expect_response(_answers("/checkout"), timeout=WAIT_MS) as answer:
        await page.click("#pay-button")
    assert (await answer.value).status == 403
    await expect(page.locator("#step-up-password")).to_be_focused(timeout=WAIT_MS)
    await page.fill("#step-up-password", "not the password")
    async with page.expect_response(_answers("/auth/step-up"), timeout=WAIT_MS) as answer:
        await page.click("#step-up-form button[type=submit]")
    assert (await answer.value).status == 401
    await expect(page.locator("#step-up-error")).to_contain_text("not right")
    await page.fill("#step-up-password", PASSWORD)
    async with page.expect_response(_answers("/checkout"), timeout=WAIT_MS) as answer:
        await page.click("#step-up-form button[type=submit]")
    assert (await answer.value).status == 201
    await expect(page.locator("#card-number")).to_be_focused(timeout=WAIT_MS)
    confirmed = await _pay(tab, PAYS)
    assert confirmed.status == 200, await confirmed.text()
    await expect(page.locator("#confirmation-panel")).to_be_visible(timeout=WAIT_MS)
    devices = {h.get("x-device-id") for _, url, h, _ in tab.requests if "/api/v1/" in url}
    assert len(devices) == 1 and None not in devices  # one browser, one device id
    rows = await pool.fetch("SELECT decision FROM fraud_decisions ORDER BY id")
    assert [r["decision"] for r in rows] == ["verify", "verify"]
    _assert_clean(tab, shop, expected_errors=("403", "401"))
