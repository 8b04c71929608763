"""Rate limits: token buckets in Redis, per user and per client address, checked by one atomic
script (every bucket of a request at once: either all of them pay a token or none does).

    limits = RateLimits.parse({"hold_user": "60/min:20", "hold_ip": "off", ...})
    limiter = Limiter(redis, prefix, limits, secret=jwt_secret)
    await limiter.check("hold", user_id=7, account=None, address="203.0.113.9")  # or RateLimited

A rate is written ``N/UNIT`` (UNIT ``s``, ``min`` or ``h``), optionally ``:BURST`` (the bucket's
size; ``N`` when left out), or ``off``. A refused request gets 429 ``rate_limited`` with
``Retry-After`` (whole seconds, at least 1) and ``retry_after_ms`` in its details.

A bucket's key names its user, email or address by a keyed digest (HMAC-SHA256 under the
gateway's secret, ``bucket_digest``), so the keyspace cannot be matched against a list of
emails.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.errors import ApiError
from gateway.rates import RateLimits
from gateway.redisbatch import ScriptBatcher

# KEYS: the buckets. ARGV: now (ms), then rate (tokens per ms) and burst for each bucket.
# Returns 0 when every bucket had a token (each pays one), else the milliseconds until all do.
BUCKETS = """
local now = tonumber(ARGV[1])
local wait = 0
local level = {}
for i, key in ipairs(KEYS) do
    local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    local v = redis.call('HMGET', key, 't', 'ts')
    local tokens, ts = tonumber(v[1]) or burst, tonumber(v[2]) or now
    if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate) end
    level[i] = tokens
    if tokens < 1 then
        local w = math.ceil((1 - tokens) / rate)
        if w > wait then wait = w end
    end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
    local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    local v = redis.call('HGET', key, 'ts')
    local ts = math.max(now, tonumber(v) or now)
    redis.call('HSET', key, 't', level[i] - 1, 'ts', ts)
    redis.call('PEXPIRE', key, math.ceil(burst / rate) + 1000)
end
return 0
"""


class RateLimited(ApiError):
    status, code = 429, "rate_limited"


def client_address(request: web.Request, forwarded_hops: int) -> str:
    """The caller's address: the peer's, or (behind ``forwarded_hops`` trusted proxies) the
    address those proxies saw, from ``X-Forwarded-For``."""
    if forwarded_hops > 0:
        chain = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",")]
        chain = [p for p in chain if p]
        if len(chain) >= forwarded_hops:
            return chain[-forwarded_hops][:64]
    return request.remote or "unknown"


def bucket_digest(secret: str, value: str) -> str:
    """How a bucket's key names a user id, an email (lower-cased) or an address."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


class Limiter:
    def __init__(
        self,
        redis: Any,
        prefix: str,
        limits: RateLimits,
        *,
        secret: str,
        clock: Callable[[], float] = time.time,
        batch: ScriptBatcher | None = None,
    ) -> None:
        self._prefix = prefix
        self._secret = secret
        self._limits = limits
        self._clock = clock
        self._batch = batch or ScriptBatcher(redis)
        self._script = self._batch.register(BUCKETS)

    def _bucket(self, action: str, who: str, value: str) -> str:
        return f"{self._prefix}rl:{action}:{who}:{bucket_digest(self._secret, value)}"

    async def check(
        self,
        action: str,
        *,
        user_id: int | None = None,
        account: str | None = None,
        address: str | None = None,
    ) -> None:
        """Take a token from each of the action's buckets, or raise ``RateLimited``."""
        keys: list[str] = []
        args: list[Any] = [int(self._clock() * 1000)]
        for who, value in (
            ("user", None if user_id is None else str(user_id)),
            ("account", None if account is None else account.strip().lower()),
            ("ip", address),
        ):
            rate = getattr(self._limits, f"{action}_{who}", None)
            if rate is None or value is None:
                continue
            keys.append(self._bucket(action, who, value))
            args += [rate.per_s / 1000, rate.burst]
        if not keys:
            return
        wait_ms = int(await self._batch.run(self._script, keys, args))
        if wait_ms > 0:
            raise RateLimited(
                "too many requests: slow down and try again later",
                {"action": action, "retry_after_ms": wait_ms},
                headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))},
            )
