"""The Claude path: the Messages API through the ``anthropic`` SDK, with the assistant's tools.

    claude = ClaudeAssistant(anthropic.AsyncAnthropic(api_key=..., base_url=...), config)
    reply = await claude.respond(conversation, "two seats for the 7pm show", tools)

A turn is a bounded tool loop: the model answers, or asks for tools (``tool_use``); each tool
runs as the customer (``Tools``) and its result (or its error, ``is_error``) goes back as a
``tool_result``; at most ``config.max_steps`` model calls a turn. The small model answers
first; it calls ``ask_larger_model`` for what it cannot handle, and a conversation longer than
``large_after_turns`` starts on the large model. Every call's tokens go to
``conversation.usage``. Any API error or timeout raises ``AssistantUnavailable``: the engine
lets the local assistant answer the turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import anthropic

from gateway.assistant.base import AssistantUnavailable, Reply
from gateway.assistant.config import AssistantConfig
from gateway.assistant.tools import ToolError
from gateway.logsafe import stack, why

if TYPE_CHECKING:
    from gateway.assistant.state import Conversation
    from gateway.assistant.tools import Tools

log = logging.getLogger(__name__)
ESCALATE = "ask_larger_model"
TOO_LONG_TEXT = "Sorry, I got lost working that out. Could you say it another way?"

SYSTEM = """You are the booking assistant of a movie-ticket site. You help the logged-in \
customer find shows, check seats, hold seats, start checkout, see and cancel their bookings.
Rules you must always follow:
1. Never call start_checkout until you have shown the customer a summary of the hold (seats, \
show, total) and they answered with an explicit yes. hold_seats gives you that summary. If \
start_checkout answers confirmation_required, show the summary and ask for a yes.
2. You act only for this customer and only on their own holds and bookings. A not_found \
answer means the booking is not theirs or does not exist: say so, never guess.
3. You never take card details: checkout opens the payment form on the page.
4. If the customer asks for a person, or disputes a refund, say a person from the team will \
take over (the system hands the conversation over).
5. If a tool fails (for example the seats were taken), explain briefly and try a sensible \
alternative such as the best available seats.
6. If the request is complex or you are unsure, call ask_larger_model.
Keep answers short and plain; times are in the theater's time zone."""

_ID = {"type": "integer", "minimum": 1}
TOOLS: list[dict[str, Any]] = [
    {
        "name": "search_movies",
        "description": "Find movies and their next shows from free text (genres, titles, "
        "times like 'tonight', places, prices).",
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "city_id": _ID},
            "required": ["query"],
        },
    },
    {
        "name": "get_showtimes",
        "description": "Shows of one movie, on a date (YYYY-MM-DD) or in the next 36 hours.",
        "input_schema": {
            "type": "object",
            "properties": {"movie_id": _ID, "city_id": _ID, "date": {"type": "string"}},
            "required": ["movie_id"],
        },
    },
    {
        "name": "check_seats",
        "description": "Seats left in a show by category, prices, and suggested best seats.",
        "input_schema": {
            "type": "object",
            "properties": {"show_id": _ID, "category": {"type": "string"}},
            "required": ["show_id"],
        },
    },
    {
        "name": "hold_seats",
        "description": "Hold given seats, or the best `count` seats of a category, for the "
        "customer (5 minutes). Answers with a summary to confirm before checkout.",
        "input_schema": {
            "type": "object",
            "properties": {
                "show_id": _ID,
                "seats": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
                "count": {"type": "integer", "minimum": 1, "maximum": 10},
                "category": {"type": "string"},
            },
            "required": ["show_id"],
        },
    },
    {
        "name": "start_checkout",
        "description": "Start paying for a hold. Only after the customer said yes to its "
        "summary; the page then shows the payment form.",
        "input_schema": {
            "type": "object",
            "properties": {"show_id": _ID, "hold_id": {"type": "string"}},
            "required": ["show_id", "hold_id"],
        },
    },
    {
        "name": "cancel_booking",
        "description": "Cancel one of the customer's bookings (refund by the policy).",
        "input_schema": {
            "type": "object",
            "properties": {"booking_id": {"type": "string"}},
            "required": ["booking_id"],
        },
    },
    {
        "name": "booking_status",
        "description": "One of the customer's bookings, or without an id their upcoming ones.",
        "input_schema": {"type": "object", "properties": {"booking_id": {"type": "string"}}},
    },
    {
        "name": ESCALATE,
        "description": "Hand this turn to a larger model when it is complex or you are unsure.",
        "input_schema": {"type": "object", "properties": {"reason": {"type": "string"}}},
    },
]


