"""The mail worker: claims due outbox rows, renders and sends each, and records the outcome.

A row is marked sent right after the SMTP server accepted it; a transient failure is retried
with exponential backoff and jitter, a permanent one (or the last attempt) gives the message up
with its error recorded. Rows are leased while being sent, so several workers (or a restarted
one) never send the same row at once; a worker that dies between the server's acceptance and the
mark leaves the row to come due after its lease, and the copy sent again carries the same
Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from typing import Any

from notifications import outbox
from notifications.render import UnknownTopic, compose
from notifications.smtp import PermanentSmtpError, SmtpConfig, TransientSmtpError, send

log = logging.getLogger(__name__)


class OutboxWorker:
    def __init__(
        self,
        pool: Any,
        smtp: SmtpConfig,
        *,
        batch: int = 20,
        lease_s: float = 60.0,
        max_attempts: int = 8,
        backoff_base_s: float = 5.0,
        backoff_cap_s: float = 3600.0,
    ) -> None:
        self._pool = pool
        self._smtp = smtp
        self._batch = batch
        self._lease_s = lease_s
        self._max_attempts = max_attempts
        self._base = backoff_base_s
        self._cap = backoff_cap_s

    def backoff(self, attempt: int) -> float:
        """Seconds before the next try after ``attempt`` failed: doubling, capped, jittered."""
        delay = min(self._cap, self._base * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)

    async def run_once(self) -> dict[str, int]:
        counts = {"sent": 0, "retry": 0, "given_up": 0}
        async with self._pool.acquire() as conn:
            rows = await outbox.claim(conn, limit=self._batch, lease_s=self._lease_s)
        for row in rows:
            counts[await self._deliver(row)] += 1
        return counts

    async def _deliver(self, row: outbox.OutboxRow) -> str:
        try:
            async with self._pool.acquire() as conn:
                context = await outbox.context_for(conn, row)
            if context is None:
                raise PermanentSmtpError("the recipient or the show is gone")
            message = compose(
                row.topic,
                row.payload,
                context,
                dedup_key=row.dedup_key,
                mail_from=self._smtp.mail_from,
            )
            await send(self._smtp, message)
        except (PermanentSmtpError, UnknownTopic) as exc:
            return await self._failed(row, f"{type(exc).__name__}: {exc}", give_up=True)
        except TransientSmtpError as exc:
            last = row.attempts >= self._max_attempts
            return await self._failed(row, f"TransientSmtpError: {exc}", give_up=last)
        async with self._pool.acquire() as conn:
            await outbox.mark_sent(conn, row.id)
        return "sent"

    async def _failed(self, row: outbox.OutboxRow, error: str, *, give_up: bool) -> str:
        retry_at = None
        if not give_up:
            delay = self.backoff(row.attempts)
            retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        async with self._pool.acquire() as conn:
            await outbox.mark_failed(conn, row.id, error, retry_at)
        if give_up:
            log.error("mail %s given up after %d attempts: %s", row.dedup_key, row.attempts, error)
            return "given_up"
        log.warning("mail %s attempt %d failed: %s", row.dedup_key, row.attempts, error)
        return "retry"

    async def run(self, stop: asyncio.Event, *, poll_s: float = 1.0) -> None:
        """Send until ``stop``; a failing pass (the database gone, say) is logged and retried."""
        while not stop.is_set():
            busy = False
            try:
                counts = await self.run_once()
                busy = sum(counts.values()) >= self._batch
            except Exception:
                log.exception("mail pass failed")
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_s)
