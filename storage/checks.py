"""Checks and error translation shared by the catalog's admin modules."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import asyncpg

from storage.errors import (
    AlreadyExists,
    InvalidCatalogData,
    NotFound,
)


def _instant(value: object, field: str) -> dt.datetime:
    """An aware datetime whose wall time exists (not skipped by a clock change), in UTC.

    UTC because Python adds and compares datetimes sharing a tzinfo by wall time: 00:30 plus
    three hours on the night New York falls back would otherwise be an hour too late.
    """
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise InvalidCatalogData(f"{field} must be a datetime with a time zone", {"field": field})
    wall = value.replace(tzinfo=None)
    if value.astimezone(dt.UTC).astimezone(value.tzinfo).replace(tzinfo=None) != wall:
        raise InvalidCatalogData(
            f"{field} {wall.isoformat()} does not exist in {value.tzinfo}: the clocks skip it",
            {"field": field},
        )
    return value.astimezone(dt.UTC)


def _text(value: object, field: str, *, blank: bool = False) -> str:
    if not isinstance(value, str) or not (blank or value.strip()):
        raise InvalidCatalogData(
            f"{field} must be a {'' if blank else 'non-empty '}string", {"field": field}
        )
    return value


def _not_found(entity: str, entity_id: int) -> NotFound:
    return NotFound(f"no {entity} {entity_id}", {"entity": entity, "id": entity_id})


@contextlib.contextmanager
def _constraints(parent: tuple[str, int] | None = None) -> Iterator[None]:
    """Translate constraint violations into catalog errors; ``parent`` names the row a
    foreign key points at (the city of a new theater, …)."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists(
            f"already exists: {exc.detail}", {"constraint": exc.constraint_name}
        ) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        entity, entity_id = parent or ("row", 0)
        raise _not_found(entity, entity_id) from exc
    except asyncpg.CheckViolationError as exc:
        raise InvalidCatalogData(
            f"refused by the rule {exc.constraint_name}", {"constraint": exc.constraint_name}
        ) from exc


async def _lock_movie(conn: Any, movie_id: int, mode: str) -> int:
    runtime: int | None = await conn.fetchval(
        f"SELECT runtime_min FROM movies WHERE id = $1 {mode}", movie_id
    )
    if runtime is None:
        raise _not_found("movie", movie_id)
    return runtime
