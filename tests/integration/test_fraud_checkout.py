"""The fraud check inside checkout, on the rules (no model deployed): an ordinary customer pays,
a device that farms accounts is asked to step up and pays once they have, declines on a device
get its next checkout refused without a word of why, and ops see and label every decision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway import keys
from gateway.models import ModelsConfig
from tests.gateway_support import PASSWORD, Account, make_account, new_key
from tests.integration.shows import make_show
from tests.integration.test_payments import DECLINED, VISA, Shop, _shop
from tests.payments_support import FaultProxy, running_localstripe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def localstripe() -> AsyncIterator[Any]:
    async with running_localstripe() as stripe:
        yield stripe


@pytest.fixture
async def shop(
    aiohttp_client: Any,
    ray_session: None,
    database_url: str,
    schema: str,
    redis_url: str,
    pool: Any,
    localstripe: Any,
) -> AsyncIterator[Shop]:
    proxy = FaultProxy(localstripe.url)
    await proxy.start()
    try:
        async for made in _shop(
            aiohttp_client,
            database_url,
            schema,
            redis_url,
            pool,
            proxy,
            localstripe,
            models=ModelsConfig(enabled=False, fraud_check=True),  # the rules alone
        ):
            yield made
    finally:
        await proxy.stop()


@pytest.fixture
async def show(pool: Any) -> int:
    return await make_show(pool)


async def _post(
    shop: Shop,
    path: str,
    account: Account,
    device: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    sent = {**account.headers, **new_key(), "X-Device-Id": device, **(headers or {})}
    async with shop.client.post(path, json=body or {}, headers=sent) as resp:
        return resp.status, await resp.json()


async def _hold(shop: Shop, account: Account, device: str, show: int, seat: str) -> Any:
    status, body = await _post(
        shop, f"/api/v1/shows/{show}/holds", account, device, {"seats": [seat]}
    )
    assert status == 201, body
    return body


def _checkout_path(hold: dict[str, Any]) -> str:
    return f"/api/v1/shows/{hold['show_id']}/holds/{hold['hold_id']}/checkout"


async def _decisions(shop: Shop) -> list[Any]:
    return await shop.fetch("SELECT * FROM fraud_decisions ORDER BY id")


async def test_an_ordinary_customer_pays(shop: Shop, show: int, pool: Any) -> None:
    alice = await make_account(pool, shop.app[keys.CONFIG])
    hold = await _hold(shop, alice, "alice-phone", show, "C5")
    status, payment = await _post(shop, _checkout_path(hold), alice, "alice-phone")
    assert status == 201, payment
    status, paid = await _post(
        shop,
        f"/api/v1/payments/{payment['payment_id']}/confirm",
        alice,
        "alice-phone",
        {"payment_method": VISA},
    )
    assert status == 200 and paid["status"] in ("succeeded", "booked"), paid
    [decision] = await _decisions(shop)
    assert (decision["decision"], decision["source"]) == ("allow", "fallback")
    assert decision["features"]  # kept for ops and the next training


async def test_an_account_farm_steps_up_then_pays(shop: Shop, show: int, pool: Any) -> None:
    config = shop.app[keys.CONFIG]
    farm = [await make_account(pool, config) for _ in range(4)]
    seats = iter(f"D{n}" for n in range(1, 13))
    for account in farm[:-1]:
        await _hold(shop, account, "farm-device", show, next(seats))
    last = farm[-1]
    hold = await _hold(shop, last, "farm-device", show, next(seats))
    status, body = await _post(shop, _checkout_path(hold), last, "farm-device")
    assert (status, body["error"]["code"]) == (403, "verification_required"), body
    assert "device" not in body["error"]["message"]  # never says what gave it away

    status, body = await _post(
        shop,
        "/api/v1/auth/step-up",
        last,
        "farm-device",
        {"password": "not the password", "hold_id": hold["hold_id"]},
    )
    assert (status, body["error"]["code"]) == (401, "invalid_credentials")
    status, step = await _post(
        shop,
        "/api/v1/auth/step-up",
        last,
        "farm-device",
        {"password": PASSWORD, "hold_id": hold["hold_id"]},
    )
    assert status == 200, step
    status, payment = await _post(
        shop,
        _checkout_path(hold),
        last,
        "farm-device",
        headers={"Step-Up-Token": step["step_up_token"]},
    )
    assert status == 201, payment
    # A step-up is for its hold only.
    other = await _hold(shop, last, "farm-device", show, next(seats))
    status, body = await _post(
        shop,
        _checkout_path(other),
        last,
        "farm-device",
        headers={"Step-Up-Token": step["step_up_token"]},
    )
    assert status == 403, body


async def test_card_testing_is_refused_and_ops_see_why(shop: Shop, show: int, pool: Any) -> None:
    config = shop.app[keys.CONFIG]
    tester = await make_account(pool, config)
    ops = await make_account(pool, config, role="admin")

    async def declined(hold: dict[str, Any], step: dict[str, str] | None = None) -> None:
        status, payment = await _post(shop, _checkout_path(hold), tester, "tester", headers=step)
        assert status == 201, payment
        status, body = await _post(
            shop,
            f"/api/v1/payments/{payment['payment_id']}/confirm",
            tester,
            "tester",
            {"payment_method": DECLINED},
        )
        assert (status, body["error"]["code"]) == (402, "payment_declined"), body

    first = await _hold(shop, tester, "tester", show, "E1")
    for _ in range(2):
        await declined(first)
    second = await _hold(shop, tester, "tester", show, "E2")
    status, body = await _post(shop, _checkout_path(second), tester, "tester")
    assert (status, body["error"]["code"]) == (403, "verification_required"), body
    status, step = await _post(
        shop,
        "/api/v1/auth/step-up",
        tester,
        "tester",
        {"password": PASSWORD, "hold_id": second["hold_id"]},
    )
    await declined(second, {"Step-Up-Token": step["step_up_token"]})
    await declined(second, {"Step-Up-Token": step["step_up_token"]})  # four declines now
    third = await _hold(shop, tester, "tester", show, "E3")
    status, body = await _post(shop, _checkout_path(third), tester, "tester")
    assert (status, body["error"]["code"]) == (403, "checkout_refused"), body
    assert set(body["error"]["details"]) == {"reference"}

    resp = await shop.client.get(
        "/api/v1/admin/fraud/decisions", params={"decision": "block"}, headers=ops.headers
    )
    listed = (await resp.json())["decisions"]
    assert [d["id"] for d in listed] == [body["error"]["details"]["reference"]]
    assert any(r.startswith("card_testing") for r in listed[0]["reasons"])
    assert listed[0]["features"]["failed_payments_device_24h"] == 4

    path = f"/api/v1/admin/fraud/decisions/{listed[0]['id']}/label"
    resp = await shop.client.put(
        path, json={"is_fraud": True, "note": "declines then a new hold"}, headers=ops.headers
    )
    labelled = await resp.json()
    assert resp.status == 200 and labelled["label"] is True, labelled
    assert labelled["labelled_by"] == ops.user_id
    resp = await shop.client.put(path, json={"is_fraud": "yes"}, headers=ops.headers)
    assert resp.status == 422
    resp = await shop.client.get("/api/v1/admin/fraud/decisions", headers=tester.headers)
    assert resp.status == 403  # ops only
