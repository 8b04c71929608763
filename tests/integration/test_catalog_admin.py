"""The catalog through its admin operations and read queries, on a real Postgres."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

import storage
from storage.errors import (
    AlreadyExists,
    CompanionWithoutWheelchairSpace,
    DuplicateSeatLabel,
    InvalidCatalogData,
    InvalidTimeZone,
    MissingPrice,
    NotFound,
    ShowInPast,
    ShowOverlap,
)

NEW_YORK = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
TOKYO = ZoneInfo("Asia/Tokyo")
DAY = dt.date(2026, 12, 5)
NOW = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
STANDARD = {"standard": 1200}
ALL_PRICES = {"standard": 1200, "premium": 1800, "wheelchair": 1200, "companion": 1200}


def seat(label: str, category: str = "standard", **flags: bool) -> dict[str, Any]:
    return {"label": label, "category": category, "x": float(label[1:]), "y": 0.0, **flags}


def layout(*rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rows": [{"label": seats[0]["label"][0], "seats": seats} for seats in rows]}


ACCESSIBLE = layout(
    [seat("A1", "wheelchair"), seat("A2", "companion", aisle_after=True), seat("A3"), seat("A4")],
    [seat("B1", "premium"), seat("B2", "premium")],
) | {"sweet_spot": {"x": 2.0, "y": 6.0}}
PLAIN = layout([seat("A1"), seat("A2"), seat("A3")])


@dataclass
class Catalog:
    columbus: int
    tokyo: int
    riverside: int  # America/New_York
    phenix: int  # America/Chicago, same city
    hibiya: int  # Asia/Tokyo
    river_1: int  # ACCESSIBLE
    river_2: int
    phenix_a: int
    hibiya_imax: int
    arrival: int  # 116 min
    brazil: int  # 132 min
    casablanca: int  # 102 min


async def new_movie(conn: Any, title: str, runtime_min: int) -> int:
    return await storage.create_movie(
        conn,
        title=title,
        genres=["Drama"],
        runtime_min=runtime_min,
        certificate="PG-13",
        language="English",
        release_date=dt.date(2026, 1, 1),
        cast_members=["A. Actor"],
        synopsis="",
    )


async def show(conn: Any, screen: int, movie: int, starts_at: dt.datetime, **kw: Any) -> int:
    """A show priced for the PLAIN layout unless ``prices`` says otherwise, created at NOW."""
    kw = {"prices": STANDARD, "now": NOW} | kw
    return await storage.create_show(
        conn, screen_id=screen, movie_id=movie, starts_at=starts_at, **kw
    )


def local(zone: ZoneInfo, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), zone)


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> Any:
    async with pool.acquire() as connection:
        yield connection


@pytest.fixture
async def cat(conn: Any) -> Catalog:
    columbus = await storage.create_city(conn, "Columbus", "US")
    tokyo = await storage.create_city(conn, "Tokyo", "JP")
    riverside = await storage.create_theater(conn, columbus, "Riverside", "America/New_York")
    phenix = await storage.create_theater(conn, columbus, "Phenix Plaza", "America/Chicago")
    hibiya = await storage.create_theater(
        conn, tokyo, "Hibiya", "Asia/Tokyo", address="1 Yurakucho"
    )
    return Catalog(
        columbus,
        tokyo,
        riverside,
        phenix,
        hibiya,
        river_1=await storage.create_screen(conn, riverside, "1", ACCESSIBLE),
        river_2=await storage.create_screen(conn, riverside, "2", PLAIN),
        phenix_a=await storage.create_screen(conn, phenix, "A", PLAIN),
        hibiya_imax=await storage.create_screen(conn, hibiya, "IMAX", PLAIN),
        arrival=await new_movie(conn, "Arrival", 116),
        brazil=await new_movie(conn, "Brazil", 132),
        casablanca=await new_movie(conn, "Casablanca", 102),
    )


@pytest.fixture
async def day_shows(conn: Any, cat: Catalog) -> dict[str, int]:
    """A Saturday of shows; the ones near midnight test the theaters' local dates."""
    prev, nxt = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)
    r1 = {"prices": ALL_PRICES}
    cancelled = await show(conn, cat.phenix_a, cat.casablanca, local(CHICAGO, DAY, 20))
    await storage.update_show(conn, cancelled, now=NOW, status="cancelled")
    return {
        "river_noon": await show(conn, cat.river_1, cat.arrival, local(NEW_YORK, DAY, 12), **r1),
        "river_16": await show(conn, cat.river_1, cat.arrival, local(NEW_YORK, DAY, 16), **r1),
        "river_21": await show(conn, cat.river_1, cat.casablanca, local(NEW_YORK, DAY, 21), **r1),
        "river_1830": await show(conn, cat.river_2, cat.brazil, local(NEW_YORK, DAY, 18, 30)),
        "river_2330": await show(conn, cat.river_2, cat.arrival, local(NEW_YORK, DAY, 23, 30)),
        "river_day_before": await show(conn, cat.river_2, cat.brazil, local(NEW_YORK, prev, 23)),
        "phenix_2330": await show(conn, cat.phenix_a, cat.arrival, local(CHICAGO, DAY, 23, 30)),
        "phenix_next_day": await show(conn, cat.phenix_a, cat.brazil, local(CHICAGO, nxt, 2)),
        "hibiya_10": await show(conn, cat.hibiya_imax, cat.arrival, local(TOKYO, DAY, 10)),
        "cancelled": cancelled,
    }


