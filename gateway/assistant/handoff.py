"""Escalation to a person: when the customer asks, after repeated failed turns, or on a refund
dispute, the conversation opens a row in ``chat_handoffs`` (the human queue); an admin takes it
and answers, and the answer reaches the customer's open chat websocket through Redis pub/sub
(``<prefix>chat:agent:<conversation id>``) and stays in the conversation for when they return.

    if wants_human(text): ...
    handoff = await escalate(app, conversation, "requested")
    await deliver_answer(app, handoff.conversation_id, "Hi, I can help with that.")
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from gateway import keys
from storage import assistant as store

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.assistant.state import Conversation, ConversationStore

_HUMAN = re.compile(
    r"\b(talk|speak|chat|connect|put)\b.{0,30}\b(human|person|agent|someone|somebody|"
    r"representative|staff|manager|operator)\b|\b(real|live) (person|human|agent)\b|"
    r"^\s*(human|agent|operator|representative)( please)?\W*$",
    re.IGNORECASE,
)
_REFUND = re.compile(r"\b(refund|refunded|money back|charged|charge)\b", re.IGNORECASE)
_DISPUTE = re.compile(
    r"\b(wrong|not (fair|right|enough|correct)|unfair|dispute|only got|only refunded|"
    r"should have (got|been)|less than|short|denied|refused|rejected|why (was|did|didn't|is)|"
    r"complain|complaint|overcharged|scam|ripped off|still (haven't|have not|not))\b",
    re.IGNORECASE,
)

ESCALATED_TEXT = (
    "I've passed our conversation to a person from our team; they'll answer here shortly. "
    "Anything you add now goes to them."
)
WAITING_TEXT = "Thanks, I've added that for the person handling your conversation."


def wants_human(text: str) -> bool:
    return bool(_HUMAN.search(text))


def refund_dispute(text: str) -> bool:
    """The customer disputes a refund (its amount, or a refusal)."""
    return bool(_REFUND.search(text) and _DISPUTE.search(text))


def channel(prefix: str, conversation_id: str) -> str:
    return f"{prefix}chat:agent:{conversation_id}"


async def escalate(
    app: web.Application, conv: Conversation, reason: str, *, latest: str | None = None
) -> store.Handoff:
    """Open (or find) the conversation's handoff, its transcript the conversation so far and
    the customer's ``latest`` message; the conversation is escalated from now on."""
    transcript = list(conv.messages)
    if latest is not None:
        transcript.append({"role": "user", "content": latest})
    async with app[keys.POOL].acquire() as conn:
        handoff = await store.open_handoff(conn, conv.id, conv.user_id, reason, transcript)
    conv.escalated = True
    conv.handoff_id = handoff.id
    conv.pending = None
    return handoff


async def add_to_transcript(app: web.Application, conv: Conversation, text: str) -> None:
    if conv.handoff_id is None:
        return
    async with app[keys.POOL].acquire() as conn:
        await store.append_transcript(conn, conv.handoff_id, [{"role": "user", "content": text}])


async def deliver_answer(
    app: web.Application, conversations: ConversationStore, conversation_id: str, text: str
) -> None:
    """Put a person's answer in the conversation (if it is still alive) and push it to the
    customer's open websockets."""
    conv = await conversations.load(conversation_id)
    if conv is not None:
        conv.add("agent", text)
        await conversations.save(conv)
    prefix = app[keys.CONFIG].redis_prefix
    message = json.dumps({"type": "agent", "text": text})
    await app[keys.REDIS].publish(channel(prefix, conversation_id), message)


async def release_conversation(conversations: ConversationStore, conversation_id: str) -> None:
    """The handoff is closed: the assistant answers the conversation again."""
    conv = await conversations.load(conversation_id)
    if conv is not None:
        conv.escalated = False
        conv.handoff_id = None
        conv.failures = 0
        await conversations.save(conv)


def handoff_out(h: store.Handoff) -> dict[str, Any]:
    return {
        "handoff_id": h.id,
        "conversation_id": h.conversation_id,
        "user_id": h.user_id,
        "reason": h.reason,
        "status": h.status,
        "taken_by": h.taken_by,
        "transcript": [
            {"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
            for m in h.transcript
            if isinstance(m, dict)
        ],
        "created_at": h.created_at.isoformat(),
        "taken_at": None if h.taken_at is None else h.taken_at.isoformat(),
        "answered_at": None if h.answered_at is None else h.answered_at.isoformat(),
        "closed_at": None if h.closed_at is None else h.closed_at.isoformat(),
    }


__all__ = [
    "ESCALATED_TEXT",
    "add_to_transcript",
    "channel",
    "deliver_answer",
    "escalate",
    "handoff_out",
    "refund_dispute",
    "release_conversation",
    "wants_human",
]
