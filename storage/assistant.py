"""The booking assistant's tables: token use per conversation and model (``chat_usage``), the
human queue (``chat_handoffs``), and the few catalog reads its tools need.

    await record_usage(conn, "c_x", 7, "claude-haiku-4-5", input_tokens=900, output_tokens=80)
    handoff = await open_handoff(conn, "c_x", 7, "requested", [{"role": "user", ...}])
    taken = await take_handoff(conn, handoff.id, admin_id)   # None: not waiting any more

A handoff goes waiting → taken → answered (answered again as often as needed) → closed; an
open handoff per conversation at most (a unique partial index).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from storage.catalog import _local as local_time
from storage.errors import NotFound

REASONS = ("requested", "failures", "refund_dispute", "unavailable")
STATUSES = ("waiting", "taken", "answered", "closed")


@dataclass(frozen=True)
class Handoff:
    id: int
    conversation_id: str
    user_id: int | None
    reason: str
    transcript: list[dict[str, Any]]
    status: str
    taken_by: int | None
    created_at: dt.datetime
    taken_at: dt.datetime | None
    answered_at: dt.datetime | None
    closed_at: dt.datetime | None


_COLUMNS = """id, conversation_id, user_id, reason, transcript, status, taken_by, created_at,
              taken_at, answered_at, closed_at"""


def _handoff(r: Any) -> Handoff:
    return Handoff(
        id=r["id"],
        conversation_id=r["conversation_id"],
        user_id=r["user_id"],
        reason=r["reason"],
        transcript=list(r["transcript"]),
        status=r["status"],
        taken_by=r["taken_by"],
        created_at=r["created_at"],
        taken_at=r["taken_at"],
        answered_at=r["answered_at"],
        closed_at=r["closed_at"],
    )


async def record_usage(
    conn: Any,
    conversation_id: str,
    user_id: int | None,
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    calls: int = 1,
) -> None:
    """Add one model call's tokens to the conversation's row for that model."""
    await conn.execute(
        """INSERT INTO chat_usage AS u
               (conversation_id, model, user_id, input_tokens, output_tokens, calls)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (conversation_id, model) DO UPDATE SET
               input_tokens = u.input_tokens + EXCLUDED.input_tokens,
               output_tokens = u.output_tokens + EXCLUDED.output_tokens,
               calls = u.calls + EXCLUDED.calls,
               updated_at = now()""",
        conversation_id,
        model,
        user_id,
        input_tokens,
        output_tokens,
        calls,
    )


async def usage_of(conn: Any, conversation_id: str) -> dict[str, dict[str, int]]:
    """Tokens by model: ``{model: {"input", "output", "calls"}}``."""
    rows = await conn.fetch(
        """SELECT model, input_tokens, output_tokens, calls FROM chat_usage
           WHERE conversation_id = $1 ORDER BY model""",
        conversation_id,
    )
    return {
        r["model"]: {"input": r["input_tokens"], "output": r["output_tokens"], "calls": r["calls"]}
        for r in rows
    }


async def open_handoff(
    conn: Any,
    conversation_id: str,
    user_id: int | None,
    reason: str,
    transcript: list[dict[str, Any]],
) -> Handoff:
    """The conversation's open handoff, opened now with ``transcript`` if it has none."""
    row = await conn.fetchrow(
        f"""INSERT INTO chat_handoffs (conversation_id, user_id, reason, transcript)
            VALUES ($1, $2, $3, $4::jsonb)
            ON CONFLICT (conversation_id) WHERE status <> 'closed' DO NOTHING
            RETURNING {_COLUMNS}""",
        conversation_id,
        user_id,
        reason,
        transcript,  # the pool's codec encodes jsonb
    )
    if row is None:
        row = await conn.fetchrow(
            f"""SELECT {_COLUMNS} FROM chat_handoffs
                WHERE conversation_id = $1 AND status <> 'closed'""",
            conversation_id,
        )
    return _handoff(row)


async def append_transcript(conn: Any, handoff_id: int, messages: list[dict[str, Any]]) -> None:
    """Add the customer's later messages to an open handoff's transcript."""
    await conn.execute(
        """UPDATE chat_handoffs SET transcript = transcript || $2::jsonb
           WHERE id = $1 AND status <> 'closed'""",
        handoff_id,
        messages,
    )


async def get_handoff(conn: Any, handoff_id: int) -> Handoff:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM chat_handoffs WHERE id = $1", handoff_id)
    if row is None:
        raise NotFound("no such handoff", {"entity": "handoff", "id": handoff_id})
    return _handoff(row)


async def list_handoffs(conn: Any, status: str | None = None, *, limit: int = 50) -> list[Handoff]:
    """Handoffs, oldest first (the queue's order), of one status or all but closed ones."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM chat_handoffs
            WHERE CASE WHEN $1::text IS NULL THEN status <> 'closed' ELSE status = $1 END
            ORDER BY created_at, id LIMIT $2""",
        status,
        limit,
    )
    return [_handoff(r) for r in rows]


