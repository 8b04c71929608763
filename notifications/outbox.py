"""The outbox's SQL: claim due rows (a lease, so two workers never send one at once), read what
a message needs, and record the outcome.

Every claim counts an attempt, so ``attempts`` doubles as the lease's fencing token: a worker
whose lease ran out (a slow batch, a pause) finds ``renew`` refused once another has claimed the
row, and leaves it alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from notifications.render import MailContext


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    dedup_key: str
    payload: dict[str, Any]
    attempts: int  # including this one


async def claim(conn: Any, *, limit: int, lease_s: float) -> list[OutboxRow]:
    """Due rows, each leased to the caller for ``lease_s`` (a crashed worker's rows come due
    again after it) and its attempt counted."""
    rows = await conn.fetch(
        """UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2),
                             attempts = attempts + 1
           WHERE id IN (SELECT id FROM outbox
                        WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
                        ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING id, topic, dedup_key, payload, attempts""",
        limit,
        lease_s,
    )
    return [
        OutboxRow(r["id"], r["topic"], r["dedup_key"], r["payload"], r["attempts"])
        for r in sorted(rows, key=lambda r: r["id"])
    ]


async def renew(conn: Any, row: OutboxRow, *, lease_s: float) -> bool:
    """Extend the caller's lease on ``row`` just before it is sent; False if the row is no
    longer the caller's (claimed again since, sent or given up): do not send it."""
    renewed = await conn.fetchval(
        """UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $3)
           WHERE id = $1 AND attempts = $2 AND sent_at IS NULL AND failed_at IS NULL
           RETURNING id""",
        row.id,
        row.attempts,
        lease_s,
    )
    return renewed is not None


async def context_for(conn: Any, row: OutboxRow) -> MailContext | None:
    """The recipient, show and theater of a row; None if they are gone."""
    payload = row.payload
    found = await conn.fetchrow(
        """SELECT u.email, u.display_name, m.title, t.name AS theater, t.address, t.time_zone,
                  sc.name AS screen, s.starts_at, s.busy_until, m.runtime_min, s.currency
           FROM shows s JOIN movies m ON m.id = s.movie_id
                JOIN screens sc ON sc.id = s.screen_id JOIN theaters t ON t.id = sc.theater_id
                JOIN users u ON u.id = $2
           WHERE s.id = $1""",
        int(payload["show_id"]),
        int(payload["user_id"]),
    )
    if found is None:
        return None
    ends = found["starts_at"] + dt.timedelta(minutes=found["runtime_min"])
    return MailContext(
        email=found["email"],
        display_name=found["display_name"],
        movie_title=found["title"],
        theater_name=found["theater"],
        theater_address=found["address"],
        time_zone=found["time_zone"],
        screen_name=found["screen"],
        starts_at=found["starts_at"],
        ends_at=min(ends, found["busy_until"]),
        currency=found["currency"],
    )


async def mark_sent(conn: Any, row_id: int) -> bool:
    """Record that the SMTP server accepted the row's message; False if it already was."""
    done = await conn.fetchval(
        "UPDATE outbox SET sent_at = now(), last_error = NULL "
        "WHERE id = $1 AND sent_at IS NULL RETURNING id",
        row_id,
    )
    return done is not None


async def mark_failed(conn: Any, row_id: int, error: str, retry_at: dt.datetime | None) -> None:
    """Note a failure: try again at ``retry_at``, or (None) give the message up."""
    if retry_at is None:
        await conn.execute(
            "UPDATE outbox SET last_error = $2, failed_at = now() "
            "WHERE id = $1 AND sent_at IS NULL",
            row_id,
            error[:1000],
        )
    else:
        await conn.execute(
            "UPDATE outbox SET last_error = $2, next_attempt_at = $3 WHERE id = $1 "
            "AND sent_at IS NULL AND failed_at IS NULL",
            row_id,
            error[:1000],
            retry_at,
        )