def client_of(config: AssistantConfig) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key=config.anthropic_api_key,
        base_url=config.anthropic_base_url,
        timeout=config.timeout_s,
        max_retries=1,
    )


def history(conv: Conversation, text: str) -> list[dict[str, Any]]:
    """The conversation as Messages-API turns: alternating, starting with the customer."""
    turns: list[dict[str, Any]] = []
    for m in [*conv.messages, {"role": "user", "content": text}]:
        role = "user" if m.get("role") == "user" else "assistant"
        content = str(m.get("content", ""))
        if m.get("role") == "agent":
            content = f"(a person from our team wrote:) {content}"
        if not content:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + content
        elif turns or role == "user":
            turns.append({"role": role, "content": content})
    return turns


def _system(conv: Conversation) -> str:
    pending = conv.pending
    if not pending:
        return SYSTEM
    said = "The customer HAS said yes" if pending.get("confirmed") else "No yes from them yet"
    return (
        f"{SYSTEM}\n\nAwaiting the customer's confirmation: {pending.get('summary')} "
        f"(show_id {pending.get('show_id')}, hold_id {pending.get('hold_id')}). {said}."
    )


class ClaudeAssistant:
    def __init__(self, client: anthropic.AsyncAnthropic, config: AssistantConfig) -> None:
        self.client = client
        self.config = config

    async def respond(self, conversation: Conversation, text: str, tools: Tools) -> Reply:
        config = self.config
        large = conversation.turn > config.large_after_turns
        messages = history(conversation, text)
        for _ in range(config.max_steps):
            model = config.large_model if large else config.small_model
            answer = await self._create(model, _system(conversation), messages, large)
            conversation.record_usage(
                model, answer.usage.input_tokens or 0, answer.usage.output_tokens or 0
            )
            content = [block.model_dump(exclude_none=True) for block in answer.content]
            messages.append({"role": "assistant", "content": content})
            uses = [b for b in answer.content if b.type == "tool_use"]
            if answer.stop_reason != "tool_use" or not uses:
                said = "".join(b.text for b in answer.content if b.type == "text").strip()
                return Reply(said or "…", cards=list(tools.cards), source="claude")
            results = []
            for use in uses:
                if use.name == ESCALATE:
                    large = True
                    outcome, failed = {"ok": True, "note": "a larger model continues"}, False
                else:
                    outcome, failed = await self._run(tools, use.name, dict(use.input or {}))
                result = {"type": "tool_result", "tool_use_id": use.id}
                result["content"] = json.dumps(outcome, default=str)
                if failed:
                    result["is_error"] = True
                results.append(result)
            messages.append({"role": "user", "content": results})
        return Reply(TOO_LONG_TEXT, cards=list(tools.cards), source="claude", failed=True)

    async def _run(self, tools: Tools, name: str, args: dict[str, Any]) -> tuple[Any, bool]:
        try:
            return await tools.run(name, args), False
        except ToolError as exc:
            return exc.public(), True
        except Exception as exc:  # the model hears of it and may try another way
            # Its type and frames only: its message may quote the customer (gateway.logsafe).
            log.error("assistant: tool %s failed: %s\n%s", name, why(exc), stack(exc))
            return {"error": "internal_error", "message": "this failed on our side"}, True

    async def _create(
        self, model: str, system: str, messages: list[dict[str, Any]], large: bool
    ) -> Any:
        offered = TOOLS if not large else [t for t in TOOLS if t["name"] != ESCALATE]
        try:
            async with asyncio.timeout(self.config.timeout_s):
                return await self.client.messages.create(
                    model=model,
                    max_tokens=self.config.max_tokens,
                    system=system,
                    messages=messages,  # type: ignore[arg-type]
                    tools=offered,  # type: ignore[arg-type]
                )
        except (anthropic.APIError, TimeoutError) as exc:
            raise AssistantUnavailable(f"{type(exc).__name__}: {exc}") from exc


__all__ = ["SYSTEM", "TOOLS", "ClaudeAssistant", "client_of", "history"]
