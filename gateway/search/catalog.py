"""The catalog as the search holds it in memory: the parser's vocabulary, each movie's text
for the semantic ranking (and its TF-IDF index), and where the theaters are. Built from
``storage.search.load_catalog`` and kept for ``SearchConfig.catalog_ttl_s``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gateway.search.parse import Vocabulary
from gateway.search.tfidf import TfIdf
from storage.search import CatalogRows


@dataclass(frozen=True)
class Catalog:
    version: str
    vocabulary: Vocabulary
    movies: dict[int, dict[str, Any]]  # id -> id, title, genres, certificate, language, ...
    texts: dict[int, str]  # id -> "title. genres. synopsis"
    tfidf: TfIdf
    theaters: dict[int, dict[str, Any]]  # id -> name, city_id, time_zone, latitude, longitude
    city_zones: dict[int, str]  # city id -> the time zone of its theaters

    @classmethod
    def build(cls, rows: CatalogRows) -> Catalog:
        movies = {int(m["id"]): m for m in rows.movies}
        texts = {
            movie_id: f"{m['title']}. {', '.join(m['genres'])}. {m['synopsis']}"
            for movie_id, m in movies.items()
        }
        theaters = {int(t["id"]): t for t in rows.theaters}
        zones: dict[int, str] = {}
        for t in rows.theaters:
            zones.setdefault(int(t["city_id"]), t["time_zone"])
        genres = sorted({g for m in rows.movies for g in m["genres"]})
        vocabulary = Vocabulary(
            genres=tuple(genres),
            movies={movie_id: m["title"] for movie_id, m in movies.items()},
            cities={int(c["id"]): c["name"] for c in rows.cities},
            theaters={tid: (t["name"], int(t["city_id"])) for tid, t in theaters.items()},
            languages=tuple(sorted({m["language"] for m in rows.movies})),
            formats=(),  # the catalog carries no format (IMAX, 3D): parsed, said, not applied
            seat_categories=tuple(rows.seat_categories),
        )
        return cls(rows.version, vocabulary, movies, texts, TfIdf(texts), theaters, zones)

    def theaters_near(self, point: tuple[float, float], radius_km: float) -> list[int]:
        return [
            tid
            for tid, t in self.theaters.items()
            if t["latitude"] is not None
            and t["longitude"] is not None
            and distance_km(point, (t["latitude"], t["longitude"])) <= radius_km
        ]

    def nearest_zone(self, point: tuple[float, float]) -> str | None:
        located = [
            (distance_km(point, (t["latitude"], t["longitude"])), t["time_zone"])
            for t in self.theaters.values()
            if t["latitude"] is not None and t["longitude"] is not None
        ]
        return min(located)[1] if located else None


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(h)))
