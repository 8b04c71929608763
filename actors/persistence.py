"""Write-behind and recovery: the SQL side of a show host.

``write_batch`` turns the events of many shows into one transaction. Events are coalesced to
the final state of each hold, booking and blocked seat before they are written, so a hold placed
and confirmed within one flush costs one row write; all the holds of a flush go in one
statement (columns as arrays through ``unnest``), which costs Postgres and the host a fraction
of one statement per row. ``load_show`` reads what recovery needs: the show, its layout and
prices, its confirmed bookings, live holds and blocked seats; ``load_shows`` reads the same for
many shows in one query per table.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.events import (
    Booking,
    BookingCancelled,
    BookingConfirmed,
    Event,
    Hold,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
    PaymentStarted,
    SeatsBlocked,
    SeatsUnblocked,
    StatusChanged,
)

log = logging.getLogger(__name__)

UTC = dt.UTC


def to_time(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class ShowRecord:
    """A show as recovery finds it in Postgres."""

    show_id: int
    show_date: dt.date
    starts_at: float
    layout: dict[str, Any]
    prices: dict[str, int]
    currency: str
    status: str
    version: int
    sale_opens_at: float | None
    holds: tuple[Hold, ...]
    bookings: tuple[Booking, ...]
    blocked: tuple[str, ...]


async def load_show(conn: Any, show_id: int, now: float) -> ShowRecord | None:
    """Everything a show actor needs to start, read in one snapshot; None if no such show."""
    records = await load_shows(conn, [show_id], now)
    return records[0] if records else None


async def load_shows(conn: Any, show_ids: Sequence[int], now: float) -> list[ShowRecord]:
    """``load_show`` for many shows at once: one query per table for the lot, one snapshot.

    Shows that do not exist are left out; shows of one screen share one layout dict. Holds
    still ``live`` in Postgres whose expiry has passed (their host was lost before it wrote the
    expiry, or the show was not active when it came) are first recorded as expired at that
    expiry, and the show's version moves on: the actor that starts now is the show's one
    writer, and it will not load them. So are live holds on seats that a confirmed booking has
    (recorded released now; the booking wins, and a payment for such a hold is refunded), so
    that a show whose one writer was bypassed still loads.
    """
    ids = list(show_ids)
    await conn.execute(_EXPIRE_LAPSED_HOLDS, ids, to_time(now))
    for row in await conn.fetch(_RELEASE_OUTBOOKED_HOLDS, ids, to_time(now)):
        log.warning(
            "show %d: hold %s was live on seats a confirmed booking has (a second writer, or a "
            "confirmation refused by the live-seat index); recorded released",
            row["show_id"],
            row["hold_id"],
        )
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            """SELECT id, screen_id, starts_at, prices, currency, status, seat_version,
                      sale_opens_at
               FROM shows WHERE id = ANY($1::bigint[])""",
            ids,
        )
        if not rows:
            return []
        days = sorted({row["starts_at"].astimezone(UTC).date() for row in rows})
        screens = await conn.fetch(
            "SELECT id, layout FROM screens WHERE id = ANY($1::bigint[])",
            list({row["screen_id"] for row in rows}),
        )
        holds = await conn.fetch(
            """SELECT show_id, hold_id, user_id, seats, price_cents, expires_at, created_at,
                      payment_started, price_arm
               FROM holds WHERE show_id = ANY($1::bigint[]) AND status = 'live'
                            AND expires_at > $2""",
            ids,
            to_time(now),
        )
        bookings = await conn.fetch(
            """SELECT show_id, booking_id, hold_id, user_id, seats, price_cents, confirmed_at,
                      price_arm
               FROM bookings WHERE show_id = ANY($1::bigint[]) AND show_date = ANY($2::date[])
                               AND status = 'confirmed'""",
            ids,
            days,
        )
        blocked = await conn.fetch(
            """SELECT show_id, seat FROM show_blocked_seats WHERE show_id = ANY($1::bigint[])
               ORDER BY show_id, seat""",
            ids,
        )
    layouts = {r["id"]: _json(r["layout"]) for r in screens}
    by_show: dict[str, dict[int, list[Any]]] = {"holds": {}, "bookings": {}, "blocked": {}}
    for kind, found in (("holds", holds), ("bookings", bookings), ("blocked", blocked)):
        for r in found:
            by_show[kind].setdefault(r["show_id"], []).append(r)
    return [
        ShowRecord(
            show_id=row["id"],
            show_date=row["starts_at"].astimezone(UTC).date(),
            starts_at=row["starts_at"].timestamp(),
            layout=layouts[row["screen_id"]],
            prices={str(k): int(v) for k, v in row["prices"].items()},
            currency=row["currency"],
            status=row["status"],
            version=row["seat_version"],
            sale_opens_at=row["sale_opens_at"].timestamp() if row["sale_opens_at"] else None,
            holds=tuple(_hold(r) for r in by_show["holds"].get(row["id"], ())),
            bookings=tuple(_booking(r) for r in by_show["bookings"].get(row["id"], ())),
            blocked=tuple(r["seat"] for r in by_show["blocked"].get(row["id"], ())),
        )
        for row in rows
    ]


def _json(value: Any) -> Any:
    return value if isinstance(value, dict) else json.loads(value)


def _hold(row: Any) -> Hold:
    return Hold(
        hold_id=str(row["hold_id"]),
        user_id=str(row["user_id"]),
        seats=tuple(row["seats"]),
        price_cents=row["price_cents"],
        expires_at=row["expires_at"].timestamp(),
        created_at=row["created_at"].timestamp(),
        payment_started=row["payment_started"],
        price_arm=row["price_arm"],
    )


def _booking(row: Any) -> Booking:
    return Booking(
        booking_id=str(row["booking_id"]),
        hold_id=str(row["hold_id"]),
        user_id=str(row["user_id"]),
        seats=tuple(row["seats"]),
        price_cents=row["price_cents"],
        confirmed_at=row["confirmed_at"].timestamp(),
        price_arm=row["price_arm"],
    )


@dataclass
class _Coalesced:
    """The final state of everything one flush touches."""

    holds: dict[str, tuple[int, Hold, str, float | None]] = field(default_factory=dict)
    confirmed: dict[str, tuple[int, dt.date, str, Booking]] = field(default_factory=dict)
    cancelled: dict[str, tuple[dt.date, float]] = field(default_factory=dict)
    blocked: dict[tuple[int, str], bool] = field(default_factory=dict)
    statuses: dict[int, str] = field(default_factory=dict)
    versions: dict[int, int] = field(default_factory=dict)
    outbox: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class ShowBatch:
    """One show's events for a flush, with what the tables need to file them."""

    show_id: int
    show_date: dt.date
    currency: str
    events: Sequence[Event]


