"""Every catalog query on demo data, checked against answers worked out in Python from the raw
rows (local dates in each theater's own time zone)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import storage
from tests.conftest import TEST_KEYRING

TODAY = dt.date(2026, 11, 24)
DAY = TODAY + dt.timedelta(days=2)  # the week of shows starts today; pick a day inside it


async def raw_shows(conn: Any) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT s.id, s.movie_id, s.screen_id, s.starts_at, s.status, s.prices,
                  sc.name AS screen_name, t.id AS theater_id, t.name AS theater_name,
                  t.time_zone, t.city_id, m.title, m.runtime_min
           FROM shows s JOIN screens sc ON sc.id = s.screen_id
           JOIN theaters t ON t.id = sc.theater_id JOIN movies m ON m.id = s.movie_id"""
    )
    shows = []
    for row in rows:
        show = dict(row)
        show["local"] = row["starts_at"].astimezone(ZoneInfo(row["time_zone"]))
        shows.append(show)
    return shows


def on_day(shows: list[dict[str, Any]], day: dt.date) -> list[dict[str, Any]]:
    return [s for s in shows if s["local"].date() == day and s["status"] != "cancelled"]


async def test_catalog_queries_answer_as_the_raw_rows_say(pool: Any) -> None:
    async with pool.acquire() as conn:
        await storage.generate_demo_data(
            conn, scale=0.07, seed=5, today=TODAY, keyring=TEST_KEYRING, progress=False
        )
        shows = on_day(await raw_shows(conn), DAY)
        cities = await storage.list_cities(conn)
        assert len(cities) >= 2 and shows

        for city in cities:
            expected: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for show in shows:
                if show["city_id"] == city.id:
                    expected[show["movie_id"]].append(show)
            playing = await storage.movies_playing(conn, city.id, DAY)
            assert {m.id: m.show_count for m in playing} == {
                movie: len(s) for movie, s in expected.items()
            }
            counts = [m.show_count for m in playing]
            assert counts == sorted(counts, reverse=True)
            for movie in playing:
                first = min(expected[movie.id], key=lambda s: s["starts_at"])
                assert movie.first_start == first["local"]
                assert movie.first_start.tzinfo is not None
                assert movie.first_start.utcoffset() == first["local"].utcoffset()

            top = playing[0].id
            grouped = await storage.shows_of_movie(conn, top, city.id, DAY)
            want: dict[int, list[int]] = defaultdict(list)
            for show in sorted(expected[top], key=lambda s: s["starts_at"]):
                want[show["theater_id"]].append(show["id"])
            assert {g.theater_id: [s.show_id for s in g.shows] for g in grouped} == want
            assert [g.theater_name for g in grouped] == sorted(g.theater_name for g in grouped)
            for group in grouped:
                for showtime in group.shows:
                    assert showtime.starts_at.tzinfo == ZoneInfo(group.time_zone)
                    assert 10 <= showtime.starts_at.hour <= 23

        theater = shows[0]["theater_id"]
        schedule = await storage.theater_shows(conn, theater, DAY)
        mine = sorted(
            (s for s in shows if s["theater_id"] == theater),
            key=lambda s: (s["starts_at"], s["screen_name"]),
        )
        assert [e.show_id for e in schedule] == [s["id"] for s in mine]
        for entry, show in zip(schedule, mine, strict=True):
            assert entry.starts_at == show["local"]
            assert entry.ends_at - entry.starts_at == dt.timedelta(minutes=show["runtime_min"])
            assert entry.movie_title == show["title"]

        details = await storage.get_show(conn, shows[0]["id"])
        assert details.show_id == shows[0]["id"] and details.layout["rows"]
        assert (await storage.get_theater(conn, theater)).time_zone == shows[0]["time_zone"]
        assert (
            await storage.movies_playing(conn, cities[0].id, TODAY - dt.timedelta(days=400)) == []
        )
