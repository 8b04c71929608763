"""The fault stack on the session's Ray: each fault once, the stack serving after each, the
final state read, and nothing left behind once it is closed."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
import ray

from loadtest.faults import model
from loadtest.faults.final import settle_and_collect
from loadtest.faults.injector import Planned, inject, plan_faults
from loadtest.faults.stack import FaultStack, FaultStackOptions, open_fault_stack

API = "/api/v1"
SERVE_TIMEOUT_S = 30.0  # after a fault is put back, a hold must succeed within this


async def _call(
    session: aiohttp.ClientSession, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    async with session.request(method, API + path, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def _eventually(
    attempt: Callable[[], Awaitable[tuple[int, Any]]], ok: Callable[[int, Any], bool]
) -> Any:
    """``attempt`` until ``ok`` says so (no answer counts as a try), within the bound."""
    deadline, seen = time.monotonic() + SERVE_TIMEOUT_S, "nothing"
    while time.monotonic() < deadline:
        try:
            status, body = await attempt()
            if ok(status, body):
                return body
            seen = f"{status} {body}"
        except (aiohttp.ClientError, OSError) as exc:
            seen = repr(exc)
        await asyncio.sleep(0.2)
    raise AssertionError(f"the stack did not serve within {SERVE_TIMEOUT_S} s: {seen}")


async def _hold(session: aiohttp.ClientSession, plan: model.Plan, token: str, count: int) -> Any:
    """A hold on the first show, tried until it is made (each try a request of its own)."""
    show = plan.shows[0]
    return await _eventually(
        lambda: _call(session, "POST", f"/shows/{show}/holds", token, {"count": count}),
        lambda status, _: status in (200, 201),
    )


async def _book(session: aiohttp.ClientSession, plan: model.Plan) -> Any:
    """A hold checked out and paid with a test card through the gateway."""
    token = plan.customers[1].token
    hold = await _hold(session, plan, token, 2)
    path = f"/shows/{hold['show_id']}/holds/{hold['hold_id']}/checkout"
    status, payment = await _call(session, "POST", path, token)
    assert status in (200, 201), payment
    path = f"/payments/{payment['payment_id']}/confirm"
    status, paid = await _call(session, "POST", path, token, {"payment_method": "pm_card_visa"})
    assert status == 200 and paid["status"] == "booked", paid
    return paid


async def _admitted(session: aiohttp.ClientSession, plan: model.Plan) -> None:
    token, path = plan.visitors[0].token, f"/shows/{plan.flash_show}/queue"
    status, _ = await _call(session, "POST", path, token)
    assert status in (200, 201)
    await _eventually(
        lambda: _call(session, "GET", path, token), lambda _, body: body["state"] == "admitted"
    )


async def _faults(stack: FaultStack, session: aiohttp.ClientSession) -> list[Any]:
    """Each fault once through the injector, a hold after each; the holds made."""
    holds = []
    for pick, kind in enumerate(model.FAULT_KINDS):
        planned = Planned(0.0, kind, 0.0 if kind == "host_kill" else 1.0, pick)
        (fault,) = await inject(stack, [planned], time.time(), asyncio.Event(), print)
        assert fault.kind == kind and fault.started <= fault.ended, fault
        assert "failed" not in fault.detail, fault
        holds.append(await _hold(session, stack.plan, stack.plan.customers[0].token, 1))
    return holds


def _alive(pid: int) -> bool:
    """Running; not a zombie (Postgres's server is a child of PID 1, which in a container may
    never reap it)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
