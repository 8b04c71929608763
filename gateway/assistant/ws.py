"""The chat websocket, ``GET /ws/chat``.

The client sends ``{"type": "auth", "access_token": "…"}`` first (``{"type": "auth"}`` to stay
a visitor; with ``"conversation_id"`` to go on with that conversation), later perhaps
``{"type": "resume", "conversation_id": "…"}``, and ``{"type": "message", "text": "…"}`` as
often as it likes. The server answers ``{"type": "ready", "conversation_id", "escalated",
"messages"}`` after auth (the conversation asked for with its messages, or a new one when it
expired or is someone else's) and after a resume, ``{"type": "reply", "text", "cards", "source",
"escalated"}`` per message, ``{"type": "agent", "text"}`` whenever a person answers (through
Redis pub/sub), and ``{"type": "error", "code", "message"}`` for a refused message (the socket
stays open). A bad first message closes with 4400, a bad token with 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from gateway import keys
from gateway.assistant import handoff
from gateway.assistant.views import pay_chat_limit
from gateway.errors import ApiError, BadRequest, ResourceNotFound, ValidationFailed, describe
from gateway.fanout import CLOSE_GRACE_S, MAX_FRAME
from gateway.logsafe import stack, why

log = logging.getLogger(__name__)
AUTH_TIMEOUT_S = 10.0
CLOSE_BAD = 4400
CLOSE_UNAUTHORIZED = 4401
MAX_TEXT = 2000


async def _send(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    if not ws.closed:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(json.dumps(message, default=str))


async def _error(ws: web.WebSocketResponse, exc: BaseException) -> int:
    status, body, _ = describe(exc)
    error = body["error"]
    await _send(ws, {"type": "error", "code": error["code"], "message": error["message"]})
    return status


async def _read(ws: web.WebSocketResponse, timeout: float | None = None) -> dict[str, Any] | None:
    """The next JSON object the client sent; None when the socket closed."""
    message = await ws.receive(timeout=timeout)
    if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        return None
    if message.type != WSMsgType.TEXT:
        raise BadRequest("send JSON text messages")
    try:
        data = json.loads(message.data)
    except ValueError:
        raise BadRequest("send JSON text messages") from None
    if not isinstance(data, dict):
        raise BadRequest("a message is a JSON object with a type")
    return data


async def _authenticate(request: web.Request, ws: web.WebSocketResponse) -> tuple[Any, str | None]:
    """The principal (None: a visitor) and the conversation the client wants to go on with."""
    try:
        first = await _read(ws, AUTH_TIMEOUT_S)
    except TimeoutError:
        raise BadRequest('send {"type": "auth", "access_token": ...} first') from None
    if first is None or first.get("type") != "auth":
        raise BadRequest('send {"type": "auth", "access_token": ...} first')
    wanted = _conversation_id(first.get("conversation_id"), optional=True)
    token = first.get("access_token")
    if token is None:
        return None, wanted
    if not isinstance(token, str):
        raise BadRequest("access_token must be a string")
    return request.app[keys.AUTH].verify(token), wanted


def _conversation_id(value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not 3 <= len(value) <= 80:
        raise ValidationFailed("conversation_id must be a conversation's id")
    return value


class _Session:
    """One socket's conversation and its subscription to a person's answers."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, principal: Any) -> None:
        self.request, self.ws, self.principal = request, ws, principal
        self.app = request.app
        self.engine = self.app[keys.ASSISTANT]
        self.conversation_id: str | None = None
        self.pubsub: Any = None
        self.listener: asyncio.Task[None] | None = None

    async def use(self, conversation_id: str | None) -> None:
        conv = await self.engine.open(conversation_id, self.principal)
        if conversation_id is not None and conv.user_id is not None:
            await self.engine.conversations.save(conv)  # a visitor who logged in adopts it
        await self._listen(conv.id)
        self.conversation_id = conv.id
        messages = [m for m in conv.messages if m.get("role") in ("user", "assistant", "agent")]
        await _send(
            self.ws,
            {
                "type": "ready",
                "conversation_id": conv.id,
                "escalated": conv.escalated,
                "messages": messages,
            },
        )

    async def _listen(self, conversation_id: str) -> None:
        await self.stop()
        prefix = self.app[keys.CONFIG].redis_prefix
        self.pubsub = self.app[keys.REDIS].pubsub(ignore_subscribe_messages=True)
        await self.pubsub.subscribe(handoff.channel(prefix, conversation_id))
        self.listener = asyncio.create_task(self._forward(self.pubsub), name="chat-agent")

    async def _forward(self, pubsub: Any) -> None:
        while not self.ws.closed:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            data = message.get("data")
            try:
                await _send(self.ws, json.loads(data))
            except (TypeError, ValueError):
                log.warning("chat: a malformed agent message on the channel")

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.listener
            self.listener = None
        if self.pubsub is not None:
            with contextlib.suppress(Exception):
                await self.pubsub.aclose()
            self.pubsub = None

    async def message(self, data: dict[str, Any]) -> None:
        text = data.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT or "\x00" in text:
            raise ValidationFailed(f"text must be 1 to {MAX_TEXT} characters")
        user_id = None if self.principal is None else self.principal.user_id
        await pay_chat_limit(self.app, self.request, user_id)
        conv, reply = await self.engine.turn(
            self.conversation_id, text, self.principal, self.request
        )
        if conv.id != self.conversation_id:
            await self._listen(conv.id)
            self.conversation_id = conv.id
        await _send(self.ws, {"type": "reply", **reply.public()})


async def chat_socket(request: web.Request) -> web.WebSocketResponse:
    """One chat: see the module docstring for the messages."""
    config = request.app[keys.CONFIG]
    ws = web.WebSocketResponse(
        heartbeat=config.ws_heartbeat_s, max_msg_size=MAX_FRAME, timeout=CLOSE_GRACE_S
    )
    await ws.prepare(request)
    sockets = request.app[keys.SOCKETS]
    sockets.add(ws)
    session: _Session | None = None
    try:
        try:
            principal, wanted = await _authenticate(request, ws)
        except Exception as exc:
            status = await _error(ws, exc)
            await ws.close(code=CLOSE_UNAUTHORIZED if status == 401 else CLOSE_BAD)
            if status >= 500:
                raise
            return ws
        session = _Session(request, ws, principal)
        try:
            await session.use(wanted)
        except ResourceNotFound:  # expired, or not theirs: a new conversation
            await session.use(None)
        await _serve(session)
    finally:
        sockets.discard(ws)
        if session is not None:
            await session.stop()
    return ws


async def _serve(session: _Session) -> None:
    ws = session.ws
    while not ws.closed:
        try:
            data = await _read(ws)
            if data is None:
                return
            kind = data.get("type")
            if kind == "message":
                await session.message(data)
            elif kind == "resume":
                await session.use(_conversation_id(data.get("conversation_id")))
            else:
                raise BadRequest('send {"type": "message", "text": ...}')
        except ApiError as exc:
            await _error(ws, exc)
        except Exception as exc:
            if await _error(ws, exc) >= 500:
                log.error("chat: a message failed: %s\n%s", why(exc), stack(exc))


__all__ = ["chat_socket"]
