"""The Claude path through the real ``anthropic`` SDK, against a loopback Messages API that
replays recorded tool-use turns (``tests/anthropic_replay.py``, ``tests/data/claude/``) and
checks what the SDK sent: the model, the tools offered, the tool results.

Search → hold → checkout only after the customer's yes; a checkout before the yes refused; a
taken seat recovered with the best available; someone else's booking answered as not found;
the larger model when the small one asks; token use recorded; the API down → the local
assistant answers the turn.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import actors
from gateway import keys
from gateway.app import create_app
from gateway.assistant import AssistantConfig
from storage import assistant as chat_store
from tests.anthropic_replay import ReplayServer, load
from tests.gateway_support import Account, make_account, new_key
from tests.integration.shows import Engine, make_show
from tests.integration.test_payments import payments_config
from tests.payments_support import running_localstripe

Start = Callable[..., Any]


@pytest.fixture(scope="module")
async def localstripe() -> AsyncIterator[Any]:
    async with running_localstripe() as stripe:
        yield stripe


@pytest.fixture
async def chat(
    aiohttp_client: Any, config: Any, engine: Engine, localstripe: Any, redis: Any
) -> AsyncIterator[Start]:
    """``await chat(recording, values) -> (client, server)``: a gateway whose Claude is the
    replay server playing ``recording``."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(recording: str, **values: Any) -> tuple[Any, ReplayServer]:
            server = await stack.enter_async_context(ReplayServer.start(load(recording), values))
            assistant = AssistantConfig(
                anthropic_api_key="test-key", anthropic_base_url=server.url, timeout_s=10.0
            )
            payments = payments_config(
                stripe_api_base=localstripe.url, stripe_js_base=localstripe.url
            )
            app_config = dataclasses.replace(config, assistant=assistant, payments=payments)
            client = await aiohttp_client(create_app(app_config, engine=engine.client))
            return client, server

        yield start
    found = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    if found:
        await redis.delete(*found)