def _coalesce(batches: Iterable[ShowBatch]) -> _Coalesced:
    out = _Coalesced()
    for batch in batches:
        sid = batch.show_id
        for event in batch.events:
            out.versions[sid] = max(out.versions.get(sid, 0), event.version)
            _fold(out, batch, event)
    return out


def _fold(out: _Coalesced, batch: ShowBatch, event: Event) -> None:
    sid = batch.show_id
    if isinstance(event, HoldPlaced | HoldExtended | PaymentStarted):
        out.holds[event.hold.hold_id] = (sid, event.hold, "live", None)
    elif isinstance(event, HoldReleased):
        out.holds[event.hold.hold_id] = (sid, event.hold, event.reason, event.at)
    elif isinstance(event, BookingConfirmed):
        booking = event.booking
        previous = out.holds.get(booking.hold_id)
        if previous is not None:
            out.holds[booking.hold_id] = (sid, previous[1], "confirmed", event.at)
        else:
            out.holds[booking.hold_id] = (sid, _hold_of(booking, event.at), "confirmed", event.at)
        out.confirmed[booking.booking_id] = (sid, batch.show_date, batch.currency, booking)
        out.outbox.append(_message("booking.confirmed", sid, booking, event.at))
    elif isinstance(event, BookingCancelled):
        out.cancelled[event.booking.booking_id] = (batch.show_date, event.at)
        out.outbox.append(_message("booking.cancelled", sid, event.booking, event.at))
    elif isinstance(event, SeatsBlocked | SeatsUnblocked):
        for seat in event.seats:
            out.blocked[(sid, seat)] = isinstance(event, SeatsBlocked)
    elif isinstance(event, StatusChanged):
        out.statuses[sid] = event.status


