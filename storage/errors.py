"""Errors of the storage layer and the catalog.

    StorageError
     ├── DatabaseUnavailable       Postgres cannot be reached
     ├── RedisUnavailable          Redis cannot be reached
     ├── MigrationError            a migration failed or the files are inconsistent
     └── CatalogError              a catalog change refused by a rule
          ├── NotFound             no such city, theater, screen, movie or show
          ├── AlreadyExists        a name already taken (a theater in its city, …)
          ├── InvalidLayout        a seat layout that cannot be drawn or sold
          │    ├── DuplicateSeatLabel
          │    └── CompanionWithoutWheelchairSpace
          ├── InvalidTimeZone      not an IANA time zone name
          ├── ShowOverlap          a show overlapping another on the same screen
          ├── ShowInPast           a show starting before now
          ├── MissingPrice         no price for a seat category the screen has
          └── InvalidCatalogData   anything else malformed (negative runtime, unknown status, …)

Every error has a stable machine-readable ``code`` and a ``details`` dict; they are plain
exceptions and survive pickling, so Ray can carry them between processes.
"""

from __future__ import annotations

from typing import Any


class StorageError(Exception):
    code = "storage_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.details))


class DatabaseUnavailable(StorageError):
    code = "database_unavailable"


class RedisUnavailable(StorageError):
    code = "redis_unavailable"


class MigrationError(StorageError):
    code = "migration_failed"


class CatalogError(StorageError):
    code = "catalog_error"


class NotFound(CatalogError):
    code = "not_found"


class AlreadyExists(CatalogError):
    code = "already_exists"


class InvalidLayout(CatalogError):
    code = "invalid_layout"


class DuplicateSeatLabel(InvalidLayout):
    code = "duplicate_seat_label"


class CompanionWithoutWheelchairSpace(InvalidLayout):
    code = "companion_without_wheelchair_space"


class InvalidTimeZone(CatalogError):
    code = "invalid_time_zone"


class ShowOverlap(CatalogError):
    code = "show_overlap"


class ShowInPast(CatalogError):
    code = "show_in_past"


class MissingPrice(CatalogError):
    code = "missing_price"


class InvalidCatalogData(CatalogError):
    code = "invalid_catalog_data"
