"""Bulk loading into the connection's schema: refusal of a schema that already holds data,
COPY of prepared rows, and the identity sequences moved past the ids written explicitly."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from storage.errors import InvalidCatalogData

# Tables that make a schema "not empty"; the ones emptied by ``replace`` (children first).
DATA_TABLES = (
    "cities",
    "theaters",
    "screens",
    "movies",
    "shows",
    "users",
    "bookings",
    "booking_seats",
    "holds",
)
_EMPTIED = (
    "refresh_tokens",
    "theater_admins",
    "holds",
    "show_blocked_seats",
    "booking_seats",
    "bookings",
    "payments",
    "outbox",
    "idempotency_keys",
    "shows",
    "screens",
    "theaters",
    "movies",
    "users",
    "cities",
)
_IDENTITY_TABLES = ("cities", "theaters", "screens", "movies", "shows", "users")

COLUMNS = {
    "cities": ("id", "name", "country"),
    "theaters": (
        "id",
        "city_id",
        "name",
        "address",
        "time_zone",
        "latitude",
        "longitude",
        "created_at",
    ),
    "screens": ("id", "theater_id", "name", "layout", "seat_count", "categories"),
    "movies": (
        "id",
        "title",
        "genres",
        "runtime_min",
        "certificate",
        "language",
        "release_date",
        "cast_members",
        "synopsis",
    ),
    "shows": (
        "id",
        "screen_id",
        "movie_id",
        "starts_at",
        "busy_until",
        "prices",
        "currency",
        "status",
        "sale_opens_at",
        "seat_version",
        "created_at",
    ),
    "users": (
        "id",
        "email_enc",
        "email_index",
        "pii_key",
        "password_hash",
        "role",
        "display_name",
        "home_city_id",
        "created_at",
    ),
    "theater_admins": ("user_id", "theater_id"),
    "bookings": (
        "booking_id",
        "show_date",
        "show_id",
        "user_id",
        "hold_id",
        "seats",
        "price_cents",
        "currency",
        "status",
        "confirmed_at",
        "cancelled_at",
    ),
    "booking_seats": ("booking_id", "show_date", "show_id", "seat", "live"),
}
# Tables with jsonb columns go through text COPY: asyncpg's binary COPY has no jsonb encoder
# once the connection decodes json to Python values.
_TEXT_COPY = {"screens", "shows"}


async def prepare_schema(conn: Any, *, replace: bool) -> None:
    """Refuse a schema that already holds data, or empty it when ``replace`` is set."""
    filled = [t for t in DATA_TABLES if await conn.fetchval(f"SELECT EXISTS (SELECT FROM {t})")]
    if filled and not replace:
        raise InvalidCatalogData(
            "the schema already holds data; demo data goes into an empty schema "
            "(or pass replace=True to empty it first)",
            {"tables": filled},
        )
    if filled:
        await conn.execute(f"TRUNCATE {', '.join(_EMPTIED)} RESTART IDENTITY CASCADE")


async def copy_rows(conn: Any, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """COPY ``rows`` (tuples in the order of COLUMNS[table]) into ``table``."""
    if not rows:
        return
    columns = COLUMNS[table]
    if table in _TEXT_COPY:
        data = "".join(_text_line(row) for row in rows).encode()
        await conn.copy_to_table(table, source=io.BytesIO(data), columns=columns, format="text")
    else:
        await conn.copy_records_to_table(table, records=rows, columns=columns)


class Writer:
    """Buffers rows per table and COPYs them in batches, one batch in flight while the caller
    prepares the next (Postgres works on one while Python builds the other)."""

    def __init__(self, conn: Any, *, batch_rows: int = 50_000) -> None:
        self.conn = conn
        self.batch_rows = batch_rows
        self.counts: Counter[str] = Counter()  # rows written so far, per table
        self._buffers: dict[str, list[tuple[Any, ...]]] = {}
        self._pending: asyncio.Task[None] | None = None

    async def add(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        self._buffers.setdefault(table, []).extend(rows)
        if len(self._buffers[table]) >= self.batch_rows:
            await self._send()

    async def close(self) -> None:
        """Write everything still buffered and wait for it."""
        await self._send()
        await self._wait()

    async def abort(self) -> None:
        """Stop a batch in flight (the caller's transaction is failing anyway)."""
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pending
            self._pending = None

    async def _send(self) -> None:
        await self._wait()
        batch, self._buffers = self._buffers, {}
        self._pending = asyncio.create_task(self._copy(batch))

    async def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def _copy(self, batch: dict[str, list[tuple[Any, ...]]]) -> None:
        for table, rows in batch.items():
            await copy_rows(self.conn, table, rows)
            self.counts[table] += len(rows)


async def finish(conn: Any) -> None:
    """Move the identity sequences past the loaded ids and refresh the planner's statistics."""
    for table in _IDENTITY_TABLES:
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
        )
    await conn.execute(f"ANALYZE {', '.join(COLUMNS)}")


def _text_line(row: Iterable[Any]) -> str:
    return "\t".join(_text(value) for value in row) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _array(values: list[Any]) -> str:
    items = ('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return _escape("{" + ",".join(items) + "}")


def _json(value: Any) -> str:
    return _escape(json.dumps(value, separators=(",", ":")))


# How each Python type is written in COPY's text format (a str is taken as is: pass JSON for a
# jsonb column as text to skip encoding it again).
_FORMATS: dict[type, Callable[[Any], str]] = {
    type(None): lambda _: "\\N",
    bool: lambda v: "t" if v else "f",
    int: str,
    float: repr,
    str: _escape,
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    dict: _json,
    list: _array,
}


def _text(value: Any) -> str:
    """One value in COPY's text format."""
    return _FORMATS[type(value)](value)
