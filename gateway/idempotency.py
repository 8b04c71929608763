"""Idempotency keys (DESIGN rule 10): a retry with the same key gets the first answer.

A POST, PUT, PATCH or DELETE may carry ``Idempotency-Key`` (1–200 printable ASCII characters).
The first request with a key claims it in Redis (``SET NX``) with a fingerprint of the request
(method, route, body); the answer is stored under the key for ``idempotency_ttl_s``. A retry
with the same key and the same request gets the stored answer, marked ``Idempotent-Replayed:
true``; the same key with another request is refused (422 ``idempotency_key_reused``); a retry
while the first is still running gets 409 ``idempotency_request_in_progress``. Keys belong to a
user (visitors' keys to their client address): one user's key never meets another's. A set
per owner (``idem-of:<owner>``) names their stored answers, for the export and the deletion of
an account.

Redis keeps these records for speed; the ids a retried request creates (hold and booking ids)
are also derived from the key (``derived_id``), so even a lost record cannot make a second hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from typing import Any

from aiohttp import web

from gateway.errors import BadRequest, Conflict, IdempotencyKeyReused

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_NAMESPACE = uuid.UUID("8d7a8f6e-7b1c-4b0e-9a55-5f0c3a8d2e11")
# A claim is a lease: its process renews it while the request runs, so a claim whose process
# died (a gateway killed mid-request, Redis lost with the claim's deletion) frees the key for
# the retry within PENDING_TTL_S, however long a live request takes.
PENDING_TTL_S = 5
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0"""


def read_key(request: web.Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.match(key):
        raise BadRequest(
            f"{HEADER} must be 1-200 printable ASCII characters",
            {"header": HEADER},
            code="invalid_idempotency_key",
        )
    return key


def derived_id(owner: str, key: str | None, purpose: str) -> str:
    """A UUID fixed by (owner, key, purpose), or a random one without a key."""
    if key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_NAMESPACE, f"{owner}\x00{purpose}\x00{key}"))


def fingerprint(method: str, route: str, body: bytes) -> str:
    return hashlib.sha256(b"\x00".join([method.encode(), route.encode(), body])).hexdigest()


class Idempotency:
    def __init__(
        self, redis: Any, prefix: str, ttl_s: int, *, pending_ttl_s: int = PENDING_TTL_S
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_s
        self._pending_ttl = pending_ttl_s
        self._claims: dict[str, str] = {}  # name -> claim, of this process's running requests
        self._renewer: asyncio.Task[None] | None = None
        self._renew = redis.register_script(_RENEW)

    def _name(self, owner: str, key: str) -> str:
        digest = hashlib.sha256(f"{owner}\x00{key}".encode()).hexdigest()[:40]
        return f"{self._prefix}idem:{digest}"

    async def begin(self, owner: str, key: str, print_: str) -> web.Response | None:
        """Claim the key; returns the stored answer to replay, or None to go ahead."""
        name = self._name(owner, key)
        claim = json.dumps({"fp": print_, "state": "pending", "by": uuid.uuid4().hex})
        if await self._redis.set(name, claim, nx=True, ex=self._pending_ttl):
            return self._running(name, claim)
        raw = await self._redis.get(name)
        if raw is None:  # expired meanwhile: claim again
            if await self._redis.set(name, claim, nx=True, ex=self._pending_ttl):
                return self._running(name, claim)
            raw = await self._redis.get(name) or claim
        record = json.loads(raw)
        if record["fp"] != print_:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for another request", {"header": HEADER}
            )
        if record["state"] == "pending":
            raise Conflict(
                "the first request with this Idempotency-Key is still running",
                {"header": HEADER},
                code="idempotency_request_in_progress",
                headers={"Retry-After": "1"},
            )
        response = web.Response(
            status=record["status"],
            body=record["body"].encode(),
            content_type=record.get("content_type") or "application/json",
        )
        response.headers["Idempotent-Replayed"] = "true"
        return response

    def _running(self, name: str, claim: str) -> None:
        """Renew ``claim`` until ``finish`` (one task per process renews every claim)."""
        self._claims[name] = claim
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_claims())

    async def _renew_claims(self) -> None:
        while self._claims:
            await asyncio.sleep(self._pending_ttl / 3)
            claims = list(self._claims.items())
            try:
                pipe = self._redis.pipeline(transaction=False)
                for name, claim in claims:
                    await self._renew(keys=[name], args=[claim, self._pending_ttl], client=pipe)
                await pipe.execute()
            except Exception as exc:  # Redis out of reach: the leases may lapse, as they should
                log.warning("idempotency claims not renewed: %s", type(exc).__name__)

    def let_go(self, owner: str, key: str) -> None:
        """Stop renewing the claim (its request ended without ``finish``: cancelled): it
        lapses after ``pending_ttl_s``."""
        self._claims.pop(self._name(owner, key), None)

    async def finish(self, owner: str, key: str, print_: str, response: web.StreamResponse) -> None:
        """Store the answer; a 5xx or a 202 (outcome not known yet) frees the key instead, so
        the retry runs again (and finds what the first one did through the derived ids)."""
        name = self._name(owner, key)
        self._claims.pop(name, None)
        if (
            response.status >= 500
            or response.status == 202
            or not isinstance(response, web.Response)
        ):
            await self._redis.delete(name)
            return
        body = response.body
        text = body.decode() if isinstance(body, bytes | bytearray) else ""
        record = {
            "fp": print_,
            "state": "done",
            "status": response.status,
            "body": text,
            "content_type": response.content_type,
        }
        # Indexed by owner (same round trip), so that an account's deletion finds them.
        index = self._index(owner)
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(name, json.dumps(record), ex=self._ttl)
        pipe.sadd(index, name)
        pipe.expire(index, self._ttl)
        await pipe.execute()

    def _index(self, owner: str) -> str:
        return f"{self._prefix}idem-of:{owner}"

    async def answers_of(self, owner: str) -> list[dict[str, Any]]:
        """The answers stored for ``owner`` that have not expired (status, body, type)."""
        names = sorted(await self._redis.smembers(self._index(owner)))
        raws = await self._redis.mget(names) if names else []
        found = []
        for raw in raws:
            if raw is not None and (record := json.loads(raw)).get("state") == "done":
                found.append({k: record[k] for k in ("status", "body", "content_type")})
        return found

    async def forget_owner(self, owner: str) -> int:
        """Drop every answer stored for ``owner``; returns how many were there."""
        index = self._index(owner)
        names = list(await self._redis.smembers(index))
        gone = int(await self._redis.delete(*names)) if names else 0
        await self._redis.delete(index)
        return gone

    async def abandon(self, owner: str, key: str) -> None:
        name = self._name(owner, key)
        self._claims.pop(name, None)
        await self._redis.delete(name)
