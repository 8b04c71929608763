"""What Redis holds about one user, for the export and the account's deletion.

- the assistant's conversations (``chat:conv:<id>``, each naming its user);
- places in waiting rooms (``wr:{<show>}:q`` / ``seen`` / ``adm`` / ``gone`` / ``mark``, the
  user id a member of each);
- stored answers of idempotent requests (``idem:…``, indexed by owner);
- risk signals of the account (``risk:<stream>:<user id>``), and the user's id among the
  accounts seen on a device or an address (``risk:accounts:device:…``, ``…:ip:…``);
- rate-limit buckets of the user and of their email (``rl:<action>:user|account:<digest>``).

Conversations, waiting rooms, the device and address sets and the buckets are found in one
scan of the keyspace (a deletion or an export is rare; their keys are short-lived); the rest is
addressed directly.

    held = await redis_data_of(app, user_id)
    counts = await forget_in_redis(app, user_id, email)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.ratelimit import bucket_digest
from ml.fraud.features import RETENTION

SCAN_COUNT = 1000
_ACCOUNT_STREAMS = tuple(s for s in RETENTION if s.endswith(":account"))
_SHARED = re.compile(r"risk:accounts:(device|ip):")  # sets whose members are user ids


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _Found:
    conversations: list[str] = field(default_factory=list)
    rooms: list[int] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)


async def _scan(app: web.Application, user_id: int, email: str | None) -> _Found:
    """One pass over the keyspace under the gateway's prefix, sorting out the keys above."""
    redis, prefix = app[keys.REDIS], app[keys.CONFIG].redis_prefix
    room = re.compile(re.escape(prefix) + r"wr:\{(\d+)\}:cfg$")
    secret = app[keys.CONFIG].jwt_secret
    mine = {f":user:{bucket_digest(secret, str(user_id))}"}
    if email is not None:
        mine.add(f":account:{bucket_digest(secret, email.strip().lower())}")
    found = _Found()
    async for raw in redis.scan_iter(match=prefix + "*", count=SCAN_COUNT):
        key = _text(raw)
        rest = key[len(prefix) :]
        if rest.startswith("chat:conv:"):
            found.conversations.append(key)
        elif rest.startswith("wr:") and (match := room.match(key)):
            found.rooms.append(int(match.group(1)))
        elif _SHARED.match(rest):
            found.shared.append(key)
        elif rest.startswith("rl:") and any(rest.endswith(m) for m in mine):
            found.buckets.append(key)
    found.rooms.sort()
    return found


async def _conversations(app: web.Application, names: list[str], user_id: int) -> dict[str, Any]:
    """Of the conversations ``names``, the user's, by key."""
    redis = app[keys.REDIS]
    mine: dict[str, Any] = {}
    for start in range(0, len(names), SCAN_COUNT):
        chunk = names[start : start + SCAN_COUNT]
        for name, raw in zip(chunk, await redis.mget(chunk), strict=True):
            try:
                conv = json.loads(raw) if raw is not None else None
            except ValueError:
                continue
            if isinstance(conv, dict) and conv.get("user_id") == user_id:
                mine[name] = conv
    return mine


async def _places(app: web.Application, rooms: list[int], user_id: int) -> list[dict[str, Any]]:
    """The user's places in the waiting rooms of ``rooms``."""
    redis, prefix = app[keys.REDIS], app[keys.CONFIG].redis_prefix
    places = []
    for show_id in rooms:
        base = f"{prefix}wr:{{{show_id}}}:"
        pipe = redis.pipeline(transaction=False)
        pipe.zscore(base + "q", user_id)
        pipe.zscore(base + "seen", user_id)
        pipe.hget(base + "adm", user_id)
        pipe.hget(base + "gone", user_id)
        number, seen, admitted, gone = await pipe.execute()
        if number is None and admitted is None and gone is None:
            continue
        places.append(
            {
                "show_id": show_id,
                "number": None if number is None else int(number),
                "last_seen_ms": None if seen is None else int(seen),
                "admitted": None if admitted is None else _text(admitted),
                "lapsed": None if gone is None else _text(gone),
            }
        )
    return places


async def _risk_signals(app: web.Application, user_id: int) -> dict[str, list[list[Any]]]:
    """The account's recent events the fraud check counts: stream → [[member, epoch s], …]."""
    redis, prefix = app[keys.REDIS], app[keys.CONFIG].redis_prefix
    pipe = redis.pipeline(transaction=False)
    for stream in _ACCOUNT_STREAMS:
        pipe.zrange(f"{prefix}risk:{stream}:{user_id}", 0, -1, withscores=True)
    answers = await pipe.execute()
    return {
        stream: [[_text(member), score] for member, score in events]
        for stream, events in zip(_ACCOUNT_STREAMS, answers, strict=True)
        if events
    }


async def redis_data_of(app: web.Application, user_id: int) -> dict[str, Any]:
    """Everything Redis holds about the user, for the export."""
    found = await _scan(app, user_id, None)
    conversations = await _conversations(app, found.conversations, user_id)
    return {
        "conversations": list(conversations.values()),
        "queue_places": await _places(app, found.rooms, user_id),
        "idempotent_answers": await app[keys.IDEMPOTENCY].answers_of(f"user:{user_id}"),
        "risk_signals": await _risk_signals(app, user_id),
    }


async def forget_in_redis(app: web.Application, user_id: int, email: str) -> dict[str, int]:
    """Delete what Redis holds about the user; returns how many of each went."""
    redis, prefix = app[keys.REDIS], app[keys.CONFIG].redis_prefix
    found = await _scan(app, user_id, email)
    counts: dict[str, int] = {}
    conversations = list(await _conversations(app, found.conversations, user_id))
    counts["conversations"] = int(await redis.delete(*conversations)) if conversations else 0
    room, places = app.get(keys.WAITING_ROOM), 0
    for show_id in found.rooms:
        if room is not None:
            places += int(await room.leave(show_id, user_id))
        else:  # what the room's leave script does
            base = f"{prefix}wr:{{{show_id}}}:"
            pipe = redis.pipeline(transaction=True)
            pipe.zrem(base + "q", user_id)
            pipe.hdel(base + "adm", user_id)
            pipe.zrem(base + "seen", user_id)
            pipe.hdel(base + "gone", user_id)
            pipe.hdel(base + "mark", user_id)
            places += sum(int(n) for n in (await pipe.execute())[:2])
    counts["queue_places"] = places
    counts["idempotent_answers"] = await app[keys.IDEMPOTENCY].forget_owner(f"user:{user_id}")
    streams = [f"{prefix}risk:{stream}:{user_id}" for stream in _ACCOUNT_STREAMS]
    counts["risk_signals"] = int(await redis.delete(*streams))
    shared = 0
    for key in found.shared:
        shared += int(await redis.zrem(key, str(user_id)))
    counts["risk_shared"] = shared
    counts["rate_limits"] = int(await redis.delete(*found.buckets)) if found.buckets else 0
    return counts


__all__ = ["forget_in_redis", "redis_data_of"]
