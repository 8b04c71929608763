"""The deliveries' SQL: claim due ones (a lease, so two workers never send one at once), mark a
send begun, read what a message needs, and record the outcome.

Every claim counts an attempt, so ``attempts`` doubles as the lease's fencing token: a worker
whose lease ran out (a slow batch, a pause) finds ``renew`` and ``begin_send`` refused once
another has claimed the delivery, and leaves it alone. ``begin_send`` marks the attempt whose
send began; the mark goes when the outcome is recorded, so a delivery claimed with the mark
still on had a send whose outcome nobody knows (``Delivery.in_doubt_since``).

Sending opens the customer's email address or phone number: ``mark_sent`` writes the audit row
of that access (``personal_data.notify`` by the system, about the customer, on the delivery;
channel and kind, never the address) in the transaction that records the delivery sent, so
every delivery sent has its row and none has two.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import storage
from notifications.render import MailContext
from storage import audit
from storage import notify as prefs

_RETURNING = """d.id, d.outbox_id, d.user_id, d.kind, d.channel, d.device_id, d.attempts,
                CASE WHEN d.send_attempt IS NOT NULL THEN d.send_started_at END AS in_doubt,
                o.topic, o.dedup_key, o.payload"""


class Obsolete(Exception):
    """The message is no longer due (a reminder of a cancelled booking, an admission over)."""


class RecipientGone(Exception):
    """The customer, their phone number or their device is gone."""


@dataclass(frozen=True)
class Delivery:
    id: int
    outbox_id: int
    user_id: int
    kind: str
    channel: str
    device_id: int
    attempts: int  # including this one
    in_doubt_since: dt.datetime | None  # an earlier attempt's send began, outcome unknown
    topic: str
    dedup_key: str
    payload: dict[str, Any]

    @property
    def label(self) -> str:
        """How logs name it (no personal data)."""
        return f"{self.channel} delivery {self.id} ({self.kind})"


def _delivery(r: Any) -> Delivery:
    return Delivery(
        r["id"],
        r["outbox_id"],
        r["user_id"],
        r["kind"],
        r["channel"],
        r["device_id"],
        r["attempts"],
        r["in_doubt"],
        r["topic"],
        r["dedup_key"],
        r["payload"],
    )


async def claim(
    conn: Any, *, limit: int, lease_s: float, channels: Collection[str]
) -> list[Delivery]:
    """Due deliveries on ``channels``, each leased to the caller for ``lease_s`` (a crashed
    worker's come due again after it) and its attempt counted."""
    rows = await conn.fetch(
        f"""UPDATE notification_deliveries d
            SET next_attempt_at = now() + make_interval(secs => $2), attempts = d.attempts + 1
            FROM outbox o
            WHERE o.id = d.outbox_id AND d.id IN (
                SELECT id FROM notification_deliveries
                WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
                  AND channel = ANY($3::text[])
                ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING {_RETURNING}""",
        limit,
        lease_s,
        list(channels),
    )
    return sorted((_delivery(r) for r in rows), key=lambda d: d.id)


_MINE = "id = $1 AND attempts = $2 AND sent_at IS NULL AND failed_at IS NULL"


async def renew(conn: Any, d: Delivery, *, lease_s: float) -> bool:
    """Extend the caller's lease; False if the delivery is no longer the caller's (claimed
    again since, sent or given up): leave it alone."""
    renewed = await conn.fetchval(
        f"""UPDATE notification_deliveries SET next_attempt_at = now() + make_interval(secs => $3)
            WHERE {_MINE} RETURNING id""",
        d.id,
        d.attempts,
        lease_s,
    )
    return renewed is not None


async def begin_send(conn: Any, d: Delivery, *, lease_s: float) -> bool:
    """Mark this attempt's send as begun (and the lease renewed); False if the delivery is no
    longer the caller's: do not send."""
    begun = await conn.fetchval(
        f"""UPDATE notification_deliveries
            SET send_attempt = $2, send_started_at = now(),
                next_attempt_at = now() + make_interval(secs => $3)
            WHERE {_MINE} RETURNING id""",
        d.id,
        d.attempts,
        lease_s,
    )
    return begun is not None


async def mark_sent(conn: Any, delivery_id: int, provider_id: str) -> bool:
    """Record that the provider accepted the message, with the audit row of the personal data
    it used; False (and no row) if that was already recorded."""
    async with conn.transaction():
        done = await conn.fetchrow(
            """UPDATE notification_deliveries
               SET sent_at = now(), provider_id = $2, last_error = NULL, send_attempt = NULL
               WHERE id = $1 AND sent_at IS NULL RETURNING id, user_id, channel, kind""",
            delivery_id,
            provider_id[:500],
        )
        if done is not None:
            await audit.record(conn, _access(done))
    return done is not None


def _access(sent: Any) -> audit.AuditEntry:
    """The audit entry of a delivery sent: the system opened the customer's address for it."""
    return audit.AuditEntry(
        "personal_data.notify",
        actor_role="system",
        target_type="notification_delivery",
        target_id=str(sent["id"]),
        subject_id=sent["user_id"],
        details={"channel": sent["channel"], "kind": sent["kind"]},
    )


async def mark_failed(
    conn: Any,
    d: Delivery,
    error: str,
    retry_at: dt.datetime | None,
    *,
    in_doubt: bool = False,
    dropped: bool = False,
) -> None:
    """Note a failure of the caller's attempt: try again at ``retry_at``, or (None) give the
    delivery up (``dropped``: as no longer due). ``in_doubt`` keeps the mark of a send whose
    outcome is unknown, for the next attempt to settle."""
    if retry_at is None:
        await conn.execute(
            f"""UPDATE notification_deliveries
                SET last_error = $3, failed_at = now(), dropped = $4
                WHERE {_MINE}""",
            d.id,
            d.attempts,
            error[:1000],
            dropped,
        )
    else:
        await conn.execute(
            f"""UPDATE notification_deliveries
                SET last_error = $3, next_attempt_at = $4,
                    send_attempt = CASE WHEN $5 THEN send_attempt END,
                    send_started_at = CASE WHEN $5 THEN send_started_at END
                WHERE {_MINE}""",
            d.id,
            d.attempts,
            error[:1000],
            retry_at,
            in_doubt,
        )


async def context_for(conn: Any, d: Delivery, keyring: Any) -> tuple[MailContext, Any]:
    """The show around a delivery and its recipient: the email address, the phone number, or
    the device's (token, platform). ``Obsolete`` when it is no longer due, ``RecipientGone``
    when there is no one to send it to, ``storage.NotFound`` when the show is gone."""
    await _still_due(conn, d)
    try:
        user = await storage.get_user(conn, d.user_id, keyring=keyring)
    except storage.NotFound:
        raise RecipientGone("the customer's account is gone") from None
    recipient: Any = user.email
    if d.channel == "sms":
        if not user.phone:
            raise RecipientGone("the customer has no phone number any more")
        recipient = user.phone
    elif d.channel == "push":
        recipient = await prefs.device_token(conn, d.device_id, d.user_id)
        if recipient is None:
            raise RecipientGone("the device is no longer registered")
    show = await conn.fetchrow(
        """SELECT m.title, t.name AS theater, t.address, t.time_zone, sc.name AS screen,
                  s.starts_at, s.busy_until, m.runtime_min, s.currency
           FROM shows s JOIN movies m ON m.id = s.movie_id
                JOIN screens sc ON sc.id = s.screen_id JOIN theaters t ON t.id = sc.theater_id
           WHERE s.id = $1""",
        int(d.payload["show_id"]),
    )
    if show is None:
        raise storage.NotFound("the show is gone", {"show_id": d.payload["show_id"]})
    ends = show["starts_at"] + dt.timedelta(minutes=show["runtime_min"])
    context = MailContext(
        email=user.email,
        display_name=user.display_name,
        movie_title=show["title"],
        theater_name=show["theater"],
        theater_address=show["address"],
        time_zone=show["time_zone"],
        screen_name=show["screen"],
        starts_at=show["starts_at"],
        ends_at=min(ends, show["busy_until"]),
        currency=show["currency"],
    )
    return context, recipient


async def _still_due(conn: Any, d: Delivery) -> None:
    if d.topic == prefs.REMINDER_TOPIC:
        why = await prefs.reminder_still_due(conn, str(d.payload["booking_id"]))
        if why is not None:
            raise Obsolete(why)
    elif d.topic == prefs.ADMISSION_TOPIC and float(d.payload["expires_at"]) <= time.time():
        raise Obsolete("admission_over")
