"""The aiohttp gateway: HTTP API and websocket seat maps, auth, rate limits, idempotency and the
waiting room. Stateless; imports ``actors``, ``serve``, ``payments`` and ``storage`` through
their public names. Nothing imports the gateway but the composition root (``seatserver``)."""

from __future__ import annotations

from typing import Any

__all__ = ["GatewayConfig", "create_app"]


def __getattr__(name: str) -> Any:
    """``create_app`` and ``GatewayConfig`` load on first use, so that a leaf module of the
    gateway (``gateway.rates``, which the settings use) does not start the whole of it (and
    Ray) first."""
    if name == "create_app":
        from gateway.app import create_app

        return create_app
    if name == "GatewayConfig":
        from gateway.config import GatewayConfig

        return GatewayConfig
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
