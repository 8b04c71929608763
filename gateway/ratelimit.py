"""Rate limits: token buckets in Redis, per user and per client address, checked by one atomic
script (every bucket of a request at once: either all of them pay a token or none does).

    limits = RateLimits.parse({"hold_user": "60/min:20", "hold_ip": "off", ...})
    limiter = Limiter(redis, prefix, limits)
    await limiter.check("hold", user_id=7, account=None, address="203.0.113.9")  # or RateLimited

A rate is written ``N/UNIT`` (UNIT ``s``, ``min`` or ``h``), optionally ``:BURST`` (the bucket's
size; ``N`` when left out), or ``off``. A refused request gets 429 ``rate_limited`` with
``Retry-After`` (whole seconds, at least 1) and ``retry_after_ms`` in its details.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from aiohttp import web

from gateway.errors import ApiError
from gateway.redisbatch import ScriptBatcher

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|min|h)\s*(?::\s*(\d+))?\s*$")
_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}

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


@dataclass(frozen=True)
class Rate:
    per_s: float
    burst: int

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """``"30/min"``, ``"5/s:20"``, or ``"off"`` (None); ``ValueError`` otherwise."""
        if text.strip().lower() == "off":
            return None
        match = _RATE.match(text)
        if match is None:
            raise ValueError(f"a rate looks like 30/min, 5/s:20 or off, not {text!r}")
        count, unit, burst = float(match[1]), match[2], match[3]
        if count <= 0:
            raise ValueError(f"a rate must be above zero, not {text!r}")
        size = int(burst) if burst is not None else max(1, math.floor(count))
        if size < 1:
            raise ValueError(f"a burst must be at least 1, not {text!r}")
        return cls(count / _UNITS[unit], size)

    def __str__(self) -> str:
        return f"{self.per_s * 60:g}/min:{self.burst}"


@dataclass(frozen=True)
class RateLimits:
    """One rate per (action, who); None: unlimited. The defaults of a gateway without any are
    unlimited; ``seatserver`` settings give every deployment real ones."""

    login_ip: Rate | None = None
    login_account: Rate | None = None
    join_user: Rate | None = None
    join_ip: Rate | None = None
    hold_user: Rate | None = None
    hold_ip: Rate | None = None
    poll_user: Rate | None = None  # where do I stand in the queue (the websocket pushes it)

    @classmethod
    def parse(cls, texts: Mapping[str, str]) -> RateLimits:
        known = {f.name for f in fields(cls)}
        unknown = set(texts) - known
        if unknown:
            raise ValueError(f"unknown rate limits: {sorted(unknown)}")
        return cls(**{name: Rate.parse(text) for name, text in texts.items()})


def client_address(request: web.Request, forwarded_hops: int) -> str:
    """The caller's address: the peer's, or (behind ``forwarded_hops`` trusted proxies) the
    address those proxies saw, from ``X-Forwarded-For``."""
    if forwarded_hops > 0:
        chain = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",")]
        chain = [p for p in chain if p]
        if len(chain) >= forwarded_hops:
            return chain[-forwarded_hops][:64]
    return request.remote or "unknown"


class Limiter:
    def __init__(
        self,
        redis: Any,
        prefix: str,
        limits: RateLimits,
        clock: Callable[[], float] = time.time,
        batch: ScriptBatcher | None = None,
    ) -> None:
        self._prefix = prefix
        self._limits = limits
        self._clock = clock
        self._batch = batch or ScriptBatcher(redis)
        self._script = self._batch.register(BUCKETS)

    def _bucket(self, action: str, who: str, value: str) -> str:
        digest = hashlib.sha256(value.encode()).hexdigest()[:32]
        return f"{self._prefix}rl:{action}:{who}:{digest}"

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
