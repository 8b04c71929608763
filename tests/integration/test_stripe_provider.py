"""``StripeProvider`` through the real SDK against localstripe on loopback, the breaker in
front of it with a fault proxy, and the loopback runner itself. No database."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from payments.breaker import CircuitBreaker, GuardedProvider
from payments.localstripe import LocalStripe
from payments.localstripe import main as localstripe_main
from payments.provider import (
    PaymentDeclined,
    ProviderRejected,
    ProviderUnavailable,
    WebhookEvent,
    WebhookRejected,
)
from payments.stripe_provider import StripeProvider
from tests.payments_support import (
    Delivery,
    FaultProxy,
    delivery_about,
    running_localstripe,
    webhook_inbox,
)

SECRET = "sk_test_seatserver"
PUBLISHABLE = "pk_test_seatserver"
WEBHOOK_SECRET = "whsec_test_" + os.urandom(8).hex()
VISA = "pm_card_visa"
DECLINED = "pm_card_chargeCustomerFail"  # 4000000000000341: localstripe declines at charge


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


def make(api_base: str, *, secret: str = WEBHOOK_SECRET, timeout_s: float = 5.0) -> StripeProvider:
    return StripeProvider(
        SECRET, secret, publishable_key=PUBLISHABLE, api_base=api_base, timeout_s=timeout_s
    )


@pytest.fixture(scope="module")
async def local() -> AsyncIterator[LocalStripe]:
    async with running_localstripe() as stripe:
        yield stripe


@pytest.fixture
async def provider(local: LocalStripe) -> AsyncIterator[StripeProvider]:
    provider = make(local.url)
    yield provider
    await provider.close()


@pytest.fixture
async def proxy(local: LocalStripe) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(local.url) as proxy:
        yield proxy


async def paid(provider: StripeProvider, amount: int = 1500) -> str:
    intent = await provider.create_intent(
        amount_cents=amount, currency="eur", idempotency_key=key(), metadata={}
    )
    done = await provider.confirm_intent(intent.ref, payment_method=VISA, idempotency_key=key())
    assert done.status == "succeeded"
    return intent.ref


# -- intents ------------------------------------------------------------------------------------


async def test_create_and_retrieve_an_intent(provider: StripeProvider) -> None:
    intent = await provider.create_intent(
        amount_cents=2450,
        currency="EUR",
        idempotency_key=key(),
        metadata={"hold_id": "h_1", "attempt": "1"},
        description="Show 1, seats A1, A2",  # not sent to localstripe, which refuses it
    )
    assert intent.ref.startswith("pi_")
    assert intent.status == "requires_payment_method"
    assert (intent.amount_cents, intent.currency) == (2450, "eur")
    assert intent.metadata == {"hold_id": "h_1", "attempt": "1"}
    assert intent.client_secret and intent.client_secret.startswith(intent.ref + "_secret_")
    assert intent.last_error is None
    assert await provider.retrieve_intent(intent.ref) == intent


async def test_confirm_with_a_good_card_succeeds(provider: StripeProvider) -> None:
    intent = await provider.create_intent(
        amount_cents=900, currency="usd", idempotency_key=key(), metadata={"k": "v"}
    )
    done = await provider.confirm_intent(intent.ref, payment_method=VISA, idempotency_key=key())
    assert done.status == "succeeded" and done.ref == intent.ref
    assert done.metadata == {"k": "v"} and done.last_error is None
    assert (await provider.retrieve_intent(intent.ref)).status == "succeeded"


async def test_a_declined_card_raises_and_the_intent_wants_another(
    provider: StripeProvider,
) -> None:
    intent = await provider.create_intent(
        amount_cents=900, currency="eur", idempotency_key=key(), metadata={}
    )
    with pytest.raises(PaymentDeclined) as info:
        await provider.confirm_intent(intent.ref, payment_method=DECLINED, idempotency_key=key())
    assert info.value.code == "card_declined"
    after = await provider.retrieve_intent(intent.ref)
    assert after.status == "requires_payment_method"
    assert after.last_error == "card_declined"
    # localstripe (unlike Stripe) cannot confirm a declined intent again: a new attempt needs a
    # new intent. The refusal is a ProviderRejected.
    with pytest.raises(ProviderRejected):
        await provider.confirm_intent(intent.ref, payment_method=VISA, idempotency_key=key())


async def test_unknown_intent_and_bad_key_are_rejected(
    provider: StripeProvider, local: LocalStripe
) -> None:
    with pytest.raises(ProviderRejected) as info:
        await provider.retrieve_intent("pi_doesnotexist")
    assert info.value.code == "http_404"
    stranger = StripeProvider(
        "nope", WEBHOOK_SECRET, publishable_key=PUBLISHABLE, api_base=local.url
    )
    try:
        with pytest.raises(ProviderRejected) as info:
            await stranger.retrieve_intent("pi_doesnotexist")
        assert info.value.code == "http_401"
    finally:
        await stranger.close()


async def test_cancel_then_cancel_again(provider: StripeProvider) -> None:
    intent = await provider.create_intent(
        amount_cents=700, currency="eur", idempotency_key=key(), metadata={}
    )
    canceled = await provider.cancel_intent(intent.ref, idempotency_key=key())
    assert canceled.status == "canceled"
    again = await provider.cancel_intent(intent.ref, idempotency_key=key())
    assert again.status == "canceled" and again.ref == intent.ref


async def test_a_succeeded_intent_cannot_be_canceled(provider: StripeProvider) -> None:
    ref = await paid(provider)
    with pytest.raises(ProviderRejected):
        await provider.cancel_intent(ref, idempotency_key=key())
    assert (await provider.retrieve_intent(ref)).status == "succeeded"


# -- refunds ------------------------------------------------------------------------------------


async def test_full_and_partial_refunds(provider: StripeProvider) -> None:
    full_ref = await paid(provider, 1500)
    full = await provider.refund(
        full_ref, amount_cents=1500, idempotency_key=key(), metadata={"refund_id": "r1"}
    )
    assert full.ref.startswith("re_")
    assert (full.intent_ref, full.amount_cents, full.status) == (full_ref, 1500, "succeeded")
    assert full.metadata == {"refund_id": "r1"}
    assert await provider.refunds_of(full_ref) == [full]

    part_ref = await paid(provider, 2000)
    assert await provider.refunds_of(part_ref) == []
    first = await provider.refund(part_ref, amount_cents=500, idempotency_key=key(), metadata={})
    second = await provider.refund(part_ref, amount_cents=700, idempotency_key=key(), metadata={})
    made = await provider.refunds_of(part_ref)
    assert {r.ref for r in made} == {first.ref, second.ref}
    assert sum(r.amount_cents for r in made) == 1200
    assert all(r.intent_ref == part_ref for r in made)


async def test_refunds_of_an_unpaid_intent_are_none(provider: StripeProvider) -> None:
    intent = await provider.create_intent(
        amount_cents=700, currency="eur", idempotency_key=key(), metadata={}
    )
    assert await provider.refunds_of(intent.ref) == []  # localstripe answers 500 here
    with pytest.raises(ProviderRejected):
        await provider.refund(intent.ref, amount_cents=700, idempotency_key=key(), metadata={})


# -- a card token, as the browser gets one ------------------------------------------------------


async def test_a_browser_card_token_pays(provider: StripeProvider, local: LocalStripe) -> None:
    form = {
        "key": PUBLISHABLE,
        "card[number]": "4242424242424242",
        "card[exp_month]": "12",
        "card[exp_year]": "2030",
        "card[cvc]": "123",
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.post(f"{local.url}/v1/tokens", data=form) as resp,
    ):
        assert resp.status == 200
        token = await resp.json()
    assert token["id"].startswith("tok_")
    card = token["card"]["id"]
    assert card.startswith("card_") and token["card"]["last4"] == "4242"
    intent = await provider.create_intent(
        amount_cents=1100, currency="eur", idempotency_key=key(), metadata={}
    )
    done = await provider.confirm_intent(intent.ref, payment_method=card, idempotency_key=key())
    assert done.status == "succeeded"


def test_public_config(provider: StripeProvider) -> None:
    assert provider.public_config() == {
        "name": "stripe",
        "publishable_key": PUBLISHABLE,
        "js_base": None,
    }
    local = StripeProvider(
        SECRET, WEBHOOK_SECRET, publishable_key=PUBLISHABLE, js_base="http://127.0.0.1:1"
    )
    assert local.public_config()["js_base"] == "http://127.0.0.1:1"


# -- webhooks -----------------------------------------------------------------------------------


@pytest.fixture
async def inbox(local: LocalStripe) -> AsyncIterator[asyncio.Queue[Delivery]]:
    events = ["payment_intent.succeeded", "payment_intent.payment_failed"]
    async with webhook_inbox(local, WEBHOOK_SECRET, events) as received:
        yield received


async def next_about(
    provider: StripeProvider, inbox: asyncio.Queue[Delivery], ref: str
) -> tuple[WebhookEvent, bytes, str]:
    """The next webhook about intent ``ref``, parsed by the provider."""
    payload, signature = await delivery_about(inbox, ref)
    return provider.parse_webhook(payload, signature), payload, signature


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), b"%d." % timestamp + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


async def test_webhooks_of_success_and_decline_are_verified(
    provider: StripeProvider, inbox: asyncio.Queue[Delivery]
) -> None:
    ref = await paid(provider, 1300)
    event, payload, signature = await next_about(provider, inbox, ref)
    assert event.type == "payment_intent.succeeded"
    assert event.event_id.startswith("evt_") and event.created > 0
    assert event.intent is not None
    assert (event.intent.status, event.intent.amount_cents) == ("succeeded", 1300)

    declined = await provider.create_intent(
        amount_cents=800, currency="eur", idempotency_key=key(), metadata={"a": "b"}
    )
    with pytest.raises(PaymentDeclined):
        await provider.confirm_intent(declined.ref, payment_method=DECLINED, idempotency_key=key())
    event, _, _ = await next_about(provider, inbox, declined.ref)
    assert event.type == "payment_intent.payment_failed"
    assert event.intent is not None and event.intent.last_error == "card_declined"
    assert event.intent.metadata == {"a": "b"}


async def test_bad_webhooks_are_rejected(
    provider: StripeProvider, inbox: asyncio.Queue[Delivery]
) -> None:
    ref = await paid(provider, 1400)
    _, payload, signature = await next_about(provider, inbox, ref)

    tampered = payload.replace(b"1400", b"1")
    assert tampered != payload
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(tampered, signature)
    for missing in (None, ""):
        with pytest.raises(WebhookRejected):
            provider.parse_webhook(payload, missing)
    stranger = make("http://127.0.0.1:1", secret="whsec_someone_else")
    try:
        with pytest.raises(WebhookRejected):
            stranger.parse_webhook(payload, signature)
    finally:
        await stranger.close()
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(payload, "t=oops,v1=")

    # A signature of our own making: fresh, it passes; an hour old, it does not.
    now = int(time.time())
    assert provider.parse_webhook(payload, sign(payload, WEBHOOK_SECRET, now)).intent is not None
    with pytest.raises(WebhookRejected, match="tolerance"):
        provider.parse_webhook(payload, sign(payload, WEBHOOK_SECRET, now - 3600))
    # Signed but not an event: rejected too.
    for body in (b"not json", b"[1, 2]", json.dumps({"object": "event"}).encode()):
        with pytest.raises(WebhookRejected):
            provider.parse_webhook(body, sign(body, WEBHOOK_SECRET, now))


# -- faults -------------------------------------------------------------------------------------


async def test_a_provider_that_refuses_connections_is_unavailable(proxy: FaultProxy) -> None:
    provider = make(proxy.url)
    try:
        intent = await provider.create_intent(
            amount_cents=500, currency="eur", idempotency_key=key(), metadata={}
        )
        proxy.mode = "refuse"  # the kept-alive connection is cut too
        with pytest.raises(ProviderUnavailable) as info:
            await provider.retrieve_intent(intent.ref)
        assert info.value.code == "unreachable" and info.value.retry_after >= 1
        proxy.mode = "pass"
        assert (await provider.retrieve_intent(intent.ref)).ref == intent.ref
    finally:
        await provider.close()


async def intent_count(local: LocalStripe) -> int:
    headers = {"Authorization": f"Bearer {SECRET}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{local.url}/v1/payment_intents?limit=1", headers=headers) as resp,
    ):
        assert resp.status == 200
        return int((await resp.json())["total_count"])


async def test_a_lost_answer_is_unavailable_but_the_provider_acted(
    proxy: FaultProxy, provider: StripeProvider, local: LocalStripe
) -> None:
    through = make(proxy.url)
    try:
        before = await intent_count(local)
        proxy.mode = "blackhole_responses"
        with pytest.raises(ProviderUnavailable):
            await through.create_intent(
                amount_cents=500, currency="eur", idempotency_key=key(), metadata={}
            )
        assert await intent_count(local) == before + 1  # made, though the caller never knew
    finally:
        await through.close()


async def test_a_confirm_whose_answer_was_lost_is_retried_with_its_key(
    proxy: FaultProxy, provider: StripeProvider
) -> None:
    """The attach step's answer is lost: the intent has its card but is not confirmed
    (``requires_confirmation``); the same call again, same key, pays it."""
    through = make(proxy.url)
    try:
        intent = await provider.create_intent(
            amount_cents=500, currency="eur", idempotency_key=key(), metadata={}
        )
        confirm_key = key()
        proxy.mode = "blackhole_responses"
        with pytest.raises(ProviderUnavailable):
            await through.confirm_intent(
                intent.ref, payment_method=VISA, idempotency_key=confirm_key
            )
        assert (await provider.retrieve_intent(intent.ref)).status == "requires_confirmation"
        proxy.mode = "pass"
        again = await through.confirm_intent(
            intent.ref, payment_method=VISA, idempotency_key=confirm_key
        )
        assert again.status == "succeeded"
    finally:
        await through.close()


async def test_localstripe_ignores_idempotency_keys(provider: StripeProvider) -> None:
    """What the saga must not count on locally: a retried create with the same key makes a
    second intent (Stripe would answer with the first)."""
    same = key()
    first = await provider.create_intent(
        amount_cents=500, currency="eur", idempotency_key=same, metadata={}
    )
    second = await provider.create_intent(
        amount_cents=500, currency="eur", idempotency_key=same, metadata={}
    )
    assert first.ref != second.ref


async def test_the_breaker_opens_stops_calling_and_closes_after_a_trial(
    proxy: FaultProxy,
) -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=30.0, clock=lambda: now[0])
    inner = make(proxy.url)
    guarded = GuardedProvider(inner, breaker)
    try:
        intent = await guarded.create_intent(
            amount_cents=500, currency="eur", idempotency_key=key(), metadata={}
        )
        proxy.mode = "refuse"
        for _ in range(2):
            with pytest.raises(ProviderUnavailable) as info:
                await guarded.retrieve_intent(intent.ref)
            assert info.value.code == "unreachable"
        assert breaker.state == "open"
        seen = proxy.accepted
        with pytest.raises(ProviderUnavailable) as info:
            await guarded.retrieve_intent(intent.ref)
        assert info.value.code == "circuit_open" and info.value.retry_after == 30.0
        assert proxy.accepted == seen  # the provider was not even tried

        proxy.mode = "pass"
        now[0] += 30.0
        assert breaker.state == "half_open"
        assert (await guarded.retrieve_intent(intent.ref)).ref == intent.ref
        assert proxy.accepted > seen
        assert breaker.state == "closed"
        assert breaker.stats()["opened"] == 1
    finally:
        await guarded.close()


# -- the loopback runner ------------------------------------------------------------------------


def listening_addresses(port: int) -> list[str]:
    """Local addresses in LISTEN on ``port`` (Linux /proc), hex as the kernel writes them."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            for line in f.readlines()[1:]:
                local_address, state = line.split()[1], line.split()[3]
                address, hex_port = local_address.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    found.append(address)
    return found


