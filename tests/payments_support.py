"""Payments in tests: localstripe on loopback, and a TCP proxy in front of it whose faults a
test switches at will (refuse connections; pass requests on but lose the answers).

Usage::

    async with running_localstripe() as local, FaultProxy(local.url) as proxy:
        provider = StripeProvider("sk_test_x", "whsec_x", publishable_key="pk_test_x",
                                  api_base=proxy.url, timeout_s=2.0)
        proxy.mode = "refuse"  # the next call raises ProviderUnavailable
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web

from payments.localstripe import LocalStripe, register_webhook, start_localstripe

Mode = Literal["pass", "refuse", "blackhole_responses"]
MODES: tuple[Mode, ...] = ("pass", "refuse", "blackhole_responses")


@contextlib.asynccontextmanager
async def running_localstripe(state: Path | None = None) -> AsyncIterator[LocalStripe]:
    """localstripe in a child process on 127.0.0.1 (a free port), stopped afterwards."""
    stripe = await start_localstripe(state=state)
    try:
        await stripe.wait_ready()
        yield stripe
    finally:
        stripe.stop()


Delivery = tuple[bytes, str | None]  # a webhook's body and its Stripe-Signature header


@contextlib.asynccontextmanager
async def webhook_inbox(
    local: LocalStripe, secret: str, events: list[str] | None = None
) -> AsyncIterator[asyncio.Queue[Delivery]]:
    """A webhook receiver on 127.0.0.1 that localstripe posts to (under a name of its own:
    localstripe cannot forget a webhook), keeping each delivery verbatim."""
    received: asyncio.Queue[Delivery] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        await received.put((await request.read(), request.headers.get("Stripe-Signature")))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        name = f"test-{uuid.uuid4().hex[:8]}"
        await register_webhook(local.url, name, f"http://127.0.0.1:{port}/hook", secret, events)
        yield received
    finally:
        await runner.cleanup()


async def delivery_about(
    inbox: asyncio.Queue[Delivery], intent_ref: str, timeout_s: float = 15.0
) -> tuple[bytes, str]:
    """The next delivery about PaymentIntent ``intent_ref`` (others are skipped)."""

    async def wait() -> tuple[bytes, str]:
        while True:
            payload, signature = await inbox.get()
            if json.loads(payload)["data"]["object"].get("id") == intent_ref:
                assert signature is not None
                return payload, signature

    return await asyncio.wait_for(wait(), timeout_s)


class FaultProxy:
    """127.0.0.1:<free port> → ``target`` (a loopback URL). ``mode``, switchable at any time:

    - "pass": bytes go both ways;
    - "refuse": connections are reset as soon as they are accepted, and kept-alive ones at
      their next request;
    - "blackhole_responses": requests reach the target, its answers never come back: the
      connection is closed when the answer arrives (the provider acted, the caller sees a
      disconnect, or a timeout if its own timer is shorter).

    ``accepted`` counts the connections the proxy accepted (in any mode); ``connections`` the
    ones it opened to the target.
    """

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        assert parts.hostname in ("127.0.0.1", "localhost"), "loopback only"
        self._target = ("127.0.0.1", parts.port or 80)
        self.mode: Mode = "pass"
        self.accepted = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        try:
            if self.mode == "refuse":
                _reset(writer)
                return
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self._target), 5)
            self.connections += 1
            pipes = {
                asyncio.create_task(
                    self._pipe(reader, writer, up_writer, lambda: self.mode == "refuse")
                ),
                asyncio.create_task(
                    self._pipe(up_reader, writer, writer, lambda: self.mode != "pass")
                ),
            }
            try:  # when one side ends, so does the other
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
                up_writer.close()
        except (OSError, asyncio.CancelledError):  # TimeoutError and resets are OSErrors
            pass  # a test proxy that is stopped or faulted just ends its connections
        finally:
            writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        writer: asyncio.StreamWriter,
        cut: Callable[[], bool],
    ) -> None:
        """Copy until the end, or until ``cut()`` says the fault is on (checked on every chunk,
        so kept-alive connections suffer it too): then the client's connection ends."""
        while data := await reader.read(65536):
            if cut():
                client.close()
                return
            writer.write(data)
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dead server's host would answer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
