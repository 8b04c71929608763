"""Seat-map watchers: each follows a show's seat map on the websocket as the web page does
(``gateway/static/app.js``): a snapshot, then deltas in version order, a resync on a gap (over
HTTP when it goes unanswered), reconnecting with a backoff; after ``finish`` it catches up with
the show's current version and is recorded as a ``model.Watcher``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from loadtest.faults import model
from loadtest.faults.clients.calls import Client, Run, parse

WS_CLOSE_S = 2.0


class Watcher(Client):
    """A show's seat map kept from the websocket's snapshot and deltas, as the web page keeps
    it; after ``finish``, caught up with the show's current version, then recorded."""

    def __init__(self, run: Run, name: str, index: int, show_id: int) -> None:
        super().__init__(run, name, index, None)
        self.show_id = show_id
        self.version = -1
        self.seats: dict[str, str] = {}
        self.connects = self.gaps = self.messages = 0
        self.awaiting = True  # no snapshot on this connection yet, or a resync asked for one
        self.resync_at: float | None = None
        self.heard_at = time.monotonic()
        self.refused = self.caught_up = False
        self.finish_by: float | None = None
        self.checked_at = 0.0

    def over(self) -> bool:
        """Refused for good, caught up, or out of time to catch up (``finish`` seen)."""
        now = time.monotonic()
        if self.finish_by is None and self.run.finish.is_set():
            self.finish_by = now + self.t.catch_up_s
        past = self.finish_by is not None and now > self.finish_by
        return self.refused or self.caught_up or past

    async def live(self) -> None:
        url = self.run.plan.url.rstrip("/") + f"/ws/shows/{self.show_id}"
        failures = 0
        while not self.over():
            try:
                async with asyncio.timeout(self.t.ws_open_s):
                    ws = await self.run.session.ws_connect(
                        url, timeout=aiohttp.ClientWSTimeout(ws_close=WS_CLOSE_S)
                    )
            except (aiohttp.ClientError, OSError, TimeoutError):
                ws = None
            if ws is not None:
                self.connects += 1
                try:
                    failures = 0 if await self.follow(ws) else failures
                finally:
                    await ws.close()
                self.refused = ws.close_code == 1008 or 4400 <= (ws.close_code or 0) < 4500
            if not self.over():
                await asyncio.sleep(self.backoff(failures))
                failures += 1
        self.record()

    def backoff(self, failures: int) -> float:
        first, longest = self.t.ws_backoff_s
        return min(longest, first * 2.0**failures) * self.rng.uniform(0.6, 1.0)

    async def follow(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Read one connection until it closes or the watcher is done; True once it gave a
        snapshot."""
        self.awaiting, self.resync_at, self.heard_at = True, None, time.monotonic()
        had_snapshot = False
        reader = asyncio.create_task(self.read(ws))
        try:
            while not reader.done():
                await asyncio.wait({reader}, timeout=0.2)
                had_snapshot = had_snapshot or not self.awaiting
                await self.tend(ws)
                if self.over() or time.monotonic() - self.heard_at > self.t.ws_silence_s:
                    break
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        return had_snapshot

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            self.messages += 1
            self.heard_at = time.monotonic()
            body = parse(msg.data.encode())
            if isinstance(body, dict):
                await self.on_message(ws, body)

    async def on_message(self, ws: aiohttp.ClientWebSocketResponse, msg: dict[str, Any]) -> None:
        kind, version = msg.get("type"), _version(msg)
        if kind == "snapshot":
            self.install(msg)
        elif kind == "resync":
            self.awaiting = True  # a snapshot follows
        elif self.awaiting or kind not in ("delta", "heartbeat"):
            return  # before the next snapshot nothing else counts
        elif kind == "delta" and version == self.version + 1:
            self.version = version
            changes = msg.get("changes") or ()
            self.seats.update({str(seat): str(state) for seat, state in changes})
        elif version > self.version + (1 if kind == "delta" else 0):
            await self.resync(ws)  # a version skipped, or a heartbeat ahead of this map

    def install(self, seatmap: dict[str, Any]) -> None:
        seats = seatmap.get("seats")
        if _version(seatmap) < 0 or not isinstance(seats, dict):
            return  # not a seat map: still waiting for one
        self.version = _version(seatmap)
        self.seats = {str(k): str(v) for k, v in seats.items()}
        self.awaiting, self.resync_at = False, None

    async def resync(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """A gap in versions: ask for a fresh snapshot, as the page does."""
        self.gaps += 1
        self.awaiting, self.resync_at = True, time.monotonic()
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            await ws.send_json({"type": "resync"})

    async def tend(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """The page's fallback (a resync unanswered: the map over HTTP), and after ``finish``
        the check that this map reached the show's current version."""
        now = time.monotonic()
        if self.resync_at is not None and now - self.resync_at > self.t.resync_fallback_s:
            self.resync_at = now
            seatmap = await self.fetch()
            if seatmap is not None and self.awaiting:
                self.install(seatmap)
        if not self.run.finish.is_set():
            return
        if now - self.checked_at >= self.t.catch_up_poll_s and not self.awaiting:
            self.checked_at = now
            seatmap = await self.fetch()
            current = None if seatmap is None else seatmap.get("version")
            self.caught_up = current == self.version and not self.awaiting

    async def fetch(self) -> dict[str, Any] | None:
        url = self.run.api(f"/shows/{self.show_id}/seatmap")
        answer = await self.send("seatmap", "GET", url, show_id=self.show_id)
        return answer.body if answer.done and isinstance(answer.body, dict) else None

    def record(self) -> None:
        if self.refused:
            self.run.history.notes.append(f"{self.name}: the gateway refused its websocket")
        self.run.history.watchers.append(
            model.Watcher(
                client=self.name,
                show_id=self.show_id,
                connects=self.connects,
                version=self.version,
                seats=dict(self.seats),
                gaps=self.gaps,
                messages=self.messages,
            )
        )


def _version(msg: Mapping[str, Any]) -> int:
    """A message's version, -1 when it has none."""
    value = msg.get("version")
    return value if isinstance(value, int) and not isinstance(value, bool) else -1