def _hold_of(booking: Booking, at: float) -> Hold:
    """A hold row for a booking whose hold was written in an earlier flush (updated, not
    inserted: only status and ended_at change)."""
    return Hold(
        booking.hold_id,
        booking.user_id,
        booking.seats,
        booking.price_cents,
        at,
        at,
        price_arm=booking.price_arm,
    )


def _message(
    topic: str, show_id: int, booking: Booking, at: float
) -> tuple[str, str, dict[str, Any]]:
    payload = {
        "booking_id": booking.booking_id,
        "show_id": show_id,
        "user_id": booking.user_id,
        "seats": list(booking.seats),
        "price_cents": booking.price_cents,
        "at": at,
    }
    return topic, f"{topic}:{booking.booking_id}", payload


# The show's version moves on with them: seat maps that still show those seats held (the
# gateways' mirrors, the browsers) see a gap at the next delta and fetch a fresh snapshot.
_EXPIRE_LAPSED_HOLDS = """
WITH lapsed AS (
    UPDATE holds SET status = 'expired', ended_at = expires_at
    WHERE show_id = ANY($1::bigint[]) AND status = 'live' AND expires_at <= $2
    RETURNING show_id)
UPDATE shows SET seat_version = seat_version + 1 WHERE id IN (SELECT show_id FROM lapsed)"""

# A hold still live on a seat a confirmed booking has: only when something bypassed the show's
# one writer, or a confirmation was refused by the live-seat index after its hold was flushed.
_RELEASE_OUTBOOKED_HOLDS = """
WITH outbooked AS (
    UPDATE holds h SET status = 'released', ended_at = $2
    WHERE h.show_id = ANY($1::bigint[]) AND h.status = 'live'
      AND EXISTS (SELECT 1 FROM booking_seats b
                  WHERE b.show_id = h.show_id AND b.live AND b.seat = ANY(h.seats))
    RETURNING h.show_id, h.hold_id),
bumped AS (
    UPDATE shows SET seat_version = seat_version + 1
    WHERE id IN (SELECT show_id FROM outbooked))
SELECT show_id, hold_id FROM outbooked ORDER BY show_id, hold_id"""

# One statement for all the holds of a flush: columns travel as arrays. A hold's seats travel
# as a JSON array (text), since Postgres arrays of arrays must be rectangular.
_UPSERT_HOLDS = """
INSERT INTO holds (hold_id, show_id, user_id, seats, price_cents, status, payment_started,
                   created_at, expires_at, ended_at, price_arm)
SELECT v.hold_id, v.show_id, v.user_id, ARRAY(SELECT jsonb_array_elements_text(v.seats::jsonb)),
       v.price_cents, v.status, v.payment_started, v.created_at, v.expires_at, v.ended_at,
       v.price_arm
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::integer[], $6::text[],
            $7::boolean[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[])
     AS v(hold_id, show_id, user_id, seats, price_cents, status, payment_started, created_at,
          expires_at, ended_at, price_arm)
ON CONFLICT (hold_id) DO UPDATE SET status = EXCLUDED.status,
    payment_started = EXCLUDED.payment_started,
    expires_at = CASE WHEN EXCLUDED.status = 'confirmed' THEN holds.expires_at
                      ELSE EXCLUDED.expires_at END,
    ended_at = EXCLUDED.ended_at"""

_UPDATE_VERSIONS = """
UPDATE shows SET seat_version = greatest(shows.seat_version, v.version)
FROM unnest($1::bigint[], $2::bigint[]) AS v(id, version) WHERE shows.id = v.id"""

_UPSERT_HOLDS_AND_VERSIONS = f"""
WITH upserted AS ({_UPSERT_HOLDS} RETURNING 1)
UPDATE shows SET seat_version = greatest(shows.seat_version, v.version)
FROM unnest($12::bigint[], $13::bigint[]) AS v(id, version) WHERE shows.id = v.id"""

_INSERT_BOOKING = """
INSERT INTO bookings (booking_id, show_date, show_id, user_id, hold_id, seats, price_cents,
                      currency, status, confirmed_at, cancelled_at, price_arm)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"""

