"""Numbered SQL migrations, applied in order, each once, each in its own transaction.

Files live in ``storage/migrations/NNNN_name.sql``. Applied versions are recorded in
``schema_migrations`` with a checksum, so an edited migration is caught instead of silently
skipped. A Postgres advisory lock keeps two processes from migrating at the same time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from storage.errors import MigrationError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x5EA75E7  # advisory lock id for migrations


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """All migration files shipped with the package, in version order."""
    found: list[Migration] = []
    for entry in resources.files("storage").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(
            "migrations must be numbered 0001, 0002, … without gaps", {"versions": versions}
        )
    return found


async def migrate(conn: Any) -> list[int]:
    """Apply every pending migration on ``conn``'s schema; returns the versions applied.

    >>> applied = await migrate(conn)   # [] when the schema is up to date
    """
    schema = await conn.fetchval("SELECT current_schema()")
    if schema is None:
        raise MigrationError("the connection's search_path names no existing schema")
    await conn.execute("SELECT pg_advisory_lock($1, hashtext(current_schema()))", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        done: list[int] = []
        for migration in load_migrations():
            recorded = applied.get(migration.version)
            if recorded is not None:
                if recorded != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed "
                        "after it was applied; add a new migration instead",
                        {"version": migration.version},
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, hashtext(current_schema()))", _LOCK_KEY)
