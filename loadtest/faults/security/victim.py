"""The victim the security checks aim at: customer A books a seat through the gateway and
keeps one more hold, each step retried with its Idempotency-Key while the stack says "try
again"; customer B is the attacker."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from loadtest.faults import model
from loadtest.faults.security.probe import HTTP_TIMEOUT_S, code_of
from loadtest.locust.scenarios import API, PAYMENT_METHOD

STEP_TRIES = 8  # a step of the victim's booking, retried with its key when unavailable
MAX_WAIT_S = 2.0  # the longest pause between two tries of a step


@dataclass(frozen=True)
class Victim:
    """What the checks aim at: customer A's live hold, A's confirmed booking and its payment,
    and customer B, the attacker."""

    customer: model.Account  # A
    attacker: model.Account  # B
    show_id: int  # the show of A's live hold
    hold_id: str
    booking_show_id: int
    booking_id: str
    payment_id: str


def require_plan(plan: model.Plan, *, customers: int = 2, admins: int = 0) -> None:
    """``ValueError`` unless the plan has the customers (A and B) and the theater admins of
    different theaters that the checks need."""
    if len(plan.customers) < customers:
        raise ValueError(f"the plan needs {customers} customers (A the victim, B the attacker)")
    if len(plan.theater_admins) < admins:
        raise ValueError(f"the plan needs {admins} theater admins of two theaters")
    if admins and plan.theater_admins[0].theater_id == plan.theater_admins[1].theater_id:
        raise ValueError("the plan's first two theater admins must run different theaters")


@dataclass
class _Step:
    """One request of a client's journey, retried with its Idempotency-Key while the answer
    says "try again" (no answer, 5xx, 429, 202, a first try still running)."""

    session: aiohttp.ClientSession
    url: str
    token: str

    async def __call__(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": uuid.uuid4().hex}
        status: int | None = None
        answer: Any = None
        for attempt in range(STEP_TRIES):
            status, answer, wait = await self._once(method, path, body, headers)
            if status is not None and not _again(status, answer):
                return status, answer
            await asyncio.sleep(wait if wait is not None else min(MAX_WAIT_S, 0.25 * 2**attempt))
        raise RuntimeError(f"{method} {path} still answered {status} after {STEP_TRIES} tries")

    async def _once(
        self, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[int | None, Any, float | None]:
        try:
            async with self.session.request(
                method, f"{self.url}{API}{path}", json=body, headers=headers
            ) as resp:
                answer = await resp.json(content_type=None)
                after = resp.headers.get("Retry-After", "")
                wait = min(float(after), MAX_WAIT_S) if after.isdigit() else None
                return resp.status, answer, wait
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None, None, None


def _again(status: int, answer: Any) -> bool:
    if status >= 500 or status in (202, 429):
        return True
    return status == 409 and code_of(answer) == "idempotency_request_in_progress"


async def make_victim(plan: model.Plan) -> Victim:
    """Customer A (``plan.customers[0]``) holds a seat, checks out and pays with the test card
    through the gateway (a confirmed booking), then holds one more seat and keeps it;
    B is ``plan.customers[1]``. ``RuntimeError`` when A cannot."""
    require_plan(plan)
    a, b = plan.customers[0], plan.customers[1]
    url = plan.url.rstrip("/").removesuffix(API)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        step = _Step(session, url, a.token)
        quiet = [admin.show_id for admin in plan.theater_admins]  # shows the load left alone
        paid_show, paid_hold = await _hold_somewhere(step, quiet)
        checkout = f"/shows/{paid_show}/holds/{paid_hold}/checkout"
        payment = await _expect(step, "POST", checkout, {}, 201)
        confirm = f"/payments/{payment['payment_id']}/confirm"
        paid = await _expect(step, "POST", confirm, {"payment_method": PAYMENT_METHOD}, 200)
        if paid.get("status") != "booked" or not paid.get("booking_id"):
            raise RuntimeError(f"A's payment ended {paid.get('status')}, not booked")
        show, hold = await _hold_somewhere(step, quiet)
    return Victim(a, b, show, hold, paid_show, paid["booking_id"], paid["payment_id"])


async def _expect(step: _Step, method: str, path: str, body: Any, ok: int) -> dict[str, Any]:
    status, answer = await step(method, path, body)
    if status != ok or not isinstance(answer, dict):
        raise RuntimeError(f"{method} {path} answered {status}: {answer}")
    return answer


async def _hold_somewhere(step: _Step, shows: list[int]) -> tuple[int, str]:
    """A one-seat hold on the first of ``shows`` that has a seat for A."""
    refusals = []
    for show in shows:
        body = {"count": 1, "allow_split": True}
        status, answer = await step("POST", f"/shows/{show}/holds", body)
        if status == 201 and isinstance(answer, dict):
            return show, str(answer["hold_id"])
        refusals.append(f"show {show}: {status} {code_of(answer)}")
    raise RuntimeError(f"A could hold no seat: {', '.join(refusals) or 'the plan has no shows'}")