async def test_movies_playing_counts_shows_on_each_theaters_local_day(
    conn: Any, cat: Catalog, day_shows: dict[str, int]
) -> None:
    playing = await storage.movies_playing(conn, cat.columbus, DAY)
    assert [(m.title, m.show_count, m.first_start.isoformat()) for m in playing] == [
        ("Arrival", 4, "2026-12-05T12:00:00-05:00"),
        ("Brazil", 1, "2026-12-05T18:30:00-05:00"),
        ("Casablanca", 1, "2026-12-05T21:00:00-05:00"),
    ]
    assert playing[0].genres == ("Drama",) and playing[0].runtime_min == 116
    tokyo = await storage.movies_playing(conn, cat.tokyo, DAY)
    assert [(m.title, m.first_start.isoformat()) for m in tokyo] == [
        ("Arrival", "2026-12-05T10:00:00+09:00")
    ]
    assert await storage.movies_playing(conn, cat.columbus, dt.date(2026, 12, 7)) == []


async def test_shows_of_movie_grouped_by_theater(
    conn: Any, cat: Catalog, day_shows: dict[str, int]
) -> None:
    grouped = await storage.shows_of_movie(conn, cat.arrival, cat.columbus, DAY)
    assert [
        (g.theater_name, g.time_zone, [(s.screen_name, s.starts_at.isoformat()) for s in g.shows])
        for g in grouped
    ] == [
        ("Phenix Plaza", "America/Chicago", [("A", "2026-12-05T23:30:00-06:00")]),
        (
            "Riverside",
            "America/New_York",
            [
                ("1", "2026-12-05T12:00:00-05:00"),
                ("1", "2026-12-05T16:00:00-05:00"),
                ("2", "2026-12-05T23:30:00-05:00"),
            ],
        ),
    ]
    first = grouped[1].shows[0]
    assert (first.show_id, first.screen_id, first.status, first.prices) == (
        day_shows["river_noon"],
        cat.river_1,
        "scheduled",
        ALL_PRICES,
    )


