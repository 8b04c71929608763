"""The booking assistant: a chat (HTTP form and websocket) answered by Claude with tools that
act as the customer, by a local assistant without a key or when the API fails, from a small FAQ
cache for common questions, or by a person from the human queue.

``ENDPOINTS`` joins the gateway's endpoint table, ``assistant_ctx`` sets the assistant up per
application, ``chat_socket`` serves ``/ws/chat``. Imports downhill only: the gateway's own
modules, ``actors``, ``storage``, ``payments``; no torch, scikit-learn or faiss.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.assistant import schemas as s
from gateway.assistant import views
from gateway.assistant.config import AssistantConfig, chat_limits
from gateway.assistant.engine import ChatEngine
from gateway.assistant.state import ConversationStore
from gateway.assistant.ws import chat_socket
from gateway.endpoint import Endpoint

log = logging.getLogger(__name__)
API = "/api/v1"
OPS = ("admin",)
HANDOFF_ERRORS = (401, 403, 404, 409, 422)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        API + "/chat/messages",
        views.post_message,
        "Say something to the booking assistant (login optional: visitors may search)",
        "assistant",
        body=s.ChatMessageIn,
        response=s.ChatReplyOut,
        auth=("optional",),
        idempotency="optional",
        audit="personal_data.chat",
        errors=(401, 404, 409, 422, 429),
    ),
    Endpoint(
        "GET",
        API + "/admin/chat/handoffs",
        views.list_handoffs,
        "Conversations handed to a person, oldest first",
        "assistant",
        query=s.HandoffsQuery,
        response=s.HandoffsOut,
        auth=OPS,
        audit="personal_data.chat_handoffs",
        idempotency="none",
        errors=(401, 403, 422, 503),
    ),
    Endpoint(
        "POST",
        API + "/admin/chat/handoffs/{handoff_id}/take",
        views.take_handoff,
        "Take a waiting conversation",
        "assistant",
        path_model=s.HandoffPath,
        response=s.HandoffOut,
        auth=OPS,
        errors=HANDOFF_ERRORS,
    ),
    Endpoint(
        "POST",
        API + "/admin/chat/handoffs/{handoff_id}/answer",
        views.answer_handoff,
        "Answer a conversation you took (pushed to the customer's chat)",
        "assistant",
        path_model=s.HandoffPath,
        body=s.HandoffAnswerIn,
        response=s.HandoffOut,
        auth=OPS,
        errors=HANDOFF_ERRORS,
    ),
    Endpoint(
        "POST",
        API + "/admin/chat/handoffs/{handoff_id}/close",
        views.close_handoff,
        "Close a conversation: the assistant answers it again",
        "assistant",
        path_model=s.HandoffPath,
        response=s.HandoffOut,
        auth=OPS,
        errors=HANDOFF_ERRORS,
    ),
)


def _local_assistant(app: web.Application) -> Any:
    """The local assistant, quoting refunds by this deployment's policy."""
    from gateway.assistant.local import LocalAssistant
    from payments.policy import RefundPolicy

    payments = app[keys.CONFIG].payments
    if payments is None:
        return LocalAssistant()
    return LocalAssistant(policy=RefundPolicy.parse(payments.refund_policy))


async def assistant_ctx(app: web.Application) -> AsyncIterator[None]:
    """The chat engine (Claude when a key is set, the local assistant, the FAQ, the human
    queue) and the chat's rate limiter."""
    config = app[keys.CONFIG].assistant or AssistantConfig()
    prefix = app[keys.CONFIG].redis_prefix
    conversations = ConversationStore(
        app[keys.REDIS], prefix, ttl_s=config.conversation_ttl_s, max_messages=config.max_messages
    )
    claude, client = None, None
    if config.claude_enabled:
        from gateway.assistant.claude import ClaudeAssistant, client_of

        client = client_of(config)
        claude = ClaudeAssistant(client, config)
    app[keys.ASSISTANT] = ChatEngine(
        app, config, conversations, claude=claude, local=_local_assistant(app)
    )
    if config.rate_user is not None or config.rate_ip is not None:
        from gateway.ratelimit import Limiter

        app[keys.ASSISTANT_LIMITER] = Limiter(
            app[keys.REDIS], prefix, chat_limits(config), secret=app[keys.CONFIG].jwt_secret
        )
    try:
        yield
    finally:
        if client is not None:
            await client.close()


__all__ = ["ENDPOINTS", "AssistantConfig", "assistant_ctx", "chat_socket"]
