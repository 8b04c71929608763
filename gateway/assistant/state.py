"""A conversation's state, kept in Redis with a sliding TTL (30 minutes by default).

    store = ConversationStore(redis, "seatserver:", ttl_s=1800, max_messages=40)
    conv = await store.new(user_id=7)          # or None for a visitor
    conv.add("user", "two seats tonight")
    await store.save(conv)                      # refreshes the TTL
    again = await store.load(conv.id)           # None once expired

``messages`` are ``{"role": "user" | "assistant" | "agent", "content": str}`` trimmed to the last
``max_messages``. ``pending`` is what awaits the customer's yes: ``{"kind": "checkout",
"show_id", "hold_id", "summary", "confirmed": bool}``. ``slots`` belongs to the local assistant
(chosen movie, show, seat count, …). ``usage`` is tokens by model: ``{model: {"input",
"output", "calls"}}``.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any


def new_id() -> str:
    return "c_" + secrets.token_urlsafe(16)


@dataclass
class Conversation:
    id: str
    user_id: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    failures: int = 0
    escalated: bool = False
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    turn: int = 0  # user messages so far (idempotency of tool calls is derived from it)
    handoff_id: int | None = None
    created_at: float = field(default_factory=time.time)

    def add(self, role: str, content: str, limit: int = 40) -> None:
        self.messages.append({"role": role, "content": content})
        del self.messages[:-limit]

    def record_usage(self, model: str, input_tokens: int, output_tokens: int) -> None:
        entry = self.usage.setdefault(model, {"input": 0, "output": 0, "calls": 0})
        entry["input"] += input_tokens
        entry["output"] += output_tokens
        entry["calls"] += 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Conversation:
        data = json.loads(raw)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class ConversationStore:
    def __init__(
        self, redis: Any, prefix: str, *, ttl_s: int = 1800, max_messages: int = 40
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self.ttl_s = ttl_s
        self.max_messages = max_messages

    def key(self, conversation_id: str) -> str:
        return f"{self._prefix}chat:conv:{conversation_id}"

    async def new(self, user_id: int | None) -> Conversation:
        conv = Conversation(id=new_id(), user_id=user_id)
        await self.save(conv)
        return conv

    async def load(self, conversation_id: str) -> Conversation | None:
        raw = await self._redis.get(self.key(conversation_id))
        return None if raw is None else Conversation.from_json(raw)

    async def save(self, conv: Conversation) -> None:
        del conv.messages[: -self.max_messages]
        await self._redis.set(self.key(conv.id), conv.to_json(), ex=self.ttl_s)


__all__ = ["Conversation", "ConversationStore", "new_id"]