_INSERT_SEAT = """
INSERT INTO booking_seats (booking_id, show_date, show_id, seat, live)
VALUES ($1, $2, $3, $4, $5)"""


async def write_batch(conn: Any, batches: Sequence[ShowBatch]) -> None:
    """Write many shows' events in one transaction (the group commit of a flush).

    A flush of holds and releases only (the common case under load) is one statement: its own
    transaction, one round trip. Anything else (bookings, blocks, statuses) takes a transaction
    of several statements.
    """
    out = _coalesce(batches)
    if not (out.confirmed or out.cancelled or out.blocked or out.statuses or out.outbox):
        await conn.execute(
            _UPSERT_HOLDS_AND_VERSIONS,
            *_hold_columns(out),
            list(out.versions),
            list(out.versions.values()),
        )
        return
    async with conn.transaction():
        if out.holds:
            await conn.execute(_UPSERT_HOLDS, *_hold_columns(out))
        await _write_bookings(conn, out)
        await _write_rest(conn, out)


def _hold_columns(out: _Coalesced) -> list[list[Any]]:
    """The coalesced holds as the eleven column arrays of ``_UPSERT_HOLDS``."""
    rows = [
        (
            h.hold_id,
            sid,
            int(h.user_id),
            json.dumps(h.seats),
            h.price_cents,
            status,
            h.payment_started,
            to_time(h.created_at),
            to_time(h.expires_at),
            to_time(ended) if ended is not None else None,
            h.price_arm,
        )
        for sid, h, status, ended in out.holds.values()
    ]
    if not rows:
        return [[] for _ in range(11)]
    return [list(column) for column in zip(*rows, strict=True)]


async def _write_bookings(conn: Any, out: _Coalesced) -> None:
    # Cancellations of earlier bookings first: a seat they free may be sold again in this flush.
    earlier = [
        (uuid.UUID(bid), day, to_time(at))
        for bid, (day, at) in out.cancelled.items()
        if bid not in out.confirmed
    ]
    if earlier:
        await conn.executemany(
            """UPDATE bookings SET status = 'cancelled', cancelled_at = $3
               WHERE booking_id = $1 AND show_date = $2""",
            earlier,
        )
        await conn.executemany(
            """UPDATE booking_seats SET live = false
               WHERE booking_id = $1 AND show_date = $2""",
            [r[:2] for r in earlier],
        )
    if out.confirmed:
        rows: list[tuple[Any, ...]] = []
        seats: list[tuple[Any, ...]] = []
        for booking_id, (sid, day, currency, b) in out.confirmed.items():
            cancel = out.cancelled.get(booking_id)
            bid = uuid.UUID(booking_id)
            rows.append(
                (
                    bid,
                    day,
                    sid,
                    int(b.user_id),
                    uuid.UUID(b.hold_id),
                    list(b.seats),
                    b.price_cents,
                    currency,
                    "cancelled" if cancel else "confirmed",
                    to_time(b.confirmed_at),
                    to_time(cancel[1]) if cancel else None,
                    b.price_arm,
                )
            )
            seats.extend((bid, day, sid, seat, cancel is None) for seat in b.seats)
        await conn.executemany(_INSERT_BOOKING, rows)
        await conn.executemany(_INSERT_SEAT, seats)


async def _write_rest(conn: Any, out: _Coalesced) -> None:
    block = [key for key, on in out.blocked.items() if on]
    unblock = [key for key, on in out.blocked.items() if not on]
    if block:
        await conn.executemany(
            "INSERT INTO show_blocked_seats (show_id, seat) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            block,
        )
    if unblock:
        await conn.executemany(
            "DELETE FROM show_blocked_seats WHERE show_id = $1 AND seat = $2", unblock
        )
    if out.outbox:
        await conn.executemany(
            "INSERT INTO outbox (topic, dedup_key, payload) VALUES ($1, $2, $3) "
            "ON CONFLICT (dedup_key) DO NOTHING",
            out.outbox,
        )
    for sid, status in out.statuses.items():
        await conn.execute("UPDATE shows SET status = $2 WHERE id = $1", sid, status)
    if out.versions:
        await conn.execute(_UPDATE_VERSIONS, list(out.versions), list(out.versions.values()))
