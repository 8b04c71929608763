"""Request and response shapes of the chat and human-queue endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from gateway.schemas import Id, Lenient, Strict

ConversationId = Annotated[str, StringConstraints(pattern=r"^c_[A-Za-z0-9_-]{10,64}$")]
Message = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
HandoffStatus = Literal["waiting", "taken", "answered", "closed"]


class ChatMessageIn(Strict):
    conversation_id: ConversationId | None = Field(
        default=None, description="continue this conversation (default: start one)"
    )
    text: Message


class ReplyOut(BaseModel):
    text: str
    cards: list[dict[str, Any]] = Field(
        description='{"type": "shows" | "hold" | "checkout" | "booking", ...}'
    )
    source: Literal["claude", "local", "cache", "human"]
    escalated: bool


class ChatReplyOut(BaseModel):
    conversation_id: str
    reply: ReplyOut


class HandoffsQuery(Lenient):
    status: HandoffStatus | None = Field(default=None, description="default: every open one")
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class HandoffPath(Lenient):
    handoff_id: Id


class HandoffAnswerIn(Strict):
    text: Message


class TranscriptLine(BaseModel):
    role: str
    content: str


class HandoffOut(BaseModel):
    handoff_id: int
    conversation_id: str
    user_id: int | None
    reason: Literal["requested", "failures", "refund_dispute", "unavailable"]
    status: HandoffStatus
    taken_by: int | None
    transcript: list[TranscriptLine]
    created_at: str
    taken_at: str | None
    answered_at: str | None
    closed_at: str | None


class HandoffsOut(BaseModel):
    handoffs: list[HandoffOut]
