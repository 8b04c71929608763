"""The chat's HTTP form (``POST /api/v1/chat/messages``) and the human queue's admin endpoints
(``/api/v1/admin/chat/handoffs``: list, take, answer, close)."""

from __future__ import annotations

from typing import Any

from gateway import keys
from gateway.assistant import handoff
from gateway.endpoint import Call
from gateway.errors import Conflict
from gateway.ratelimit import client_address
from storage import assistant as store


async def pay_chat_limit(app: Any, request: Any, user_id: int | None) -> None:
    """429 ``rate_limited`` when the caller's chat buckets are empty."""
    limiter = app.get(keys.ASSISTANT_LIMITER)
    if limiter is not None:
        address = client_address(request, app[keys.CONFIG].forwarded_hops)
        await limiter.check("chat", user_id=user_id, address=address)


async def post_message(call: Call) -> dict[str, Any]:
    principal = call.principal
    await pay_chat_limit(call.app, call.request, None if principal is None else principal.user_id)
    engine = call.app[keys.ASSISTANT]
    conv, reply = await engine.turn(
        call.body.conversation_id, call.body.text, principal, call.request
    )
    return {"conversation_id": conv.id, "reply": reply.public()}


async def list_handoffs(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        found = await store.list_handoffs(conn, call.query.status, limit=call.query.limit)
    return {"handoffs": [handoff.handoff_out(h) for h in found]}


async def _refused(call: Call, action: str) -> Conflict:
    async with call.app[keys.POOL].acquire() as conn:
        current = await store.get_handoff(conn, call.path.handoff_id)  # 404 if none
    return Conflict(
        f"this handoff cannot be {action} now",
        {"status": current.status, "taken_by": current.taken_by},
        code="handoff_conflict",
    )


async def take_handoff(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        taken = await store.take_handoff(conn, call.path.handoff_id, call.user.user_id)
    if taken is None:
        raise await _refused(call, "taken")
    return handoff.handoff_out(taken)


async def answer_handoff(call: Call) -> dict[str, Any]:
    text = call.body.text
    async with call.app[keys.POOL].acquire() as conn:
        answered = await store.answer_handoff(conn, call.path.handoff_id, call.user.user_id, text)
    if answered is None:
        raise await _refused(call, "answered by you")
    conversations = call.app[keys.ASSISTANT].conversations
    await handoff.deliver_answer(call.app, conversations, answered.conversation_id, text)
    return handoff.handoff_out(answered)


async def close_handoff(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        closed = await store.close_handoff(conn, call.path.handoff_id)
    if closed is None:
        raise await _refused(call, "closed")
    conversations = call.app[keys.ASSISTANT].conversations
    await handoff.release_conversation(conversations, closed.conversation_id)
    return handoff.handoff_out(closed)
