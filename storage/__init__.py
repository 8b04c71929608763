"""Storage: the asyncpg pool, SQL migrations, repositories, the Redis client and the embedded
servers. It imports nothing of ours; everything above it (actors, gateway, payments, ml) may
import it, through the names listed here."""

from storage.admin import (
    create_city,
    create_movie,
    create_screen,
    create_theater,
    update_movie,
    update_screen_layout,
    update_theater,
)
from storage.catalog import (
    get_show,
    get_theater,
    list_cities,
    movies_playing,
    shows_of_movie,
    theater_shows,
)
from storage.db import connect, create_pool
from storage.demo import ADMIN_EMAIL, DEMO_PASSWORD, DemoReport, build_layout, generate_demo_data
from storage.embedded import EmbeddedServer, start_postgres, start_redis
from storage.errors import (
    AlreadyExists,
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
from storage.layouts import MAX_SEATS, SEAT_CATEGORIES, LayoutSummary, validate_layout
from storage.migrations import load_migrations, migrate
from storage.models import (
    SHOW_STATUSES,
    City,
    MoviePlaying,
    ScheduleEntry,
    ShowDetails,
    Showtime,
    Theater,
    TheaterShows,
)
from storage.partitions import ensure_partitions, ensure_partitions_ahead
from storage.redis import create_redis
from storage.scheduling import MAX_CLEANING_GAP, create_show, update_show

__all__ = [
    "ADMIN_EMAIL",
    "DEMO_PASSWORD",
    "DemoReport",
    "build_layout",
    "generate_demo_data",
    "AlreadyExists",
    "CatalogError",
    "City",
    "CompanionWithoutWheelchairSpace",
    "DatabaseUnavailable",
    "DuplicateSeatLabel",
    "EmbeddedServer",
    "InvalidCatalogData",
    "InvalidLayout",
    "InvalidTimeZone",
    "LayoutSummary",
    "MAX_CLEANING_GAP",
    "MAX_SEATS",
    "MigrationError",
    "MissingPrice",
    "MoviePlaying",
    "NotFound",
    "RedisUnavailable",
    "SEAT_CATEGORIES",
    "SHOW_STATUSES",
    "ScheduleEntry",
    "ShowDetails",
    "ShowInPast",
    "ShowOverlap",
    "Showtime",
    "StorageError",
    "Theater",
    "TheaterShows",
    "connect",
    "create_city",
    "create_movie",
    "create_pool",
    "create_redis",
    "create_screen",
    "create_show",
    "create_theater",
    "ensure_partitions",
    "ensure_partitions_ahead",
    "get_show",
    "get_theater",
    "list_cities",
    "load_migrations",
    "migrate",
    "movies_playing",
    "shows_of_movie",
    "start_postgres",
    "start_redis",
    "theater_shows",
    "update_movie",
    "update_screen_layout",
    "update_show",
    "update_theater",
    "validate_layout",
]
