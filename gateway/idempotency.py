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

import hashlib
import json
import re
import uuid
from typing import Any

from aiohttp import web

from gateway.errors import BadRequest, Conflict, IdempotencyKeyReused

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_NAMESPACE = uuid.UUID("8d7a8f6e-7b1c-4b0e-9a55-5f0c3a8d2e11")
PENDING_TTL_S = 60  # a claim whose request died is freed after this long


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
    def __init__(self, redis: Any, prefix: str, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_s

    def _name(self, owner: str, key: str) -> str:
        digest = hashlib.sha256(f"{owner}\x00{key}".encode()).hexdigest()[:40]
        return f"{self._prefix}idem:{digest}"

    async def begin(self, owner: str, key: str, print_: str) -> web.Response | None:
        """Claim the key; returns the stored answer to replay, or None to go ahead."""
        name = self._name(owner, key)
        claim = json.dumps({"fp": print_, "state": "pending"})
        if await self._redis.set(name, claim, nx=True, ex=PENDING_TTL_S):
            return None
        raw = await self._redis.get(name)
        if raw is None:  # expired meanwhile: claim again
            if await self._redis.set(name, claim, nx=True, ex=PENDING_TTL_S):
                return None
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

    async def finish(self, owner: str, key: str, print_: str, response: web.StreamResponse) -> None:
        """Store the answer; a 5xx or a 202 (outcome not known yet) frees the key instead, so
        the retry runs again (and finds what the first one did through the derived ids)."""
        name = self._name(owner, key)
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
        await self._redis.delete(self._name(owner, key))
