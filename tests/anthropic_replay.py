"""A Messages API on loopback that replays recorded turns, for the Claude path's tests.

    async with ReplayServer.start(load("book_flow"), values={"show_id": 7}) as server:
        config = AssistantConfig(anthropic_api_key="test", anthropic_base_url=server.url)
        ...
    assert server.problems == []

A recording (``tests/data/claude/<name>.json``) is a list of steps; each answers one
``POST /v1/messages`` in order and says what the request must hold:

    {"expect": {"model": "small" | "large" | "<id>", "tools": ["search_movies", ...],
                "user_text": "substring of the last customer text",
                "tool_result": {"tool": "hold_seats", "is_error": false, "contains": "..."}},
     "response": {<a Messages API response; "{{name}}" is replaced by a value>},
     "status": 200}

Values are those the test gives and every top-level field of the tool results the SDK sends
back (so a recorded ``start_checkout`` can name the ``hold_id`` the real ``hold_seats``
made). A step whose expectations fail is recorded in ``problems`` and answered with a 400.
``mode = "down"`` answers every request with 529 overloaded.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

DATA = Path(__file__).parent / "data" / "claude"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def load(name: str) -> list[dict[str, Any]]:
    return list(json.loads((DATA / f"{name}.json").read_text()))


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and whole[1] in values:
            return values[whole[1]]  # keeps the value's type (an id stays a number)
        return _PLACEHOLDER.sub(lambda m: str(values.get(m[1], m[0])), value)
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


class ReplayServer:
    def __init__(self, steps: list[dict[str, Any]], values: dict[str, Any] | None = None) -> None:
        self.steps = steps
        self.values = dict(values or {})
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.mode = "replay"
        self.small = "claude-haiku-4-5"
        self.large = "claude-sonnet-4-5"
        self.url = ""
        self._tool_names: dict[str, str] = {}  # tool_use id → tool name

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, steps: list[dict[str, Any]], values: dict[str, Any] | None = None
    ) -> AsyncIterator[ReplayServer]:
        server = cls(steps, values)
        app = web.Application()
        app.router.add_post("/v1/messages", server._messages)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        server.url = f"http://127.0.0.1:{port}"
        try:
            yield server
        finally:
            await runner.cleanup()

    @property
    def done(self) -> bool:
        return len(self.requests) >= len(self.steps)

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.mode == "down":
            error = {"type": "overloaded_error", "message": "Overloaded"}
            return web.json_response({"type": "error", "error": error}, status=529)
        index = len(self.requests) - 1
        if index >= len(self.steps):
            return self._refuse(f"request {index}: no recorded step left")
        step = self.steps[index]
        self._learn(body)
        wrong = self._check(_fill(step.get("expect", {}), self.values), body, request)
        if wrong:
            return self._refuse(f"step {index}: {wrong}")
        return web.json_response(
            _fill(step["response"], self.values), status=step.get("status", 200)
        )

    def _refuse(self, problem: str) -> web.Response:
        self.problems.append(problem)
        error = {"type": "invalid_request_error", "message": problem}
        return web.json_response({"type": "error", "error": error}, status=400)

    def _learn(self, body: dict[str, Any]) -> None:
        """Remember tool_use ids, and the fields of the tool results just sent back."""
        for message in body.get("messages", []):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for block in content:
                if block.get("type") == "tool_use":
                    self._tool_names[block["id"]] = block["name"]
        for block in _blocks(body["messages"][-1]):
            if block.get("type") == "tool_result":
                try:
                    result = json.loads(block.get("content") or "{}")
                except (TypeError, ValueError):
                    continue
                if isinstance(result, dict):
                    self.values.update({k: v for k, v in result.items() if _scalar(v)})

    def _check(self, expect: dict[str, Any], body: dict[str, Any], request: web.Request) -> str:
        sent = {request.headers.get("x-api-key"), request.headers.get("Authorization")}
        if not sent & {"test-key", "Bearer test-key"}:
            return "the API key was not sent"
        model = {"small": self.small, "large": self.large}.get(expect.get("model", ""))
        if expect.get("model") and body.get("model") != (model or expect["model"]):
            return f"model {body.get('model')!r}, expected {model or expect['model']!r}"
        offered = sorted(t["name"] for t in body.get("tools", []))
        if "tools" in expect and sorted(expect["tools"]) != offered:
            return f"tools {offered}, expected {sorted(expect['tools'])}"
        if not body.get("system") or "explicit yes" not in str(body["system"]):
            return "the system prompt does not state the confirmation rule"
        last = body["messages"][-1]
        if "user_text" in expect:
            text = last["content"] if isinstance(last["content"], str) else ""
            if last["role"] != "user" or expect["user_text"] not in text:
                return f"last message {last!r}, expected the customer's {expect['user_text']!r}"
        if "tool_result" in expect:
            return self._check_result(expect["tool_result"], last)
        return ""

    def _check_result(self, wanted: dict[str, Any], last: dict[str, Any]) -> str:
        results = [b for b in _blocks(last) if b.get("type") == "tool_result"]
        if last["role"] != "user" or not results:
            return f"expected a tool_result, got {last!r}"
        block = results[0]
        name = self._tool_names.get(block.get("tool_use_id", ""))
        if wanted.get("tool") and name != wanted["tool"]:
            return f"a result of {name!r}, expected {wanted['tool']!r}"
        if "is_error" in wanted and bool(block.get("is_error")) != wanted["is_error"]:
            return f"is_error {block.get('is_error')!r} in {block!r}"
        if wanted.get("contains") and wanted["contains"] not in str(block.get("content")):
            return f"{wanted['contains']!r} not in {block.get('content')!r}"
        return ""


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def message(
    content: list[dict[str, Any]], stop_reason: str, model: str = "claude-haiku-4-5"
) -> dict[str, Any]:
    """A Messages API response (for recordings written in code)."""
    return {
        "id": "msg_replay",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 20},
    }
