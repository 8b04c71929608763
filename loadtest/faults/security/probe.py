"""The probe the checks look through: what a check is (one request and the refusal it must
get), sending it, and judging the answer: the expected status and code, nothing changed (see
``fingerprint``) and, for a refused staff call, its audit row. The checks need a quiet stack (no
load): before the first one the fingerprint must hold still for ``QUIET_S``, so that what was
written behind has landed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from loadtest.faults import model
from loadtest.faults.security.fingerprint import Fingerprint, differences, fingerprint
from loadtest.locust.scenarios import API

QUIET_S = 1.5  # the fingerprint holds still this long before the first check
SETTLE_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 30.0
REQUEST_ID = "X-Request-Id"


@dataclass
class SecurityResult:
    """One check as it went: ``passed`` when the answer had the expected status and code,
    nothing changed and, for a refused staff call, its audit row was found."""

    name: str
    group: str
    method: str
    path: str
    expected_status: int
    expected_code: str
    got_status: int | None  # None: no answer
    got_code: str | None
    changed: bool
    passed: bool
    audited: bool | None = None  # admin checks: the refusal has its audit row
    detail: str = ""  # what changed

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Check:
    """One request and the refusal it must get. ``path`` is under the API prefix; ``body`` is
    sent as is (``content_type``), in chunks without a length when ``chunked``."""

    group: str
    name: str
    method: str
    path: str
    status: int
    code: str
    token: str | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    keyed: bool = False  # send a fresh Idempotency-Key
    audited: bool = False  # the refusal must leave an audit row
    chunked: bool = False


# -- the probe: one session, one connection -------------------------------------------------


@dataclass
class Probe:
    """What the checks look through: an HTTP session on the gateway and a connection to the
    run's schema; ``shows`` are those whose seat-map versions the fingerprint reads."""

    plan: model.Plan
    session: aiohttp.ClientSession
    conn: Any
    shows: list[int]

    @property
    def url(self) -> str:
        return self.plan.url.rstrip("/").removesuffix(API)

    async def fingerprint(self) -> Fingerprint:
        return await fingerprint(self.conn, self.session, self.url, self.shows)

    async def settle(self) -> Fingerprint:
        """A fingerprint that held still for ``QUIET_S``; ``RuntimeError`` when the state
        keeps changing (the stack is not quiet)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        last = await self.fingerprint()
        still_since = time.monotonic()
        while time.monotonic() - still_since < QUIET_S:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the stack's state kept changing for {SETTLE_TIMEOUT_S:g} s: run the "
                    "security checks on a quiet stack (no load)"
                )
            await asyncio.sleep(0.25)
            now = await self.fingerprint()
            if differences(last, now):
                still_since = time.monotonic()
            last = now
        return last

    async def send(self, check: Check, request_id: str) -> tuple[int | None, str | None]:
        headers = {REQUEST_ID: request_id, **dict(check.headers)}
        if check.token is not None:
            headers["Authorization"] = f"Bearer {check.token}"
        if check.keyed:
            headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
        data: Any = None
        if check.body is not None:
            headers.setdefault("Content-Type", check.content_type)
            data = _chunks(check.body) if check.chunked else check.body
        try:
            url = f"{self.url}{API}{check.path}"
            async with self.session.request(check.method, url, data=data, headers=headers) as resp:
                return resp.status, _error_code(await resp.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, type(exc).__name__

    async def audited(self, request_id: str, status: int | None) -> bool:
        found = await self.conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE request_id = $1 AND status = $2",
            request_id,
            status,
        )
        return bool(found)

    async def run(self, check: Check, before: Fingerprint) -> tuple[SecurityResult, Fingerprint]:
        request_id = f"security-{uuid.uuid4().hex[:20]}"
        status, code = await self.send(check, request_id)
        after = await self.fingerprint()
        changes = differences(before, after)
        audited = await self.audited(request_id, status) if check.audited else None
        passed = status == check.status and code == check.code and not changes
        result = SecurityResult(
            name=check.name,
            group=check.group,
            method=check.method,
            path=check.path,
            expected_status=check.status,
            expected_code=check.code,
            got_status=status,
            got_code=code,
            changed=bool(changes),
            passed=passed and audited is not False,
            audited=audited,
            detail="; ".join(changes[:5]),
        )
        return result, after


async def _chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _error_code(raw: bytes) -> str | None:
    try:
        return code_of(json.loads(raw))
    except ValueError:
        return None


def code_of(body: Any) -> str | None:
    """The error envelope's code, or None."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


@contextlib.asynccontextmanager
async def open_probe(plan: model.Plan, shows: list[int]) -> AsyncIterator[Probe]:
    """A ``Probe`` on the plan's gateway and Postgres, closed afterwards.

    >>> async with open_probe(plan, [show]) as probe:
    ...     changes = differences(await probe.settle(), await probe.fingerprint())
    """
    import storage

    conn = await storage.connect(plan.database_url, schema=plan.schema)
    try:
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            yield Probe(plan, session, conn, shows)
    finally:
        await conn.close()
