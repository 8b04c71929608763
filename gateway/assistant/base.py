"""What every assistant answers with, and what an assistant is.

    reply = await assistant.respond(conversation, "two seats for the 7pm show", tools)
    reply.text, reply.cards   # cards: {"type": "shows" | "hold" | "checkout" | "booking", ...}

Cards the page renders:

- ``{"type": "shows", "shows": [{"show_id", "movie_id", "title", "theater_name", "starts_at",
  "prices", "currency"}, ...]}``
- ``{"type": "hold", "show_id", "hold_id", "seats", "total_cents", "currency", "expires_at"}``
- ``{"type": "checkout", "show_id", "hold_id", "payment_id"}`` (the page opens its payment form)
- ``{"type": "booking", "booking_id", "status", ...}`` (``booking_out`` of the HTTP API)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway.assistant.state import Conversation
    from gateway.assistant.tools import Tools

SOURCES = ("claude", "local", "cache", "human")


@dataclass
class Reply:
    text: str
    cards: list[dict[str, Any]] = field(default_factory=list)
    source: str = "local"  # "claude" | "local" | "cache" | "human"
    escalated: bool = False
    # The assistant could not do what was asked (counts towards escalation after 3 in a row).
    failed: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "cards": self.cards,
            "source": self.source,
            "escalated": self.escalated,
        }


class Assistant(Protocol):
    async def respond(self, conversation: Conversation, text: str, tools: Tools) -> Reply: ...


class AssistantUnavailable(Exception):
    """The assistant cannot answer this turn (API down, timeout, bad answer): another does."""


__all__ = ["SOURCES", "Assistant", "AssistantUnavailable", "Reply"]
