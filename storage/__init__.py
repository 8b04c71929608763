"""Storage: the asyncpg pool, SQL migrations, repositories, the Redis client and the embedded
servers. It imports nothing of ours; everything above it (actors, gateway, payments, ml) may
import it, through the names listed here."""

from storage.db import connect, create_pool
from storage.embedded import EmbeddedServer, start_postgres, start_redis
from storage.errors import (
    CatalogError,
    CompanionWithoutWheelchairSpace,
    DatabaseUnavailable,
    DuplicateSeatLabel,
    InvalidCatalogData,
    InvalidLayout,
    InvalidTimeZone,
    MigrationError,
    MissingPrice,
    NotFound,
    RedisUnavailable,
    ShowInPast,
    ShowOverlap,
    StorageError,
)
from storage.migrations import load_migrations, migrate
from storage.partitions import ensure_partitions, ensure_partitions_ahead
from storage.redis import create_redis

__all__ = [
    "CatalogError",
    "CompanionWithoutWheelchairSpace",
    "DatabaseUnavailable",
    "DuplicateSeatLabel",
    "EmbeddedServer",
    "InvalidCatalogData",
    "InvalidLayout",
    "InvalidTimeZone",
    "MigrationError",
    "MissingPrice",
    "NotFound",
    "RedisUnavailable",
    "ShowInPast",
    "ShowOverlap",
    "StorageError",
    "connect",
    "create_pool",
    "create_redis",
    "ensure_partitions",
    "ensure_partitions_ahead",
    "load_migrations",
    "migrate",
    "start_postgres",
    "start_redis",
]
