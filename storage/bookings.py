"""Read side of bookings: a customer's bookings and one booking, as the write-behind stored them.

>>> page = await bookings_of_user(conn, user_id, limit=20)
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from storage.errors import NotFound


@dataclass(frozen=True)
class BookingRecord:
    booking_id: str
    show_id: int
    user_id: int
    hold_id: str | None
    seats: tuple[str, ...]
    price_cents: int
    currency: str
    status: str
    confirmed_at: dt.datetime
    cancelled_at: dt.datetime | None
    movie_title: str
    theater_id: int
    theater_name: str
    starts_at: dt.datetime  # in the theater's time zone
    price_arm: str = "control"  # the pricing experiment's arm it was quoted under


_SELECT = """
SELECT b.booking_id, b.show_id, b.user_id, b.hold_id, b.seats, b.price_cents, b.currency,
       b.status, b.confirmed_at, b.cancelled_at, b.price_arm, m.title AS movie_title,
       t.id AS theater_id, t.name AS theater_name, s.starts_at, t.time_zone
FROM bookings b
JOIN shows s ON s.id = b.show_id
JOIN movies m ON m.id = s.movie_id
JOIN screens sc ON sc.id = s.screen_id
JOIN theaters t ON t.id = sc.theater_id
"""


def _record(row: Any) -> BookingRecord:
    from zoneinfo import ZoneInfo

    return BookingRecord(
        booking_id=str(row["booking_id"]),
        show_id=row["show_id"],
        user_id=row["user_id"],
        hold_id=None if row["hold_id"] is None else str(row["hold_id"]),
        seats=tuple(row["seats"]),
        price_cents=row["price_cents"],
        currency=row["currency"],
        status=row["status"],
        confirmed_at=row["confirmed_at"],
        cancelled_at=row["cancelled_at"],
        price_arm=row["price_arm"],
        movie_title=row["movie_title"],
        theater_id=row["theater_id"],
        theater_name=row["theater_name"],
        starts_at=row["starts_at"].astimezone(ZoneInfo(row["time_zone"])),
    )


async def bookings_of_user(
    conn: Any, user_id: int, *, limit: int = 50, before: dt.datetime | None = None
) -> list[BookingRecord]:
    """The user's bookings, newest confirmation first; ``before`` pages back."""
    rows = await conn.fetch(
        _SELECT
        + """WHERE b.user_id = $1 AND ($2::timestamptz IS NULL OR b.confirmed_at < $2)
             ORDER BY b.confirmed_at DESC, b.booking_id LIMIT $3""",
        user_id,
        before,
        limit,
    )
    return [_record(r) for r in rows]


async def get_booking(conn: Any, booking_id: str) -> BookingRecord:
    try:
        key = uuid.UUID(booking_id)
    except ValueError as exc:
        raise NotFound("no such booking", {"booking_id": booking_id}) from exc
    row = await conn.fetchrow(_SELECT + "WHERE b.booking_id = $1", key)
    if row is None:
        raise NotFound("no such booking", {"booking_id": booking_id})
    return _record(row)
