"""The caller side of the show hosts: batching (DESIGN rule 8).

One Ray call in flight per host per caller process. Commands that arrive while a call is in
flight wait in the host's lane and all ride in the next call; each caller still gets its own
answer or its own error. Confirmations and cancellations come back ``Pending`` and are awaited
outside the lane, so a flush never holds up the holds queued behind it.

A host that fails (a crash, a lost node) is started again by Ray, on another node if need be;
meanwhile its calls fail with ``HostUnavailable``. The client then forgets where the shows of
the failed call live and asks the directory again on their next call. Reads (``snapshot``) and
directory look-ups change nothing and are tried again a few times; a command is not, since it
may have run: the caller asks again with the same idempotency key.

A command sent without a ``request_id`` gets the one of the request under way
(``actors.logs.REQUEST_ID``), so the host's records about it name that request.

    client = ShowClient(find_directory("seatserver"))
    hold = await client.execute(show_id, HoldBest(hold_id, user_id, 2, "standard"))
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from ray.exceptions import RayActorError

from actors.commands import Command
from actors.errors import HostUnavailable, ShowMoved
from actors.events import Snapshot
from actors.logs import REQUEST_ID
from actors.wire import Done, Failed, Pending, pack_request, unpack_reply

log = logging.getLogger(__name__)
T = TypeVar("T")

MOVED_RETRIES = 50
MOVED_BACKOFF_S = 0.02
READ_TRIES = 3  # tries of a read or a directory look-up whose actor failed
READ_BACKOFF_S = 0.1  # wait before the second try, twice that before the third


async def _tried(ask: Callable[[], Awaitable[T]], on_failure: Callable[[], None]) -> T:
    """``await ask()``; while its actor fails, ``on_failure()`` and ask again, ``READ_TRIES``
    times in all (for what changes nothing: reads, look-ups)."""
    for attempt in range(1, READ_TRIES):
        try:
            return await ask()
        except RayActorError:
            on_failure()
            await asyncio.sleep(READ_BACKOFF_S * attempt)
    return await ask()


@dataclass
class _Lane:
    host: Any
    queue: list[tuple[int, Command, asyncio.Future[Any]]] = field(default_factory=list)
    busy: bool = False
    calls: int = 0
    sent_at: float = 0.0  # perf_counter() as the last call left


class ShowClient:
    # Told, in the caller's task once its answer came, the ``perf_counter()`` at which the call
    # that carried its command left the lane (``gateway.phases`` times the wait in the lane
    # apart from the call); not told when the lane has sent another call since (a Pending).
    on_sent: ClassVar[Callable[[float], None] | None] = None

    def __init__(self, directory: Any) -> None:
        self._directory = directory
        self._hosts: dict[int, Any] = {}
        self._lanes: dict[Any, _Lane] = {}
        self._show_lanes: dict[int, _Lane] = {}  # a shortcut: hashing a Ray handle is slow

    async def execute(self, show_id: int, command: Command) -> Any:
        """Run one command on the show's actor; returns its result or raises its error."""
        if command.request_id is None and (request_id := REQUEST_ID.get()) is not None:
            command = dataclasses.replace(command, request_id=request_id)
        for attempt in range(MOVED_RETRIES):
            try:
                return await self._execute_once(show_id, command)
            except ShowMoved:
                self._forget(show_id)
                await asyncio.sleep(MOVED_BACKOFF_S * min(attempt + 1, 5))
        raise HostUnavailable(f"show {show_id} kept moving", {"show_id": show_id})

    async def snapshot(self, show_id: int) -> Snapshot:
        """The show's seat map now; asked again (up to ``READ_TRIES``) if its host failed."""

        async def ask() -> Snapshot:
            host = await self._host(show_id)
            snapshot: Snapshot = await host.snapshot.remote(show_id, REQUEST_ID.get())
            return snapshot

        try:
            return await _tried(ask, lambda: self._forget(show_id))
        except RayActorError as exc:
            raise HostUnavailable(str(exc), {"show_id": show_id}) from exc

    async def _execute_once(self, show_id: int, command: Command) -> Any:
        lane = self._show_lanes.get(show_id) or await self._lane(show_id)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        lane.queue.append((show_id, command, future))
        ride = lane.calls + 1  # the queue is taken whole: this command goes in the next call
        if not lane.busy:
            lane.busy = True
            loop.create_task(self._drain(lane))
        try:
            return await future
        finally:
            # sent_at is our call's while no later call has left (callers wake before that).
            if (told := ShowClient.on_sent) is not None and lane.calls == ride:
                told(lane.sent_at)

    async def _lane(self, show_id: int) -> _Lane:
        host = await self._host(show_id)
        lane = self._lanes.get(host)
        if lane is None:
            lane = self._lanes[host] = _Lane(host)
        self._show_lanes[show_id] = lane
        return lane

    async def _host(self, show_id: int) -> Any:
        host = self._hosts.get(show_id)
        if host is None:
            host = self._hosts[show_id] = await self._look_up(show_id)
        return host

    async def _look_up(self, show_id: int) -> Any:
        """The directory's answer; it may itself be starting again on another node."""
        try:
            return await _tried(lambda: self._directory.host_for.remote(show_id), lambda: None)
        except RayActorError as exc:
            raise HostUnavailable(
                f"the show directory failed: {exc}", {"show_id": show_id}
            ) from exc

    def _forget(self, show_id: int) -> None:
        """Ask the directory again on the show's next call."""
        self._hosts.pop(show_id, None)
        self._show_lanes.pop(show_id, None)

    async def _drain(self, lane: _Lane) -> None:
        try:
            while lane.queue:
                # Let the callers the last answers woke queue first: fewer, fuller calls.
                await asyncio.sleep(0)
                batch, lane.queue = lane.queue, []
                lane.calls += 1
                lane.sent_at = time.perf_counter()
                await self._send(lane.host, batch)
        finally:
            lane.busy = False

    async def _send(self, host: Any, batch: list[tuple[int, Command, asyncio.Future[Any]]]) -> None:
        try:
            packed = await host.call_packed.remote(
                [pack_request(sid, cmd) for sid, cmd, _ in batch]
            )
        except RayActorError as exc:
            error = HostUnavailable(f"the show host failed: {exc}", {})
            for sid, _, future in batch:
                self._forget(sid)
                if not future.done():
                    future.set_exception(error)
            return
        for (sid, _, future), answer in zip(batch, packed, strict=True):
            if future.done():
                continue
            reply = unpack_reply(answer)
            if isinstance(reply, Done):
                future.set_result(reply.value)
            elif isinstance(reply, Failed):
                future.set_exception(reply.error)
            else:
                asyncio.get_running_loop().create_task(self._settle(host, sid, reply, future))

    @staticmethod
    async def _settle(host: Any, show_id: int, reply: Pending, future: asyncio.Future[Any]) -> None:
        try:
            await host.wait_durable.remote(reply.ticket, show_id)
        except RayActorError as exc:
            future.set_exception(
                HostUnavailable(
                    "the show host failed before the booking was stored; ask again with the same "
                    f"idempotency key ({exc})",
                    {"show_id": show_id},
                )
            )
        except Exception as exc:  # ConfirmationPending and friends come back as themselves
            future.set_exception(exc)
        else:
            future.set_result(reply.value)

    @property
    def directory(self) -> Any:
        """The directory actor this client asks for hosts (the gateways' metrics poll it)."""
        return self._directory

    def stats(self) -> dict[str, int]:
        return {
            "lanes": len(self._lanes),
            "calls": sum(lane.calls for lane in self._lanes.values()),
        }
