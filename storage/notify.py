"""Notification preferences, push devices, and the events the notifications worker sends that
no booking write causes: reminders before a show and waiting-room admissions.

A customer's preferences are a matrix of kinds × channels; a cell the customer never set takes
its default (``DEFAULTS``): email for confirmations, reminders and cancellations, push for every
kind (it reaches only registered devices), SMS for nothing until the customer turns it on.

    >>> await set_preferences(conn, user_id, {("reminder", "sms"): True})
    >>> (await preferences(conn, user_id))["reminder"]["sms"]
    True
    >>> device = await register_device(conn, user_id, token, "android")
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KINDS = ("confirmation", "reminder", "cancellation", "admission")
CHANNELS = ("email", "sms", "push")
PLATFORMS = ("web", "android", "ios")
MAX_DEVICES = 10  # per user; registering one more forgets the longest unseen
REMINDER_TOPIC = "booking.reminder"
ADMISSION_TOPIC = "queue.admitted"

Matrix = dict[str, dict[str, bool]]

DEFAULTS: dict[tuple[str, str], bool] = {
    (kind, channel): (channel == "push" or (channel == "email" and kind != "admission"))
    for kind in KINDS
    for channel in CHANNELS
}


@dataclass(frozen=True)
class Device:
    """A registered push device, without its token."""

    id: int
    platform: str
    created_at: dt.datetime
    last_seen_at: dt.datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform": self.platform,
            "created_at": self.created_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
        }


@dataclass(frozen=True)
class Reach:
    """What the fan-out needs to know of one customer: their wishes and their addresses (only
    whether they have them: the addresses themselves are opened at send time)."""

    user_id: int
    preferences: Matrix
    has_email: bool
    has_phone: bool
    devices: tuple[int, ...]


def _matrix(rows: Iterable[Any]) -> Matrix:
    matrix = {kind: {channel: DEFAULTS[(kind, channel)] for channel in CHANNELS} for kind in KINDS}
    for row in rows:
        matrix[row["kind"]][row["channel"]] = bool(row["enabled"])
    return matrix


async def preferences(conn: Any, user_id: int) -> Matrix:
    """Every kind × channel cell for the user, defaults filled in."""
    rows = await conn.fetch(
        "SELECT kind, channel, enabled FROM notification_prefs WHERE user_id = $1", user_id
    )
    return _matrix(rows)


async def set_preferences(conn: Any, user_id: int, cells: Mapping[tuple[str, str], bool]) -> None:
    """Set some cells ((kind, channel) → on/off); the others keep their value."""
    for kind, channel in cells:
        if kind not in KINDS or channel not in CHANNELS:
            raise ValueError(f"no notification cell {kind}/{channel}")
    await conn.executemany(
        """INSERT INTO notification_prefs (user_id, kind, channel, enabled) VALUES ($1, $2, $3, $4)
           ON CONFLICT (user_id, kind, channel)
           DO UPDATE SET enabled = excluded.enabled, updated_at = now()""",
        [(user_id, kind, channel, on) for (kind, channel), on in sorted(cells.items())],
    )


async def turn_off_channel(conn: Any, user_id: int, channel: str) -> None:
    """Every kind off on ``channel`` (the customer removed their phone, say)."""
    await set_preferences(conn, user_id, {(kind, channel): False for kind in KINDS})


def _device(row: Any) -> Device:
    return Device(row["id"], row["platform"], row["created_at"], row["last_seen_at"])


async def devices_of(conn: Any, user_id: int) -> list[Device]:
    """The user's push devices, the most recently seen first."""
    rows = await conn.fetch(
        """SELECT id, platform, created_at, last_seen_at FROM push_devices
           WHERE user_id = $1 ORDER BY last_seen_at DESC, id DESC""",
        user_id,
    )
    return [_device(r) for r in rows]


async def register_device(conn: Any, user_id: int, token: str, platform: str) -> Device:
    """Register ``token`` as the user's (again: the same device, seen now). A token belongs to
    one user: registered by another, it moves to this one. Past ``MAX_DEVICES`` the device
    unseen for longest is forgotten."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO push_devices (user_id, token, platform) VALUES ($1, $2, $3)
               ON CONFLICT (token) DO UPDATE SET user_id = excluded.user_id,
                   platform = excluded.platform, last_seen_at = now(),
                   created_at = CASE WHEN push_devices.user_id = excluded.user_id
                                     THEN push_devices.created_at ELSE now() END
               RETURNING id, platform, created_at, last_seen_at""",
            user_id,
            token,
            platform,
        )
        await conn.execute(
            """DELETE FROM push_devices WHERE id IN (
                   SELECT id FROM push_devices WHERE user_id = $1
                   ORDER BY last_seen_at DESC, id DESC OFFSET $2)""",
            user_id,
            MAX_DEVICES,
        )
    return _device(row)


async def delete_device(conn: Any, user_id: int, device_id: int) -> bool:
    """Forget one of the user's devices; False if the user has no such device."""
    done = await conn.fetchval(
        "DELETE FROM push_devices WHERE id = $1 AND user_id = $2 RETURNING id", device_id, user_id
    )
    return done is not None


async def forget_device(conn: Any, device_id: int) -> None:
    """Forget a device the push service no longer knows (its app was uninstalled, say)."""
    await conn.execute("DELETE FROM push_devices WHERE id = $1", device_id)


