"""One chat turn, start to finish.

    engine = app[ASSISTANT]
    conversation, reply = await engine.turn(None, "action movies tonight", principal, request)

A turn: load the conversation (someone else's is ``not_found``), take the conversation's lock,
and then, in order: while a person has the conversation, add the message to their transcript;
record a yes or no to the summary awaiting the customer; hand over on request or on a refund
dispute; answer a common question from the FAQ; else let Claude answer (when a key is set and
the API is healthy) or, without a key and for any turn the API fails, the local assistant.
Three failed turns in a row hand over too. Token use goes to the conversation (Redis) and to
``chat_usage`` (Postgres); the conversation is saved with its TTL refreshed.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import actors
from gateway import keys
from gateway.assistant import confirm, faq, handoff
from gateway.assistant.base import Assistant, AssistantUnavailable, Reply
from gateway.assistant.config import AssistantConfig
from gateway.assistant.state import Conversation, ConversationStore
from gateway.assistant.tools import Tools
from gateway.errors import Conflict, ResourceNotFound
from gateway.logsafe import stack, why
from storage import assistant as store

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.auth import Principal

log = logging.getLogger(__name__)
LOCK_S = 60  # a turn holds its conversation at most this long
UNAVAILABLE_TEXT = "I can't help with that right now; a person from our team will take over here."


class _Unavailable:
    """Stands in for the local assistant when it cannot be loaded: hands over plainly."""

    async def respond(self, conversation: Conversation, text: str, tools: Tools) -> Reply:
        return Reply(UNAVAILABLE_TEXT, escalated=True, failed=True)


class ChatEngine:
    def __init__(
        self,
        app: web.Application,
        config: AssistantConfig,
        conversations: ConversationStore,
        *,
        claude: Assistant | None = None,
        local: Assistant | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.app = app
        self.config = config
        self.conversations = conversations
        self.claude = claude
        self.local = local or _Unavailable()
        self._clock = clock
        self._claude_down_until = 0.0

    async def open(self, conversation_id: str | None, principal: Principal | None) -> Conversation:
        """The caller's conversation ``conversation_id`` (404 when missing, expired or someone
        else's), or a new one."""
        user_id = None if principal is None else principal.user_id
        if conversation_id is None:
            return await self.conversations.new(user_id)
        conv = await self.conversations.load(conversation_id)
        if conv is None or (conv.user_id is not None and conv.user_id != user_id):
            raise ResourceNotFound("no such conversation", {"conversation_id": conversation_id})
        if conv.user_id is None and user_id is not None:
            conv.user_id = user_id  # a visitor who logged in keeps their conversation
        return conv

    async def turn(
        self,
        conversation_id: str | None,
        text: str,
        principal: Principal | None,
        request: web.Request | None = None,
    ) -> tuple[Conversation, Reply]:
        conv = await self.open(conversation_id, principal)
        async with self._locked(conv.id):
            if conversation_id is not None:  # re-read under the lock
                conv = await self.open(conv.id, principal)
            reply = await self._answer(conv, text, principal, request)
            conv.add("user", text, self.conversations.max_messages)
            conv.add("assistant", reply.text, self.conversations.max_messages)
            await self.conversations.save(conv)
        return conv, reply

    @contextlib.asynccontextmanager
    async def _locked(self, conversation_id: str) -> AsyncIterator[None]:
        redis = self.app[keys.REDIS]
        key = f"{self.conversations.key(conversation_id)}:lock"
        token = secrets.token_hex(8)
        if not await redis.set(key, token, nx=True, ex=LOCK_S):
            raise Conflict(
                "the previous message of this conversation is still being answered",
                {"conversation_id": conversation_id},
                code="conversation_busy",
            )
        try:
            yield
        finally:
            if await redis.get(key) in (token, token.encode()):
                await redis.delete(key)

    async def _answer(
        self, conv: Conversation, text: str, principal: Principal | None, request: Any
    ) -> Reply:
        conv.turn += 1
        if conv.escalated:
            await handoff.add_to_transcript(self.app, conv, text)
            return Reply(handoff.WAITING_TEXT, source="human", escalated=True)
        tools = Tools(self.app, principal, conv, request=request)
        await self._record_answer_to_summary(conv, text, tools)
        if handoff.wants_human(text):
            return await self._escalate(conv, text, "requested")
        if handoff.refund_dispute(text):
            return await self._escalate(conv, text, "refund_dispute")
        cached = faq.match(text) if conv.pending is None else None
        if cached is not None:
            topic, answer = cached
            prefix = self.app[keys.CONFIG].redis_prefix
            await self.app[keys.REDIS].hincrby(f"{prefix}chat:faq", topic, 1)
            conv.failures = 0
            return Reply(answer, source="cache")
        before = {m: dict(u) for m, u in conv.usage.items()}
        reply = await self._assistant_reply(conv, text, tools)
        await self._store_usage(conv, before)
        conv.failures = conv.failures + 1 if reply.failed else 0
        if reply.escalated or conv.failures >= self.config.failures_to_escalate:
            reason = "unavailable" if reply.text == UNAVAILABLE_TEXT else "failures"
            await handoff.escalate(self.app, conv, reason, latest=text)
            if not reply.escalated:  # the assistant did not say so itself
                reply.text = f"{reply.text}\n\n{handoff.ESCALATED_TEXT}".strip()
            reply.escalated = True
        return reply

    async def _escalate(self, conv: Conversation, text: str, reason: str) -> Reply:
        await handoff.escalate(self.app, conv, reason, latest=text)
        return Reply(handoff.ESCALATED_TEXT, source="human", escalated=True)

    async def _record_answer_to_summary(self, conv: Conversation, text: str, tools: Tools) -> None:
        pending = conv.pending
        if pending is None or pending.get("confirmed"):
            return
        if confirm.is_yes(text):
            pending["confirmed"] = True
        elif confirm.is_no(text) and pending.get("kind") == "checkout" and conv.user_id:
            conv.pending = None  # the customer said no: give the seats back
            with contextlib.suppress(Exception):
                command = actors.Release(str(pending["hold_id"]), str(conv.user_id))
                await self.app[keys.ENGINE].execute(int(pending["show_id"]), command)

    async def _assistant_reply(self, conv: Conversation, text: str, tools: Tools) -> Reply:
        if self.claude is not None and self._clock() >= self._claude_down_until:
            try:
                return await self.claude.respond(conv, text, tools)
            except AssistantUnavailable as exc:
                log.warning(
                    "assistant: Claude unavailable (%s), the local assistant answers", why(exc)
                )
                self._claude_down_until = self._clock() + self.config.retry_after_s
                tools.cards.clear()
        try:
            return await self.local.respond(conv, text, tools)
        except Exception as exc:  # a bug must not leave the customer without an answer
            log.error("assistant: the local assistant failed: %s\n%s", why(exc), stack(exc))
            return Reply(UNAVAILABLE_TEXT, escalated=True, failed=True)

    async def _store_usage(self, conv: Conversation, before: dict[str, dict[str, int]]) -> None:
        for model, now in conv.usage.items():
            was = before.get(model, {})
            calls = now.get("calls", 0) - was.get("calls", 0)
            if calls <= 0:
                continue
            async with self.app[keys.POOL].acquire() as conn:
                await store.record_usage(
                    conn,
                    conv.id,
                    conv.user_id,
                    model,
                    input_tokens=now.get("input", 0) - was.get("input", 0),
                    output_tokens=now.get("output", 0) - was.get("output", 0),
                    calls=calls,
                )


__all__ = ["UNAVAILABLE_TEXT", "ChatEngine"]
