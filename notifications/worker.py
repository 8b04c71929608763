"""The notifications worker: writes reminders as they come due, fans each outbox event out into
deliveries (one per channel and device the customer wants), and sends each delivery through its
channel's notifier, recording the outcome. A delivery on a channel it has no notifier for
(Twilio or FCM unset) is recorded as skipped by the fan-out; the worker counts each
(``seatserver_notifications_skipped``) and warns once per channel.

A delivery is marked sent right after the provider accepted it; a transient failure is retried
with exponential backoff and jitter (never sooner than the provider's Retry-After), a permanent
one (or the last attempt) gives it up with its error recorded, and one no longer due (a reminder
of a cancelled booking) is dropped. Any other error of one delivery (an event it cannot render,
say) is retried like a transient one, so it neither stops the others nor is retried forever.

Deliveries are leased while being sent, so several workers (or a restarted one) never send the
same one at once: the lease is renewed, fenced by the attempt count, before the send, and each
send must finish within half a lease. The send is marked begun first: a worker that dies
between the provider's acceptance and the record leaves a delivery whose outcome is in doubt,
and the next attempt asks the provider (``Notifier.settle``) before sending anything: a text
Twilio lists is recorded, not sent again; a push FCM cannot vouch for is given up; an email is
sent again with the same Message-ID, which receivers drop. Errors are stored and logged without
personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Iterable
from typing import Any

import storage
from notifications import deliveries, outbox
from notifications.deliveries import Delivery, Obsolete, RecipientGone
from notifications.metrics import SKIPPED
from notifications.notifier import (
    DeviceGone,
    Notifier,
    OutcomeUnknown,
    PermanentError,
    TransientError,
    redact,
)
from notifications.render import UnknownTopic
from notifications.texts import message_for
from storage import notify as prefs

log = logging.getLogger(__name__)

COUNTS = ("fanned_out", "reminders", "sent", "retry", "given_up", "dropped", "skipped")


def _error(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


class OutboxWorker:
    """Sends the outbox's notifications; ``run`` loops, ``run_once`` is one pass (for tests).

    >>> worker = OutboxWorker(pool, [EmailNotifier(smtp), TwilioNotifier(twilio)], keyring=ring)
    """

    def __init__(
        self,
        pool: Any,
        notifiers: Iterable[Notifier],
        *,
        keyring: Any,
        batch: int = 20,
        lease_s: float = 60.0,
        max_attempts: int = 8,
        backoff_base_s: float = 5.0,
        backoff_cap_s: float = 3600.0,
        reminder_lead_s: float = 7200.0,
        reminder_every_s: float = 60.0,
    ) -> None:
        self._notifiers: dict[str, Notifier] = {n.channel: n for n in notifiers}
        for notifier in self._notifiers.values():
            timeout = getattr(getattr(notifier, "config", None), "timeout_s", 0.0)
            if timeout >= lease_s:
                raise ValueError(
                    f"lease_s must exceed the {notifier.channel} timeout: a send ends within "
                    "its lease"
                )
        self._pool = pool
        self._keyring = keyring
        self._batch = batch
        self._lease_s = lease_s
        self._max_attempts = max_attempts
        self._base = backoff_base_s
        self._cap = backoff_cap_s
        self._reminder_lead_s = reminder_lead_s
        self._reminder_every_s = reminder_every_s
        self._reminders_at = 0.0  # monotonic time of the next reminder scan
        self._warned: set[str] = set()  # channels skipped for want of a notifier, warned of

    @property
    def channels(self) -> list[str]:
        return sorted(self._notifiers)

    def backoff(self, attempt: int) -> float:
        """Seconds before the next try after ``attempt`` failed: doubling, capped, jittered."""
        delay = min(self._cap, self._base * 2.0 ** min(attempt - 1, 40))
        return delay * random.uniform(0.5, 1.0)

    async def run_once(self) -> dict[str, int]:
        """One pass: write the reminders due (once a ``reminder_every_s``), fan out up to
        ``batch`` events, claim up to ``batch`` due deliveries and send each; returns how many
        of each happened (``skipped``: claimed by another worker since)."""
        counts = dict.fromkeys(COUNTS, 0)
        async with self._pool.acquire() as conn:
            if time.monotonic() >= self._reminders_at:
                counts["reminders"] = await prefs.schedule_reminders(
                    conn, lead_s=self._reminder_lead_s
                )
                self._reminders_at = time.monotonic() + self._reminder_every_s
            fanned = await outbox.fan_out(conn, limit=self._batch, channels=self.channels)
            counts["fanned_out"] = fanned.events
            self._note_skipped(fanned.skipped)
            claimed = await deliveries.claim(
                conn, limit=self._batch, lease_s=self._lease_s, channels=self.channels
            )
        for delivery in claimed:
            counts[await self._deliver(delivery)] += 1
        return counts

    def _note_skipped(self, skipped: dict[str, int]) -> None:
        """Count the deliveries skipped for want of a notifier; warn once per channel."""
        for channel, count in sorted(skipped.items()):
            SKIPPED.labels(channel, outbox.UNCONFIGURED).inc(count)
            if channel not in self._warned:
                self._warned.add(channel)
                log.warning(
                    "%s is not configured: deliveries customers asked for on it are recorded "
                    "as skipped (%s), not sent",
                    channel,
                    outbox.UNCONFIGURED,
                )

    async def _deliver(self, d: Delivery) -> str:
        notifier = self._notifiers[d.channel]
        begun = False
        try:
            async with self._pool.acquire() as conn:
                if not await deliveries.renew(conn, d, lease_s=self._lease_s):
                    return "skipped"
                context, recipient = await deliveries.context_for(conn, d, self._keyring)
            mail_from = getattr(getattr(notifier, "config", None), "mail_from", "")
            message = message_for(
                d.channel,
                d.topic,
                d.payload,
                context,
                recipient,
                dedup_key=d.dedup_key,
                mail_from=mail_from,
            )
            if d.in_doubt_since is not None:
                try:
                    found = await notifier.settle(message, d.in_doubt_since)
                except OutcomeUnknown as exc:
                    return await self._failed(d, _error(exc), give_up=True)
                if found is not None:
                    log.info("%s: an earlier attempt had been accepted", d.label)
                    await self._mark_sent(d, found)
                    return "sent"
            async with self._pool.acquire() as conn:
                if not await deliveries.begin_send(conn, d, lease_s=self._lease_s):
                    return "skipped"
            begun = True
            try:
                async with asyncio.timeout(self._lease_s / 2):
                    provider_id = await notifier.send(message)
            except TimeoutError as exc:
                raise OutcomeUnknown("the send outlasted half its lease") from exc
        except Obsolete as exc:
            return await self._failed(d, f"Obsolete: {exc}", give_up=True, dropped=True)
        except DeviceGone as exc:
            async with self._pool.acquire() as conn:
                await prefs.forget_device(conn, d.device_id)
            return await self._failed(d, _error(exc), give_up=True)
        except (PermanentError, UnknownTopic, RecipientGone, storage.NotFound) as exc:
            return await self._failed(d, _error(exc), give_up=True)
        except Exception as exc:  # transient, or a fault of this delivery only: retried, bounded
            if not isinstance(exc, TransientError):
                log.warning("%s attempt %d raised %s", d.label, d.attempts, _error(exc))
            doubt = isinstance(exc, OutcomeUnknown) or (d.in_doubt_since is not None and not begun)
            return await self._failed(
                d,
                _error(exc),
                give_up=d.attempts >= self._max_attempts,
                in_doubt=doubt,
                retry_after=getattr(exc, "retry_after", None),
            )
        await self._mark_sent(d, provider_id)
        return "sent"

    async def _mark_sent(self, d: Delivery, provider_id: str) -> None:
        """Record the acceptance, trying a fresh connection if the first one was lost: until it
        is recorded, the delivery stays in doubt and its next attempt has to settle it."""
        for pause in (0.1, 0.5, None):
            try:
                async with self._pool.acquire() as conn:
                    await deliveries.mark_sent(conn, d.id, provider_id)
                return
            except Exception:
                if pause is None:
                    raise
                log.warning("%s sent but not yet marked; trying again", d.label)
                await asyncio.sleep(pause)

    async def _failed(
        self,
        d: Delivery,
        error: str,
        *,
        give_up: bool,
        dropped: bool = False,
        in_doubt: bool = False,
        retry_after: float | None = None,
    ) -> str:
        retry_at = None
        if not give_up:
            delay = max(self.backoff(d.attempts), min(retry_after or 0.0, 86400.0))
            retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        async with self._pool.acquire() as conn:
            await deliveries.mark_failed(
                conn, d, error, retry_at, in_doubt=in_doubt, dropped=dropped
            )
        if dropped:
            log.info("%s dropped: %s", d.label, error)
            return "dropped"
        if give_up:
            log.error("%s given up after %d attempts: %s", d.label, d.attempts, error)
            return "given_up"
        log.warning("%s attempt %d failed: %s", d.label, d.attempts, error)
        return "retry"

    async def run(self, stop: asyncio.Event, *, poll_s: float = 1.0) -> None:
        """Send until ``stop``; a failing pass (the database gone, say) is logged and retried,
        waiting longer after each failure in a row (up to 30 s).

        >>> stop = asyncio.Event()
        >>> task = asyncio.create_task(OutboxWorker(pool, notifiers, keyring=ring).run(stop))
        >>> stop.set(); await task
        """
        failures = 0
        while not stop.is_set():
            busy = False
            try:
                counts = await self.run_once()
                handled = sum(counts[k] for k in COUNTS if k not in ("fanned_out", "reminders"))
                busy = counts["fanned_out"] >= self._batch or handled >= self._batch
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("notifications pass failed (%d in a row): %s", failures, _error(exc))
            if not busy:
                wait = poll_s if not failures else min(poll_s * 2 ** min(failures, 6), 30.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(wait, poll_s))

    async def close(self) -> None:
        """Close the notifiers' connections."""
        for notifier in self._notifiers.values():
            await notifier.close()