async def test_localstripe_listens_on_loopback_only(local: LocalStripe) -> None:
    port = int(local.url.rsplit(":", 1)[1])
    addresses = listening_addresses(port)
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("no /proc/net/tcp here")
    assert addresses == ["0100007F"]  # 127.0.0.1, and nothing on IPv6


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com"])
def test_the_runner_refuses_a_non_loopback_host(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        localstripe_main(["--host", host, "--port", "1"])
    assert info.value.code == 2
    assert "loopback" in capsys.readouterr().err


async def test_state_goes_to_the_given_file_only(tmp_path: Path) -> None:
    stock = Path("/tmp/localstripe.pickle")
    before = stock.stat().st_mtime_ns if stock.exists() else None
    state = tmp_path / "state.pickle"
    async with running_localstripe(state=state) as first:
        provider = make(first.url)
        try:
            ref = await paid(provider, 600)
        finally:
            await provider.close()
    assert state.exists()
    async with running_localstripe(state=state) as second:
        provider = make(second.url)
        try:
            assert (await provider.retrieve_intent(ref)).status == "succeeded"
        finally:
            await provider.close()
    after = stock.stat().st_mtime_ns if stock.exists() else None
    assert after == before  # localstripe's own /tmp pickle untouched


async def test_without_state_nothing_is_kept(tmp_path: Path) -> None:
    async with running_localstripe() as first:
        provider = make(first.url)
        try:
            ref = await paid(provider, 600)
        finally:
            await provider.close()
    async with running_localstripe() as second:
        provider = make(second.url)
        try:
            with pytest.raises(ProviderRejected):
                await provider.retrieve_intent(ref)
        finally:
            await provider.close()