async def test_theater_shows_lists_the_local_day_with_ends(
    conn: Any, cat: Catalog, day_shows: dict[str, int]
) -> None:
    day = await storage.theater_shows(conn, cat.riverside, DAY)
    assert [
        (e.movie_title, e.screen_name, e.starts_at.isoformat(), e.ends_at.isoformat()) for e in day
    ] == [
        ("Arrival", "1", "2026-12-05T12:00:00-05:00", "2026-12-05T13:56:00-05:00"),
        ("Arrival", "1", "2026-12-05T16:00:00-05:00", "2026-12-05T17:56:00-05:00"),
        ("Brazil", "2", "2026-12-05T18:30:00-05:00", "2026-12-05T20:42:00-05:00"),
        ("Casablanca", "1", "2026-12-05T21:00:00-05:00", "2026-12-05T22:42:00-05:00"),
        ("Arrival", "2", "2026-12-05T23:30:00-05:00", "2026-12-06T01:26:00-05:00"),
    ]
    assert [e.show_id for e in await storage.theater_shows(conn, cat.phenix, DAY)] == [
        day_shows["phenix_2330"]
    ]


async def test_get_show_get_theater_and_cities(
    conn: Any, cat: Catalog, day_shows: dict[str, int]
) -> None:
    details = await storage.get_show(conn, day_shows["hibiya_10"])
    assert (details.theater_name, details.screen_name, details.movie_title) == (
        "Hibiya",
        "IMAX",
        "Arrival",
    )
    assert details.starts_at.isoformat() == "2026-12-05T10:00:00+09:00"
    assert details.ends_at.isoformat() == "2026-12-05T11:56:00+09:00"
    assert (details.layout, details.prices, details.currency, details.status) == (
        PLAIN,
        STANDARD,
        "USD",
        "scheduled",
    )
    assert (await storage.get_show(conn, day_shows["cancelled"])).status == "cancelled"
    theater = await storage.get_theater(conn, cat.hibiya)
    assert (theater.name, theater.city_id, theater.time_zone, theater.address) == (
        "Hibiya",
        cat.tokyo,
        "Asia/Tokyo",
        "1 Yurakucho",
    )
    assert [(c.name, c.country) for c in await storage.list_cities(conn)] == [
        ("Tokyo", "JP"),
        ("Columbus", "US"),
    ]
    with pytest.raises(NotFound):
        await storage.get_show(conn, 10**9)
    with pytest.raises(NotFound):
        await storage.get_theater(conn, 10**9)


async def test_create_show_makes_the_booking_partitions(conn: Any, cat: Catalog) -> None:
    await show(conn, cat.river_2, cat.brazil, local(NEW_YORK, dt.date(2027, 2, 28), 22))
    # 22:00 in New York is already March 1st in UTC, the bookings' partition key
    assert await conn.fetchval("SELECT to_regclass('bookings_2027_03') IS NOT NULL")
    assert await conn.fetchval("SELECT to_regclass('bookings_2027_02') IS NULL")


async def test_layout_rules_are_enforced_on_screens(conn: Any, cat: Catalog) -> None:
    with pytest.raises(DuplicateSeatLabel) as caught:
        await storage.create_screen(conn, cat.riverside, "3", layout([seat("A1"), seat("A1")]))
    assert caught.value.details["labels"] == ["A1"]
    with pytest.raises(CompanionWithoutWheelchairSpace):
        await storage.create_screen(conn, cat.riverside, "3", layout([seat("A1", "companion")]))
    aisle = layout([seat("A1", "wheelchair", aisle_after=True), seat("A2", "companion")])
    with pytest.raises(CompanionWithoutWheelchairSpace) as caught:
        await storage.create_screen(conn, cat.riverside, "3", aisle)
    assert caught.value.details == {"labels": ["A2"]}
    with pytest.raises(CompanionWithoutWheelchairSpace):
        await storage.update_screen_layout(conn, cat.river_2, aisle)
    assert (
        await conn.fetchval("SELECT count(*) FROM screens WHERE theater_id = $1", cat.riverside)
        == 2
    )


