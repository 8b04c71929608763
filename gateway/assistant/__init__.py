"""The booking assistant (to be written): ``ENDPOINTS`` joins the gateway's endpoint table,
``assistant_ctx`` sets it up per application, ``chat_socket`` serves ``/ws/chat``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.endpoint import Endpoint

ENDPOINTS: tuple[Endpoint, ...] = ()


async def assistant_ctx(app: web.Application) -> AsyncIterator[None]:
    yield


async def chat_socket(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()


__all__ = ["ENDPOINTS", "assistant_ctx", "chat_socket"]
