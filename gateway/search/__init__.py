"""Natural-language search (to be written): ``ENDPOINTS`` joins the gateway's endpoint table,
``search_ctx`` sets up what the search needs per application."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.endpoint import Endpoint

ENDPOINTS: tuple[Endpoint, ...] = ()


async def search_ctx(app: web.Application) -> AsyncIterator[None]:
    yield


__all__ = ["ENDPOINTS", "search_ctx"]