async def take_handoff(conn: Any, handoff_id: int, admin_id: int) -> Handoff | None:
    """Take a waiting handoff (or one this admin already took); None if it cannot be taken."""
    row = await conn.fetchrow(
        f"""UPDATE chat_handoffs SET status = 'taken', taken_by = $2, taken_at = now()
            WHERE id = $1 AND (status = 'waiting' OR (status = 'taken' AND taken_by = $2))
            RETURNING {_COLUMNS}""",
        handoff_id,
        admin_id,
    )
    return None if row is None else _handoff(row)


async def answer_handoff(conn: Any, handoff_id: int, admin_id: int, text: str) -> Handoff | None:
    """Answer a handoff this admin took (a waiting one is taken by answering it); None if it
    is someone else's or closed."""
    row = await conn.fetchrow(
        f"""UPDATE chat_handoffs
            SET status = 'answered', answered_at = now(), taken_by = $2,
                taken_at = coalesce(taken_at, now()),
                transcript = transcript || jsonb_build_array(
                    jsonb_build_object('role', 'agent', 'content', $3::text))
            WHERE id = $1 AND (status = 'waiting'
                               OR (taken_by = $2 AND status IN ('taken', 'answered')))
            RETURNING {_COLUMNS}""",
        handoff_id,
        admin_id,
        text,
    )
    return None if row is None else _handoff(row)


async def close_handoff(conn: Any, handoff_id: int) -> Handoff | None:
    """Close an open handoff; None if it was already closed."""
    row = await conn.fetchrow(
        f"""UPDATE chat_handoffs SET status = 'closed', closed_at = now()
            WHERE id = $1 AND status <> 'closed' RETURNING {_COLUMNS}""",
        handoff_id,
    )
    return None if row is None else _handoff(row)


@dataclass(frozen=True)
class ShowSlot:
    show_id: int
    movie_id: int
    movie_title: str
    theater_id: int
    theater_name: str
    city_id: int
    starts_at: dt.datetime  # in the theater's time zone
    status: str
    prices: dict[str, int]
    currency: str


async def upcoming_shows(
    conn: Any,
    movie_id: int,
    *,
    city_id: int | None,
    start: dt.datetime,
    end: dt.datetime,
    limit: int = 20,
) -> list[ShowSlot]:
    """The movie's shows on sale between ``start`` and ``end``, by start, in one city or any."""
    rows = await conn.fetch(
        """SELECT s.id, s.movie_id, m.title, t.id AS theater_id, t.name AS theater_name,
                  t.city_id, t.time_zone, s.starts_at, s.status, s.prices, s.currency
           FROM shows s
           JOIN screens sc ON sc.id = s.screen_id
           JOIN theaters t ON t.id = sc.theater_id
           JOIN movies m ON m.id = s.movie_id
           WHERE s.movie_id = $1 AND ($2::bigint IS NULL OR t.city_id = $2)
             AND s.starts_at >= $3 AND s.starts_at < $4 AND s.status <> 'cancelled'
           ORDER BY s.starts_at, t.name, s.id LIMIT $5""",
        movie_id,
        city_id,
        start,
        end,
        limit,
    )
    return [
        ShowSlot(
            show_id=r["id"],
            movie_id=r["movie_id"],
            movie_title=r["title"],
            theater_id=r["theater_id"],
            theater_name=r["theater_name"],
            city_id=r["city_id"],
            starts_at=local_time(r["starts_at"], r["time_zone"]),
            status=r["status"],
            prices=dict(r["prices"]),
            currency=r["currency"],
        )
        for r in rows
    ]


async def movies_titled(conn: Any, text: str, *, limit: int = 5) -> list[dict[str, Any]]:
    """Movies whose title or synopsis contains ``text`` (the tools' search without the search
    service)."""
    rows = await conn.fetch(
        """SELECT id, title, genres FROM movies
           WHERE title ILIKE '%' || $1 || '%' OR synopsis ILIKE '%' || $1 || '%'
              OR $1 ILIKE '%' || title || '%'
           ORDER BY (lower(title) = lower($1)) DESC, title LIMIT $2""",
        text,
        limit,
    )
    return [{"id": r["id"], "title": r["title"], "genres": list(r["genres"])} for r in rows]


__all__ = [
    "REASONS",
    "STATUSES",
    "Handoff",
    "ShowSlot",
    "answer_handoff",
    "append_transcript",
    "close_handoff",
    "get_handoff",
    "list_handoffs",
    "movies_titled",
    "open_handoff",
    "record_usage",
    "take_handoff",
    "upcoming_shows",
    "usage_of",
]
