"""The chat without Claude: the HTTP form and the websocket, the FAQ cache, conversations
kept to their owner, and escalation to the human queue with its admin endpoints (take, answer
pushed to the customer's open websocket, close)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway import keys
from gateway.app import create_app
from gateway.assistant import AssistantConfig
from gateway.assistant.base import Reply
from gateway.rates import Rate
from tests.gateway_support import Account, make_account, new_key
from tests.integration.shows import Engine

HANDOFFS = "/api/v1/admin/chat/handoffs"


@pytest.fixture
async def client(
    aiohttp_client: Any, config: Any, engine: Engine, redis: Any
) -> AsyncIterator[Any]:
    yield await aiohttp_client(create_app(config, engine=engine.client))
    found = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    if found:
        await redis.delete(*found)


async def _post(client: Any, who: Account | None, body: dict[str, Any]) -> tuple[int, Any]:
    headers = {**new_key(), **(who.headers if who else {})}
    resp = await client.post("/api/v1/chat/messages", json=body, headers=headers)
    return resp.status, await resp.json()


async def _admin(client: Any, who: Account, method: str, path: str, body: Any = None) -> Any:
    resp = await client.request(method, path, json=body, headers={**new_key(), **who.headers})
    return resp.status, await resp.json()


async def _receive(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads((await ws.receive(timeout=10)).data)
        if message["type"] == kind:
            return message  # type: ignore[no-any-return]
        assert message["type"] != "error", message


async def test_faq_answered_from_cache_and_counted(client: Any, config: Any, redis: Any) -> None:
    status, body = await _post(client, None, {"text": "What is your refund policy?"})
    assert status == 200 and body["reply"]["source"] == "cache", body
    assert "refund" in body["reply"]["text"]
    hits = await redis.hget(f"{config.redis_prefix}chat:faq", "refund_policy")
    assert int(hits) == 1


async def test_validation_and_ownership(client: Any, pool: Any, config: Any) -> None:
    alice, bob = await make_account(pool, config), await make_account(pool, config)
    for bad in ({"text": ""}, {"text": "x" * 2001}, {"text": "hi", "extra": 1}, {}):
        status, body = await _post(client, alice, bad)
        assert status == 422 and body["error"]["code"] == "validation_failed", bad
    status, body = await _post(client, alice, {"text": "how do holds work"})
    assert status == 200
    mine = body["conversation_id"]
    for stranger in (bob, None):
        status, body = await _post(client, stranger, {"conversation_id": mine, "text": "hi"})
        assert status == 404 and body["error"]["code"] == "not_found", body
    status, body = await _post(client, alice, {"conversation_id": "c_" + "x" * 22, "text": "hi"})
    assert status == 404


async def test_escalation_and_the_human_queue(client: Any, pool: Any, config: Any) -> None:
    alice = await make_account(pool, config)
    ops = await make_account(pool, config, "admin")
    ws = await client.ws_connect("/ws/chat")
    await ws.send_json({"type": "auth", "access_token": alice.token})
    ready = await _receive(ws, "ready")
    conv = ready["conversation_id"]
    await ws.send_json({"type": "message", "text": "I want to talk to a human please"})
    reply = await _receive(ws, "reply")
    assert reply["escalated"] is True and reply["source"] == "human", reply

    status, body = await _admin(client, alice, "GET", HANDOFFS)
    assert status == 403
    status, body = await _admin(client, ops, "GET", HANDOFFS + "?status=waiting")
    [handoff] = [h for h in body["handoffs"] if h["conversation_id"] == conv]
    assert handoff["reason"] == "requested" and handoff["user_id"] == alice.user_id
    assert handoff["transcript"][-1]["content"] == "I want to talk to a human please"
    path = f"{HANDOFFS}/{handoff['handoff_id']}"

    await ws.send_json({"type": "message", "text": "my order number is 42"})
    reply = await _receive(ws, "reply")  # to the person, not a model
    assert reply["source"] == "human" and reply["escalated"] is True
    status, taken = await _admin(client, ops, "POST", path + "/take")
    assert status == 200 and taken["status"] == "taken" and taken["taken_by"] == ops.user_id
    assert taken["transcript"][-1]["content"] == "my order number is 42"
    status, body = await _admin(client, alice, "POST", path + "/answer", {"text": "x"})
    assert status == 403
    status, answered = await _admin(client, ops, "POST", path + "/answer", {"text": "Hi Alice!"})
    assert status == 200 and answered["status"] == "answered"
    agent = await _receive(ws, "agent")
    assert agent == {"type": "agent", "text": "Hi Alice!"}
    await ws.close()

    bob = await make_account(pool, config)  # someone else's conversation: a new one of his own
    ws = await client.ws_connect("/ws/chat")
    await ws.send_json({"type": "auth", "access_token": bob.token, "conversation_id": conv})
    fresh = await _receive(ws, "ready")
    assert fresh["conversation_id"] != conv and fresh["messages"] == []
    await ws.send_json({"type": "resume", "conversation_id": conv})
    refused = await _receive(ws, "error")
    assert refused["code"] == "not_found"
    await ws.close()

    ws = await client.ws_connect("/ws/chat")  # back later: the answer is in the conversation
    await ws.send_json({"type": "auth", "access_token": alice.token, "conversation_id": conv})
    resumed = await _receive(ws, "ready")
    assert resumed["conversation_id"] == conv and resumed["escalated"] is True
    assert {"role": "agent", "content": "Hi Alice!"} in resumed["messages"]
    await ws.send_json({"type": "resume", "conversation_id": conv})  # the later message, too
    assert (await _receive(ws, "ready"))["conversation_id"] == conv

    status, closed = await _admin(client, ops, "POST", path + "/close")
    assert status == 200 and closed["status"] == "closed"
    status, _ = await _admin(client, ops, "POST", path + "/close")
    assert status == 409
    await ws.send_json({"type": "message", "text": "how long are seats held?"})
    reply = await _receive(ws, "reply")
    assert reply["source"] == "cache" and reply["escalated"] is False
    await ws.close()


async def test_refund_dispute_goes_to_a_person(client: Any, pool: Any, config: Any) -> None:
    alice = await make_account(pool, config)
    text = "You only refunded me half, that is not fair"
    status, body = await _post(client, alice, {"text": text})
    assert status == 200 and body["reply"]["escalated"] is True
    ops = await make_account(pool, config, "admin")
    _, listed = await _admin(client, ops, "GET", HANDOFFS)
    [handoff] = [h for h in listed["handoffs"] if h["conversation_id"] == body["conversation_id"]]
    assert handoff["reason"] == "refund_dispute"


class _Failing:
    async def respond(self, conversation: Any, text: str, tools: Any) -> Reply:
        return Reply("Sorry, I did not get that.", failed=True)


async def test_three_failed_turns_hand_over(client: Any, pool: Any, config: Any) -> None:
    client.app[keys.ASSISTANT].local = _Failing()
    conv = None
    for turn in range(3):
        body: dict[str, Any] = {"text": f"blorp {turn}"}
        if conv:
            body["conversation_id"] = conv
        status, answer = await _post(client, None, body)
        assert status == 200
        conv = answer["conversation_id"]
        assert answer["reply"]["escalated"] is (turn == 2), answer
    ops = await make_account(pool, config, "admin")
    _, listed = await _admin(client, ops, "GET", HANDOFFS + "?status=waiting")
    [handoff] = [h for h in listed["handoffs"] if h["conversation_id"] == conv]
    assert handoff["reason"] == "failures" and handoff["user_id"] is None


async def test_websocket_refuses_a_bad_start(client: Any) -> None:
    ws = await client.ws_connect("/ws/chat")
    await ws.send_json({"type": "auth", "access_token": "not-a-token"})
    error = json.loads((await ws.receive(timeout=10)).data)
    assert error["type"] == "error"
    closing = await ws.receive(timeout=10)
    assert ws.close_code == 4401 or closing.data == 4401
    ws = await client.ws_connect("/ws/chat")
    await ws.send_json({"type": "auth"})
    await _receive(ws, "ready")
    await ws.send_json({"type": "message", "text": ""})
    error = await _receive(ws, "error")
    assert error["code"] == "validation_failed"
    await ws.close()
    await asyncio.sleep(0)


async def test_chat_is_rate_limited(
    aiohttp_client: Any, config: Any, engine: Engine, redis: Any
) -> None:
    assistant = AssistantConfig(rate_ip=Rate.parse("2/min"))
    app = create_app(dataclasses.replace(config, assistant=assistant), engine=engine.client)
    limited = await aiohttp_client(app)
    statuses = [(await _post(limited, None, {"text": "how do holds work"}))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    found = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    await redis.delete(*found)