async def test_a_show_overlapping_another_on_its_screen_is_refused(conn: Any, cat: Catalog) -> None:
    noon = await show(conn, cat.river_2, cat.arrival, local(NEW_YORK, DAY, 12))
    # Arrival runs 116 min + a 20 min cleaning gap: the screen is busy until 14:16.
    with pytest.raises(ShowOverlap) as caught:
        await show(conn, cat.river_2, cat.brazil, local(NEW_YORK, DAY, 14, 15))
    assert caught.value.details == {"other_show_id": noon, "screen_id": cat.river_2}
    with pytest.raises(ShowOverlap):  # Brazil 132 + 20 min would run into noon
        await show(conn, cat.river_2, cat.brazil, local(NEW_YORK, DAY, 9, 29))
    await show(conn, cat.river_2, cat.brazil, local(NEW_YORK, DAY, 9, 28))
    at_busy_until = await show(conn, cat.river_2, cat.brazil, local(NEW_YORK, DAY, 14, 16))
    await show(conn, cat.river_1, cat.brazil, local(NEW_YORK, DAY, 12), prices=ALL_PRICES)
    await storage.update_show(conn, at_busy_until, now=NOW, status="cancelled")
    await show(conn, cat.river_2, cat.casablanca, local(NEW_YORK, DAY, 15))  # frees the slot
    with pytest.raises(ShowOverlap):  # and a cancelled show cannot come back into it
        await storage.update_show(conn, at_busy_until, now=NOW, status="on_sale")


async def test_show_changes_recheck_overlap_and_past(conn: Any, cat: Catalog) -> None:
    first = await show(conn, cat.river_2, cat.casablanca, local(NEW_YORK, DAY, 12))
    second = await show(conn, cat.river_2, cat.casablanca, local(NEW_YORK, DAY, 14, 2))
    with pytest.raises(ShowOverlap):  # Brazil is 30 min longer than Casablanca
        await storage.update_show(conn, first, now=NOW, movie_id=cat.brazil)
    with pytest.raises(ShowOverlap):
        await storage.update_show(conn, second, now=NOW, starts_at=local(NEW_YORK, DAY, 14, 1))
    with pytest.raises(ShowInPast):
        await storage.update_show(conn, second, now=NOW, starts_at=NOW - dt.timedelta(hours=1))
    await storage.update_show(
        conn,
        second,
        now=NOW,
        starts_at=local(NEW_YORK, DAY, 15),
        prices={"standard": 1500},
        status="on_sale",
    )
    await storage.update_show(conn, first, now=NOW, movie_id=cat.brazil)
    details = await storage.get_show(conn, second)
    assert (details.starts_at.isoformat(), details.prices, details.status) == (
        "2026-12-05T15:00:00-05:00",
        {"standard": 1500},
        "on_sale",
    )
    assert (await storage.get_show(conn, first)).movie_title == "Brazil"


async def test_show_refusals(conn: Any, cat: Catalog) -> None:
    start = local(NEW_YORK, DAY, 12)
    with pytest.raises(ShowInPast):
        await show(conn, cat.river_2, cat.arrival, NOW)
    with pytest.raises(InvalidCatalogData):
        await show(conn, cat.river_2, cat.arrival, start.replace(tzinfo=None))
    with pytest.raises(MissingPrice) as caught:
        await show(conn, cat.river_1, cat.arrival, start, prices={"standard": 1200})
    assert caught.value.details == {"missing": ["companion", "premium", "wheelchair"]}
    for prices in ({"standard": 1200, "premium": 1800}, {"standard": 0}, {"standard": 12.5}):
        with pytest.raises(InvalidCatalogData):
            await show(conn, cat.river_2, cat.arrival, start, prices=prices)
    with pytest.raises(InvalidCatalogData):
        await show(conn, cat.river_2, cat.arrival, start, status="sold_out")
    with pytest.raises(NotFound) as caught:
        await show(conn, 10**9, cat.arrival, start)
    assert caught.value.details == {"entity": "screen", "id": 10**9}
    with pytest.raises(NotFound):
        await show(conn, cat.river_2, 10**9, start)
    with pytest.raises(NotFound):
        await storage.update_show(conn, 10**9, now=NOW, status="on_sale")
    assert await conn.fetchval("SELECT count(*) FROM shows") == 0


