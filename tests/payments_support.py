"""Payments in tests: localstripe on loopback, and a TCP proxy in front of it whose faults a
test switches at will (refuse connections; pass requests on but lose the answers)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

from payments.localstripe import LocalStripe, start_localstripe


@contextlib.asynccontextmanager
async def running_localstripe() -> AsyncIterator[LocalStripe]:
    stripe = await start_localstripe()
    try:
        await stripe.wait_ready()
        yield stripe
    finally:
        stripe.stop()


class FaultProxy:
    """127.0.0.1:<free port> → ``target``. ``mode``: "pass"; "refuse" (new connections are
    closed at once); "blackhole_responses" (requests reach the target, answers never come back:
    the provider acts, the caller sees a failure)."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        assert parts.hostname in ("127.0.0.1", "localhost"), "loopback only"
        self._target = (parts.hostname, parts.port or 80)
        self.mode = "pass"
        self.connections = 0  # connections that reached the target
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self.mode == "refuse":
                return
            up_reader, up_writer = await asyncio.open_connection(*self._target)
            self.connections += 1
            try:
                await asyncio.gather(
                    self._pipe(reader, up_writer, lambda: self.mode == "refuse"),
                    self._pipe(up_reader, writer, lambda: self.mode != "pass"),
                )
            finally:
                up_writer.close()
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a test proxy that is stopped just ends its connections
        finally:
            writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: Callable[[], bool]
    ) -> None:
        """Copy until the end, or until ``cut()`` says the fault is on (checked on every chunk,
        so kept-alive connections suffer it too): then the connection ends."""
        while data := await reader.read(65536):
            if cut():
                writer.close()
                return
            writer.write(data)
            await writer.drain()
