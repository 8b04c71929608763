"""The mail worker: claims due outbox rows, renders and sends each, and records the outcome.

A row is marked sent right after the SMTP server accepted it; a transient failure is retried
with exponential backoff and jitter, a permanent one (or the last attempt) gives the message up
with its error recorded. Any other error of one row (a payload it cannot render, say) is retried
like a transient one, so it neither stops the rows after it nor is retried forever.

Rows are leased while being sent, so several workers (or a restarted one) never send the same
row at once: the lease is renewed, fenced by the row's attempt count, right before each send,
and each send must finish within half a lease. A worker that dies between the server's
acceptance and the mark leaves the row to come due after its lease; the copy sent again carries
the same Message-ID, so receivers can drop it.
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
    """Sends the outbox's mail; ``run`` loops, ``run_once`` is one pass (for tests).

    >>> worker = OutboxWorker(pool, SmtpConfig(host="smtp.example.com"), batch=20)
    """

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
        if smtp.timeout_s >= lease_s:
            raise ValueError("lease_s must exceed the SMTP timeout: a send ends within its lease")
        self._pool = pool
        self._smtp = smtp
        self._batch = batch
        self._lease_s = lease_s
        self._max_attempts = max_attempts
        self._base = backoff_base_s
        self._cap = backoff_cap_s

    def backoff(self, attempt: int) -> float:
        """Seconds before the next try after ``attempt`` failed: doubling, capped, jittered."""
        delay = min(self._cap, self._base * 2.0 ** min(attempt - 1, 40))
        return delay * random.uniform(0.5, 1.0)

    async def run_once(self) -> dict[str, int]:
        """One pass: claim up to ``batch`` due rows and deliver each; returns how many were
        sent, put off for a retry, given up, or skipped (claimed by another worker since)."""
        counts = {"sent": 0, "retry": 0, "given_up": 0, "skipped": 0}
        async with self._pool.acquire() as conn:
            rows = await outbox.claim(conn, limit=self._batch, lease_s=self._lease_s)
        for row in rows:
            counts[await self._deliver(row)] += 1
        return counts

    async def _deliver(self, row: outbox.OutboxRow) -> str:
        try:
            async with self._pool.acquire() as conn:
                if not await outbox.renew(conn, row, lease_s=self._lease_s):
                    return "skipped"
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
            try:
                async with asyncio.timeout(self._lease_s / 2):
                    await send(self._smtp, message)
            except TimeoutError as exc:
                raise TransientSmtpError("the send outlasted half its lease") from exc
        except (PermanentSmtpError, UnknownTopic) as exc:
            return await self._failed(row, f"{type(exc).__name__}: {exc}", give_up=True)
        except Exception as exc:  # transient, or a fault of this row only: retried, bounded
            if not isinstance(exc, TransientSmtpError):
                log.exception("mail %s attempt %d raised", row.dedup_key, row.attempts)
            last = row.attempts >= self._max_attempts
            return await self._failed(row, f"{type(exc).__name__}: {exc}", give_up=last)
        await self._mark_sent(row)
        return "sent"

    async def _mark_sent(self, row: outbox.OutboxRow) -> None:
        """Record the acceptance, trying a fresh connection if the first one was lost: until it
        is recorded, the row would come due again after its lease and be sent a second time."""
        for pause in (0.1, 0.5, None):
            try:
                async with self._pool.acquire() as conn:
                    await outbox.mark_sent(conn, row.id)
                return
            except Exception:
                if pause is None:
                    raise
                log.warning("mail %s sent but not yet marked; trying again", row.dedup_key)
                await asyncio.sleep(pause)

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
        """Send until ``stop``; a failing pass (the database gone, say) is logged and retried,
        waiting longer after each failure in a row (up to 30 s).

        >>> stop = asyncio.Event()
        >>> task = asyncio.create_task(OutboxWorker(pool, smtp).run(stop))
        >>> stop.set(); await task
        """
        failures = 0
        while not stop.is_set():
            busy = False
            try:
                counts = await self.run_once()
                busy = sum(counts.values()) >= self._batch
                failures = 0
            except Exception:
                failures += 1
                log.exception("mail pass failed (%d in a row)", failures)
            if not busy:
                wait = poll_s if not failures else min(poll_s * 2 ** min(failures, 6), 30.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(wait, poll_s))