async def test_catalog_refusals(conn: Any, cat: Catalog) -> None:
    for zone in ("Mars/Olympus_Mons", "EST+5", "", "../../etc/passwd"):
        with pytest.raises(InvalidTimeZone):
            await storage.create_theater(conn, cat.columbus, "Nowhere", zone)
    with pytest.raises(InvalidTimeZone):
        await storage.update_theater(conn, cat.riverside, time_zone="Eastern")
    with pytest.raises(AlreadyExists):  # the name is taken in that city
        await storage.create_theater(conn, cat.columbus, "Riverside", "America/New_York")
    with pytest.raises(AlreadyExists):
        await storage.update_theater(conn, cat.phenix, name="Riverside")
    with pytest.raises(AlreadyExists):
        await storage.create_screen(conn, cat.riverside, "1", PLAIN)
    with pytest.raises(NotFound) as caught:
        await storage.create_theater(conn, 10**9, "Nowhere", "UTC")
    assert caught.value.details == {"entity": "city", "id": 10**9}
    with pytest.raises(NotFound):
        await storage.create_screen(conn, 10**9, "1", PLAIN)
    with pytest.raises(NotFound):
        await storage.update_theater(conn, 10**9, name="Nowhere")
    with pytest.raises(NotFound):
        await storage.update_movie(conn, 10**9, title="Nothing")
    with pytest.raises(InvalidCatalogData):
        await storage.update_movie(conn, cat.arrival, director="Villeneuve")
    with pytest.raises(InvalidCatalogData):
        await new_movie(conn, "Too Long", 601)
    await storage.update_theater(conn, cat.phenix, name="Phenix", time_zone="America/Chicago")
    assert (await storage.get_theater(conn, cat.phenix)).name == "Phenix"


async def test_local_times_across_the_end_of_daylight_saving(conn: Any, cat: Catalog) -> None:
    eve, day = dt.date(2026, 10, 31), dt.date(2026, 11, 1)  # New York falls back on Nov 1
    a = await show(conn, cat.river_2, cat.arrival, local(NEW_YORK, eve, 19))
    b = await show(conn, cat.river_2, cat.arrival, local(NEW_YORK, day, 19))
    instants = [await conn.fetchval("SELECT starts_at FROM shows WHERE id = $1", i) for i in (a, b)]
    assert instants[1] - instants[0] == dt.timedelta(hours=25)
    assert [
        e.starts_at.isoformat() for e in await storage.theater_shows(conn, cat.riverside, eve)
    ] == ["2026-10-31T19:00:00-04:00"]
    assert [
        e.starts_at.isoformat() for e in await storage.theater_shows(conn, cat.riverside, day)
    ] == ["2026-11-01T19:00:00-05:00"]


async def test_ambiguous_and_skipped_local_times(conn: Any, cat: Catalog) -> None:
    """01:30 happens twice on 2026-11-01 in New York: fold=0 is the first (daylight) one,
    fold=1 the second. 02:30 on 2027-03-14 never happens there and is refused."""
    night = dt.datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)
    await show(conn, cat.river_2, cat.casablanca, night)
    await show(conn, cat.river_1, cat.casablanca, night.replace(fold=1), prices=ALL_PRICES)
    answered = await storage.theater_shows(conn, cat.riverside, night.date())
    assert [(e.screen_name, e.starts_at.isoformat()) for e in answered] == [
        ("2", "2026-11-01T01:30:00-04:00"),
        ("1", "2026-11-01T01:30:00-05:00"),
    ]
    assert answered[1].starts_at.timestamp() - answered[0].starts_at.timestamp() == 3600
    assert answered[0].ends_at.isoformat() == "2026-11-01T02:12:00-05:00"
    busy = await conn.fetch("SELECT busy_until - starts_at AS busy FROM shows")
    assert [r["busy"] for r in busy] == [dt.timedelta(minutes=102 + 20)] * 2
    with pytest.raises(InvalidCatalogData) as caught:
        await show(
            conn, cat.river_2, cat.casablanca, dt.datetime(2027, 3, 14, 2, 30, tzinfo=NEW_YORK)
        )
    assert caught.value.details == {"field": "starts_at"}