async def _say(
    client: Any, who: Account | None, text: str, conversation: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if conversation is not None:
        body["conversation_id"] = conversation
    headers = {**new_key(), **(who.headers if who else {})}
    resp = await client.post("/api/v1/chat/messages", json=body, headers=headers)
    answer = await resp.json()
    assert resp.status == 200, answer
    return answer  # type: ignore[no-any-return]


async def _holds_of(engine: Engine, show: int, user: int) -> list[actors.Hold]:
    snapshot = await engine.client.snapshot(show)
    return [h for h in snapshot.holds if h.user_id == str(user)]


async def _payments(pool: Any, user: int) -> list[Any]:
    async with pool.acquire() as conn:
        return list(await conn.fetch("SELECT * FROM payments WHERE user_id = $1", user))


async def test_search_hold_then_checkout_after_yes(
    chat: Start, pool: Any, engine: Engine, config: Any
) -> None:
    show = await make_show(pool)
    client, server = await chat("book_flow", title="The Test", show_id=show)
    alice = await make_account(pool, config)
    first = await _say(client, alice, "Two seats for The Test tonight")
    conv = first["conversation_id"]
    assert first["reply"]["source"] == "claude", first
    assert "Shall I start checkout" in first["reply"]["text"]
    [hold] = await _holds_of(engine, show, alice.user_id)
    assert len(hold.seats) == 2
    card = next(c for c in first["reply"]["cards"] if c["type"] == "hold")
    assert card["hold_id"] == hold.hold_id and card["total_cents"] == 2400
    assert await _payments(pool, alice.user_id) == []  # nothing before the yes

    second = await _say(client, alice, "yes please", conv)
    assert server.problems == [] and server.done
    [payment] = await _payments(pool, alice.user_id)
    assert str(payment["hold_id"]) == hold.hold_id and payment["amount_cents"] == 2400
    checkout = next(c for c in second["reply"]["cards"] if c["type"] == "checkout")
    assert checkout == {
        "type": "checkout",
        "show_id": show,
        "hold_id": hold.hold_id,
        "payment_id": str(payment["payment_id"]),
    }
    async with pool.acquire() as conn:  # 5 calls of 100 in / 20 out, on the small model
        usage = await chat_store.usage_of(conn, conv)
    assert usage == {"claude-haiku-4-5": {"input": 500, "output": 100, "calls": 5}}
    saved = await client.app[keys.ASSISTANT].conversations.load(conv)
    assert saved.usage == usage and saved.pending is None


async def test_checkout_before_the_yes_is_refused(
    chat: Start, pool: Any, engine: Engine, config: Any
) -> None:
    show = await make_show(pool)
    client, server = await chat("no_confirmation", show_id=show)
    alice = await make_account(pool, config)
    answer = await _say(client, alice, "hold two seats and book them")
    assert server.problems == [] and server.done
    assert "Do you confirm?" in answer["reply"]["text"]
    assert not any(c["type"] == "checkout" for c in answer["reply"]["cards"])
    assert await _payments(pool, alice.user_id) == []
    [hold] = await _holds_of(engine, show, alice.user_id)  # held, waiting for the yes
    saved = await client.app[keys.ASSISTANT].conversations.load(answer["conversation_id"])
    assert saved.pending["hold_id"] == hold.hold_id and saved.pending["confirmed"] is False


async def test_taken_seats_recovered_with_best_available(
    chat: Start, pool: Any, engine: Engine, config: Any
) -> None:
    show = await make_show(pool)
    client, server = await chat("tool_error", show_id=show)
    alice, bob = await make_account(pool, config), await make_account(pool, config)
    await engine.client.execute(
        show, actors.HoldSeats(str(uuid.uuid4()), str(bob.user_id), ("C5",))
    )
    answer = await _say(client, alice, "seats C5 and C6 please")
    assert server.problems == [] and server.done
    [hold] = await _holds_of(engine, show, alice.user_id)
    assert len(hold.seats) == 2 and "C5" not in hold.seats
    assert "instead" in answer["reply"]["text"]


async def test_someone_elses_booking_is_not_found(
    chat: Start, pool: Any, engine: Engine, config: Any
) -> None:
    show = await make_show(pool)
    alice, bob = await make_account(pool, config), await make_account(pool, config)
    hold_id, booking_id = str(uuid.uuid4()), str(uuid.uuid4())
    await engine.client.execute(show, actors.HoldSeats(hold_id, str(bob.user_id), ("D1",)))
    await engine.client.execute(show, actors.Confirm(hold_id, str(bob.user_id), booking_id))
    client, server = await chat("other_booking", booking_id=booking_id)
    answer = await _say(client, alice, f"cancel booking {booking_id}")
    assert server.problems == [] and server.done
    assert "can't find" in answer["reply"]["text"]
    async with pool.acquire() as conn:
        status = await conn.fetchval(
            "SELECT status FROM bookings WHERE booking_id = $1", uuid.UUID(booking_id)
        )
    assert status == "confirmed"


async def test_larger_model_when_the_small_one_asks(chat: Start, pool: Any, config: Any) -> None:
    client, server = await chat("larger_model")
    answer = await _say(client, None, "compare the 7pm shows across your theaters")
    assert server.problems == [] and server.done
    assert [r["model"] for r in server.requests] == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    assert answer["reply"]["text"] == "Here is how they compare."
    async with pool.acquire() as conn:
        usage = await chat_store.usage_of(conn, answer["conversation_id"])
    assert set(usage) == {"claude-haiku-4-5", "claude-sonnet-4-5"}


async def test_api_down_the_local_assistant_answers(chat: Start, pool: Any) -> None:
    client, server = await chat("larger_model")
    server.mode = "down"
    answer = await _say(client, None, "action movies tonight")
    assert answer["reply"]["source"] == "local", answer
    tried = len(server.requests)
    assert tried >= 1
    again = await _say(client, None, "comedies tomorrow", answer["conversation_id"])
    assert again["reply"]["source"] == "local"
    assert len(server.requests) == tried  # Claude rests a while after a failure
