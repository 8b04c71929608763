"""The fault run's security checks on a real stack: a gateway with payments at localstripe,
show hosts on Ray, two theaters with an admin each and two customers. Every check must be
refused with its status and code, with nothing changed; and the fingerprint behind "nothing
changed" must see a change when there is one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import storage
from loadtest.faults import model, security
from loadtest.faults.security.fingerprint import Fingerprint, differences
from loadtest.faults.security.probe import open_probe
from loadtest.faults.security.run import describe_failures
from loadtest.faults.security.victim import Victim
from tests.gateway_support import PASSWORD, make_account
from tests.integration import privacy_support as support
from tests.integration.shows import make_show
from tests.payments_support import running_localstripe

CONTROL_POLLS = 50  # 0.1 s apart: the block is written behind


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
    localstripe: Any,
) -> AsyncIterator[support.Shop]:
    async for made in support.open_shop(
        aiohttp_client, database_url, schema, redis_url, localstripe
    ):
        yield made


async def _account(shop: support.Shop, role: str = "customer", *theaters: int) -> model.Account:
    made = await make_account(shop.pool, shop.config, role, theaters)
    return model.Account(made.user_id, made.email, PASSWORD, made.token)


async def _plan(shop: support.Shop, database_url: str, schema: str, stripe_url: str) -> model.Plan:
    """Two theaters (a show each, on sale), an admin of each, two customers."""
    shows = [await make_show(shop.pool, name=name) for name in ("north", "south")]
    flash = await make_show(shop.pool, status="flash_sale", name="flash")
    async with shop.pool.acquire() as conn:
        theaters = [await storage.theater_of(conn, show_id=show) for show in shows]
    admins = [
        model.TheaterAdmin(theater, await _account(shop, "theater_admin", theater), show)
        for theater, show in zip(theaters, shows, strict=True)
    ]
    return model.Plan(
        url=str(shop.client.make_url("")).rstrip("/"),
        provider_url=stripe_url,
        publishable_key=support.PUBLISHABLE,
        customers=[await _account(shop), await _account(shop)],
        visitors=[],
        shows=shows,
        flash_show=flash,
        hold_ttl_s=shop.config.hold_ttl_s,
        theater_admins=admins,
        database_url=database_url,
        schema=schema,
        jwt_secret=shop.config.jwt_secret,
        webhook_secret=support.WEBHOOK_SECRET,
    )


@pytest.mark.slow
async def test_every_attack_is_refused_and_changes_nothing(
    shop: support.Shop, database_url: str, schema: str, localstripe: Any
) -> None:
    plan = await _plan(shop, database_url, schema, localstripe.url)
    victim = await security.make_victim(plan)
    assert victim.hold_id and victim.booking_id and victim.payment_id

    results = await security.run_security_checks(plan, victim)

    assert {r.group for r in results} == {"auth", "ownership", "admin", "webhook", "input"}
    assert all(r.passed for r in results), describe_failures(results)
    assert any(r.audited for r in results), "no refused admin call was looked up in the audit log"
    await _fingerprint_sees(shop, plan, plan.theater_admins[0])


async def _fingerprint_sees(
    shop: support.Shop, plan: model.Plan, admin: model.TheaterAdmin
) -> None:
    """The control: the right admin blocks a seat, and the fingerprint differs (its row, once
    written behind, and the seat map's version)."""
    show = admin.show_id
    async with open_probe(plan, [show]) as probe:
        status, seatmap = await shop.call("GET", f"/api/v1/shows/{show}/seatmap")
        assert status == 200, seatmap
        seat = next(s for s, state in sorted(seatmap["seats"].items()) if state == "available")
        before = await probe.fingerprint()
        path = f"/api/v1/admin/shows/{show}/blocks"
        status, body = await shop.call("POST", path, admin.account.token, {"seats": [seat]})
        assert status == 200, body
        wanted = {"show_blocked_seats row", f"show {show} seat map"}
        changes: list[str] = []
        for _ in range(CONTROL_POLLS):
            changes = differences(before, await probe.fingerprint())
            if all(any(c.startswith(w) for c in changes) for w in wanted):
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the fingerprint missed a blocked seat: {changes}")


def _print(
    holds: dict[str, tuple[str, str | None, str]],
    versions: dict[int, int],
    taken_at: float = 100.0,
) -> Fingerprint:
    """A fingerprint of holds only: key -> (digest, status, digest without the expiry); live
    ones expire at 150."""
    live = {k: (1, 150.0) for k, (_, st, _) in holds.items() if st == "live"}
    return Fingerprint(taken_at, {"holds": holds}, live, dict[int, int | None](versions))


def test_a_hold_that_only_expired_is_no_change() -> None:
    before = _print({"h1": ("d1", "live", "e1")}, {1: 5})
    expired = _print({"h1": ("d1", "expired", "e1")}, {1: 6}, taken_at=160.0)
    assert differences(before, expired) == []
    # Expired with the moment it was expired as its expiry: still only expired.
    stamped = _print({"h1": ("d9", "expired", "e1")}, {1: 6}, taken_at=160.0)
    assert differences(before, stamped) == []
    early = _print({"h1": ("d1", "expired", "e1")}, {1: 6}, taken_at=120.0)  # before its expiry
    assert differences(before, early) == [
        "holds row h1 changed",
        "show 1 seat map v5 -> v6",
    ]
    extended = _print({"h1": ("d2", "live", "e1")}, {1: 6}, taken_at=160.0)
    assert differences(before, extended) == ["holds row h1 changed"]
    released = _print({"h1": ("d1", "released", "e1")}, {1: 6}, taken_at=160.0)
    assert differences(before, released) == ["holds row h1 changed"]


async def test_a_plan_without_two_theaters_is_refused_clearly() -> None:
    account = model.Account(1, "a@example.com", "pw", "t")
    admin = model.TheaterAdmin(7, account, 1)
    plan = model.Plan(
        url="http://127.0.0.1:1", provider_url="", publishable_key="", customers=[account] * 2,
        visitors=[], shows=[1], flash_show=1, hold_ttl_s=300.0, theater_admins=[admin, admin],
        database_url="", schema="", jwt_secret="", webhook_secret="",
    )  # fmt: skip
    victim = Victim(account, account, 1, "h", 1, "b", "p")
    with pytest.raises(ValueError, match="different theaters"):
        await security.run_security_checks(plan, victim)