async def test_every_fault_leaves_a_stack_that_serves(ray_session: None) -> None:
    # Not under pytest's tmp_path: Postgres runs as another user when the tests run as root,
    # and every pytest session that starts makes pytest's temporary root private again.
    work = Path(tempfile.mkdtemp(prefix="seatserver-faults-"))
    options = FaultStackOptions(
        work_dir=work, customers=2, visitors=1, shows=1, hold_ttl_s=4.0, payment_ttl_s=4.0
    )
    stack = await open_fault_stack(options, print)
    pids: set[int] = set()
    try:
        pids.update(p for group in (await stack.process_groups()).values() for p in group)
        async with aiohttp.ClientSession(stack.plan.url) as session:
            paid = await _book(session, stack.plan)
            await _admitted(session, stack.plan)
            holds = await _faults(stack, session)
        groups = await stack.process_groups()
        pids.update(p for group in groups.values() for p in group)
        assert len(groups["gateway"]) == 2 and len(pids) > 8  # restarts made new processes
        last = max(time.time(), *(_epoch(h["expires_at"]) for h in holds))
        final = await settle_and_collect(stack, last_hold_expiry=last, hold_slack_s=2.0, say=print)
    finally:
        await stack.close()
    _assert_final(final, stack.plan, paid, holds)
    assert not [pid for pid in pids if _alive(pid)], "processes left running"
    assert not work.exists()
    namespace = f"{options.run}_gateway"
    names = ray.util.list_named_actors(all_namespaces=True)
    assert not [n for n in names if n["namespace"] == namespace], names


def _epoch(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


def _assert_final(final: model.FinalState, plan: model.Plan, paid: Any, holds: list[Any]) -> None:
    assert set(final.snapshots) == {*plan.shows, plan.flash_show}
    made = {h["hold_id"] for h in holds} | {paid["hold_id"]}
    in_db = {h["hold_id"]: h for h in final.holds}
    assert made <= set(in_db), "a hold answered after its fault is missing from Postgres"
    assert not [h for h in final.holds if h["status"] == "live"]
    assert all(not s["holds"] for s in final.snapshots.values())
    (booking,) = final.bookings
    assert (booking["booking_id"], booking["status"]) == (paid["booking_id"], "confirmed")
    snapshot = final.snapshots[plan.shows[0]]
    assert snapshot["bookings"] == [paid["booking_id"]]
    assert {s for s, state in snapshot["seats"].items() if state == "booked"} == set(paid["seats"])
    (payment,) = final.payments
    assert payment["status"] == "booked" and payment["booking_id"] == paid["booking_id"]
    (intent,) = final.intents
    assert intent["id"] == payment["provider_ref"] and intent["status"] == "succeeded"
    assert intent["amount_received"] == payment["amount_cents"] and not final.provider_refunds
    assert [(a["show_id"], a["user_id"]) for a in final.admissions] == [
        (plan.flash_show, plan.visitors[0].user_id)
    ]


@pytest.mark.parametrize("short", [True, False])
def test_a_schedule_follows_from_its_seed_and_never_overlaps(short: bool) -> None:
    seconds = 60.0 if short else 600.0
    planned = plan_faults(11, seconds, short=short)
    assert planned == plan_faults(11, seconds, short=short) != plan_faults(12, seconds, short=short)
    kinds = [p.kind for p in planned]
    assert set(kinds) == set(model.FAULT_KINDS)
    assert len(kinds) == 5 if short else min(kinds.count(k) for k in model.FAULT_KINDS) >= 2
    for before, after in zip(planned, planned[1:], strict=False):
        assert before.at + before.span_s <= after.at
    assert planned[-1].at + planned[-1].span_s <= seconds
    if short:
        assert all(p.down_s == 0 or 1 <= p.down_s <= 3 for p in planned)


@pytest.mark.parametrize(
    ("seed", "seconds", "kinds", "says"),
    [
        (1, 20.0, model.FAULT_KINDS, "too short"),
        (1, -5.0, model.FAULT_KINDS, "positive"),
        ("1", 60.0, model.FAULT_KINDS, "integer"),
        (1, 60.0, ("host_kill", "meteor"), "some of"),
        (1, 60.0, "host_kill", "not one string"),
    ],
)
def test_a_bad_schedule_is_refused_clearly(
    seed: Any, seconds: float, kinds: Any, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        plan_faults(seed, seconds, kinds, short=True)


def test_bad_stack_options_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customers must be an integer in 2..10000"):
        FaultStackOptions(work_dir=tmp_path, customers=1)
    with pytest.raises(ValueError, match="run must match"):
        FaultStackOptions(work_dir=tmp_path, run="no spaces")
