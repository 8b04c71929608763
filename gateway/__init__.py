"""The aiohttp gateway: HTTP API and websocket seat maps, auth, rate limits, idempotency and the
waiting room. Stateless; imports ``actors``, ``serve``, ``payments`` and ``storage`` through
their public names. Nothing imports the gateway."""

__all__: list[str] = []