async def device_token(conn: Any, device_id: int, user_id: int) -> tuple[str, str] | None:
    """(token, platform) of the user's device, or None if it is gone (or someone else's now)."""
    row = await conn.fetchrow(
        "SELECT token, platform FROM push_devices WHERE id = $1 AND user_id = $2",
        device_id,
        user_id,
    )
    return None if row is None else (row["token"], row["platform"])


async def reach_of(conn: Any, user_ids: Sequence[int]) -> dict[int, Reach]:
    """Preferences and addresses of live users (deleted or unknown ones are left out)."""
    users = await conn.fetch(
        """SELECT id, (email_enc IS NOT NULL OR email_plain IS NOT NULL) AS has_email,
                  phone_enc IS NOT NULL AS has_phone
           FROM users WHERE id = ANY($1::bigint[]) AND deleted_at IS NULL""",
        list(user_ids),
    )
    prefs = await conn.fetch(
        """SELECT user_id, kind, channel, enabled FROM notification_prefs
           WHERE user_id = ANY($1::bigint[])""",
        list(user_ids),
    )
    devices = await conn.fetch(
        "SELECT user_id, id FROM push_devices WHERE user_id = ANY($1::bigint[]) ORDER BY id",
        list(user_ids),
    )
    found: dict[int, Reach] = {}
    for user in users:
        uid = user["id"]
        found[uid] = Reach(
            user_id=uid,
            preferences=_matrix(r for r in prefs if r["user_id"] == uid),
            has_email=bool(user["has_email"]),
            has_phone=bool(user["has_phone"]),
            devices=tuple(d["id"] for d in devices if d["user_id"] == uid),
        )
    return found


async def schedule_reminders(
    conn: Any, *, lead_s: float, now: dt.datetime | None = None, limit: int = 5000
) -> int:
    """Write one reminder event for each confirmed booking whose show starts within
    ``lead_s`` (and has not started), unless it was booked inside that window (its
    confirmation just went out) or its show is cancelled. Idempotent: a booking's reminder has
    the dedup key ``reminder:{booking_id}``. Returns how many were written."""
    written = await conn.fetchval(
        """WITH due AS (
               SELECT b.booking_id, b.show_id, b.user_id, b.seats, b.price_cents, s.starts_at
               FROM shows s
               JOIN bookings b ON b.show_id = s.id
                    AND b.show_date = (s.starts_at AT TIME ZONE 'UTC')::date
               WHERE s.starts_at > coalesce($1, now())
                 AND s.starts_at <= coalesce($1, now()) + make_interval(secs => $2)
                 AND s.status <> 'cancelled' AND b.status = 'confirmed'
                 AND b.confirmed_at <= s.starts_at - make_interval(secs => $2)
                 AND NOT EXISTS (SELECT FROM outbox o
                                 WHERE o.dedup_key = 'reminder:' || b.booking_id::text)
               ORDER BY s.starts_at LIMIT $3),
           written AS (
               INSERT INTO outbox (topic, dedup_key, payload)
               SELECT $4, 'reminder:' || booking_id::text,
                      jsonb_build_object('booking_id', booking_id::text, 'show_id', show_id,
                                         'user_id', user_id::text, 'seats', to_jsonb(seats),
                                         'price_cents', price_cents,
                                         'starts_at', extract(epoch FROM starts_at)::float8,
                                         'at', extract(epoch FROM coalesce($1, now()))::float8)
               FROM due
               ON CONFLICT (dedup_key) DO NOTHING RETURNING 1)
           SELECT count(*) FROM written""",
        now,
        float(lead_s),
        limit,
        REMINDER_TOPIC,
    )
    return int(written)


async def reminder_still_due(conn: Any, booking_id: str) -> str | None:
    """None if the booking's reminder may go out now; else why not ("booking_cancelled",
    "show_cancelled", "show_started", "booking_gone")."""
    row = await conn.fetchrow(
        """SELECT b.status, s.status AS show_status, s.starts_at <= now() AS started
           FROM bookings b JOIN shows s ON s.id = b.show_id
           WHERE b.booking_id = $1::uuid""",
        booking_id,
    )
    if row is None:
        return "booking_gone"
    if row["status"] != "confirmed":
        return "booking_cancelled"
    if row["show_status"] == "cancelled":
        return "show_cancelled"
    if row["started"]:
        return "show_started"
    return None


@dataclass(frozen=True)
class Admission:
    """A visitor let out of a waiting room's line: their user id, queue number, and when."""

    user_id: int
    number: int
    admitted_ms: int


async def record_admissions(
    conn: Any, show_id: int, admissions: Sequence[Admission], *, token_ttl_s: float
) -> int:
    """One admission event per (user, show, place): a second write of the same place is
    dropped (several gateways may report it). Returns how many were new."""
    if not admissions:
        return 0
    rows = [
        (
            f"admission:{show_id}:{a.user_id}:{a.number}",
            {
                "show_id": show_id,
                "user_id": str(a.user_id),
                "number": a.number,
                "at": a.admitted_ms / 1000,
                "expires_at": a.admitted_ms / 1000 + token_ttl_s,
            },
        )
        for a in admissions
    ]
    written = await conn.fetchval(
        """WITH written AS (
               INSERT INTO outbox (topic, dedup_key, payload)
               SELECT $1, k, p FROM unnest($2::text[], $3::jsonb[]) AS t(k, p)
               ON CONFLICT (dedup_key) DO NOTHING RETURNING 1)
           SELECT count(*) FROM written""",
        ADMISSION_TOPIC,
        [k for k, _ in rows],
        [p for _, p in rows],
    )
    return int(written)