async def test_a_longer_runtime_moves_the_end_of_upcoming_shows(conn: Any, cat: Catalog) -> None:
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    now = soon - dt.timedelta(days=31)
    first = await show(conn, cat.river_2, cat.casablanca, soon, now=now)  # busy 122 min
    await show(conn, cat.river_2, cat.brazil, soon + dt.timedelta(minutes=130), now=now)
    with pytest.raises(ShowOverlap):
        await storage.update_movie(conn, cat.casablanca, runtime_min=111)
    await storage.update_movie(conn, cat.casablanca, runtime_min=110, title="Casablanca (restored)")
    busy_until = await conn.fetchval("SELECT busy_until FROM shows WHERE id = $1", first)
    assert busy_until == soon + dt.timedelta(minutes=130)
    assert (await storage.get_show(conn, first)).movie_title == "Casablanca (restored)"


async def test_a_cancelled_show_whose_movie_grew_can_change_movie(conn: Any, cat: Catalog) -> None:
    """Cancelled shows are not stretched with their movie's runtime; changing such a show's
    movie afterwards must still leave it ending after it starts (schemathesis found this)."""
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=40)
    now = soon - dt.timedelta(days=41)
    first = await show(conn, cat.river_2, cat.casablanca, soon, now=now)
    await storage.update_show(conn, first, now=now, status="cancelled")
    await storage.update_movie(conn, cat.casablanca, runtime_min=400)
    await storage.update_show(conn, first, now=now, movie_id=cat.arrival)
    row = await conn.fetchrow("SELECT starts_at, busy_until FROM shows WHERE id = $1", first)
    assert row["busy_until"] - row["starts_at"] >= dt.timedelta(minutes=116)


async def test_a_new_layout_category_needs_prices_on_upcoming_shows(
    conn: Any, cat: Catalog
) -> None:
    upcoming = await show(conn, cat.river_2, cat.arrival, local(NEW_YORK, DAY, 12))
    with pytest.raises(MissingPrice) as caught:
        await storage.update_screen_layout(conn, cat.river_2, ACCESSIBLE, now=NOW)
    assert caught.value.details == {
        "missing": ["companion", "premium", "wheelchair"],
        "show_ids": [upcoming],
    }
    with pytest.raises(InvalidCatalogData):
        await storage.update_screen_layout(
            conn, cat.river_2, ACCESSIBLE, now=NOW, new_prices={"recliner": 2500}
        )
    added = {"premium": 1800, "wheelchair": 1200, "companion": 1200, "standard": 999}
    await storage.update_screen_layout(conn, cat.river_2, ACCESSIBLE, now=NOW, new_prices=added)
    details = await storage.get_show(conn, upcoming)
    assert (details.layout, details.prices) == (ACCESSIBLE, ALL_PRICES)  # standard kept 1200
    await storage.update_screen_layout(conn, cat.river_2, PLAIN, now=NOW)
    assert (await storage.get_show(conn, upcoming)).prices == STANDARD
    assert await conn.fetchval("SELECT categories FROM screens WHERE id = $1", cat.river_2) == [
        "standard"
    ]


async def test_two_admins_racing_for_one_slot(pool: asyncpg.Pool, cat: Catalog) -> None:
    async def create(start: dt.datetime) -> int:
        async with pool.acquire() as conn:
            return await show(conn, cat.river_2, cat.arrival, start)

    for hour in (10, 14, 18):
        results = await asyncio.gather(
            create(local(NEW_YORK, DAY, hour)),
            create(local(NEW_YORK, DAY, hour, 30)),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["ShowOverlap", "int"], results
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM shows") == 3
