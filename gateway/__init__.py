"""The aiohttp gateway: HTTP API and websocket seat maps, auth, rate limits, idempotency and the
waiting room. Stateless; imports ``actors``, ``serve``, ``payments`` and ``storage`` through
their public names. Nothing imports the gateway but the composition root (``seatserver``)."""

from gateway.app import create_app
from gateway.config import GatewayConfig

__all__ = ["GatewayConfig", "create_app"]
