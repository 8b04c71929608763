"""The outbox's fan-out: each event (a row of ``outbox``, written in the transaction that caused
it) becomes one delivery per channel (and, for push, per device) the customer's preferences ask
for, in one transaction that marks the event fanned out, so an event is fanned out once.

An event of a topic nobody can send, or without a customer, is given up with its error. A
customer who turned everything off, or whose account is gone, gets no delivery. A channel the
customer chose but this worker cannot send on (Twilio or FCM not configured) still gets its
delivery, closed at once as skipped (``skipped = 'channel_unconfigured'``): the worker counts and
reports those (``FanOut.skipped``), so a customer never goes without their texts unnoticed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from notifications.texts import KIND_OF_TOPIC
from storage import notify as prefs

UNCONFIGURED = "channel_unconfigured"

# (outbox id, customer, kind, channel, device, why skipped: None if due)
Wanted = tuple[int, int, str, str, int, str | None]


@dataclass(frozen=True)
class FanOut:
    """What one fan-out did: the events it took, and the deliveries it closed as skipped at
    once, by channel, for want of a notifier."""

    events: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def _customer(payload: Any) -> int | None:
    try:
        return int(payload["user_id"])
    except (KeyError, TypeError, ValueError):
        return None


async def fan_out(conn: Any, *, limit: int, channels: Collection[str]) -> FanOut:
    """Fan out up to ``limit`` events into deliveries, each on a channel the customer wants:
    those on ``channels`` (the ones this worker can send on) due now, the others skipped."""
    async with conn.transaction():
        rows = await conn.fetch(
            """SELECT id, topic, payload FROM outbox
               WHERE fanned_out_at IS NULL AND failed_at IS NULL
               ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
            limit,
        )
        if not rows:
            return FanOut()
        bad: list[tuple[int, str]] = []
        good: list[tuple[int, str, int]] = []
        for row in rows:
            kind, user_id = KIND_OF_TOPIC.get(row["topic"]), _customer(row["payload"])
            if kind is None:
                bad.append((row["id"], f"UnknownTopic: {row['topic'][:100]}"))
            elif user_id is None:
                bad.append((row["id"], "BadPayload: no customer"))
            else:
                good.append((row["id"], kind, user_id))
        reach = await prefs.reach_of(conn, sorted({user for _, _, user in good}))
        wanted: list[Wanted] = []
        for outbox_id, kind, user_id in good:
            found = reach.get(user_id)
            for channel, device in _targets(found, kind) if found is not None else []:
                why = None if channel in channels else UNCONFIGURED
                wanted.append((outbox_id, user_id, kind, channel, device, why))
        skipped = await _insert(conn, wanted) if wanted else Counter[str]()
        await conn.execute(
            "UPDATE outbox SET fanned_out_at = now() WHERE id = ANY($1::bigint[])",
            [outbox_id for outbox_id, _, _ in good],
        )
        if bad:
            await conn.executemany(
                "UPDATE outbox SET failed_at = now(), last_error = $2 WHERE id = $1", bad
            )
    return FanOut(len(rows), dict(skipped))


async def _insert(conn: Any, wanted: list[Wanted]) -> Counter[str]:
    """Write the deliveries (skipped ones closed as they are written); the skipped ones made,
    by channel (none again for an event fanned out twice)."""
    made = await conn.fetch(
        """INSERT INTO notification_deliveries (outbox_id, user_id, kind, channel, device_id,
                                                skipped, failed_at)
           SELECT o, u, k, c, d, s, CASE WHEN s IS NOT NULL THEN now() END
           FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[],
                       $6::text[]) AS t(o, u, k, c, d, s)
           ON CONFLICT (outbox_id, channel, device_id) DO NOTHING
           RETURNING channel, skipped""",
        *(list(column) for column in zip(*wanted, strict=True)),
    )
    return Counter(r["channel"] for r in made if r["skipped"] is not None)


def _targets(reach: prefs.Reach, kind: str) -> list[tuple[str, int]]:
    """(channel, device) pairs the customer's preferences and addresses allow for ``kind``."""
    wants = reach.preferences[kind]
    found: list[tuple[str, int]] = []
    if wants["email"] and reach.has_email:
        found.append(("email", 0))
    if wants["sms"] and reach.has_phone:
        found.append(("sms", 0))
    if wants["push"]:
        found += [("push", device) for device in reach.devices]
    return found
