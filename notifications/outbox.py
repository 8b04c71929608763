"""The outbox's fan-out: each event (a row of ``outbox``, written in the transaction that caused
it) becomes one delivery per channel (and, for push, per device) the customer's preferences ask
for, in one transaction that marks the event fanned out, so an event is fanned out once.

An event of a topic nobody can send, or without a customer, is given up with its error. A
customer who turned everything off, or whose account is gone, gets no delivery.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from notifications.texts import KIND_OF_TOPIC
from storage import notify as prefs


def _customer(payload: Any) -> int | None:
    try:
        return int(payload["user_id"])
    except (KeyError, TypeError, ValueError):
        return None


async def fan_out(conn: Any, *, limit: int, channels: Collection[str]) -> int:
    """Fan out up to ``limit`` events into deliveries on ``channels`` (those this worker can
    send); returns how many events it took."""
    async with conn.transaction():
        rows = await conn.fetch(
            """SELECT id, topic, payload FROM outbox
               WHERE fanned_out_at IS NULL AND failed_at IS NULL
               ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
            limit,
        )
        if not rows:
            return 0
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
        wanted: list[tuple[int, int, str, str, int]] = []
        for outbox_id, kind, user_id in good:
            found = reach.get(user_id)
            if found is not None:
                wanted += [
                    (outbox_id, user_id, kind, channel, device)
                    for channel, device in _targets(found, kind)
                    if channel in channels
                ]
        if wanted:
            await conn.execute(
                """INSERT INTO notification_deliveries (outbox_id, user_id, kind, channel,
                                                        device_id)
                   SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[],
                                        $5::bigint[])
                   ON CONFLICT (outbox_id, channel, device_id) DO NOTHING""",
                *(list(column) for column in zip(*wanted, strict=True)),
            )
        await conn.execute(
            "UPDATE outbox SET fanned_out_at = now() WHERE id = ANY($1::bigint[])",
            [outbox_id for outbox_id, _, _ in good],
        )
        if bad:
            await conn.executemany(
                "UPDATE outbox SET failed_at = now(), last_error = $2 WHERE id = $1", bad
            )
    return len(rows)


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
