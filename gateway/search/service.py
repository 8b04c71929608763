"""The search: parse the query, filter shows in Postgres, rank movies.

    >>> result = await app[keys.SEARCH].search("scary movies tonight", city_id=3)
    >>> result.understood, [m["title"] for m in result.results]

Movie filters (title, genres, language, family certificates) narrow the movie ids from the
cached catalog; show filters (time window, theaters of the city / near a point, price ceiling,
seat category, time of day) run in one SQL query that keeps the first shows per movie. The
words nothing took (``free_text``) rank the movies that passed by similarity to their title,
genres and synopsis: sentence embeddings from the Serve deployment within the budget, else
TF-IDF here (``semantic`` says which). With no free text, movies rank by title match, then by
how many shows passed (popularity), then by the soonest show.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.search.catalog import Catalog
from gateway.search.config import SearchConfig
from gateway.search.lexicon import FAMILY_CERTIFICATES
from gateway.search.parse import ParseContext, ParsedQuery, parse
from serve.client import ModelCall
from storage import search as store


@dataclass(frozen=True)
class SearchResult:
    query: ParsedQuery
    understood: list[dict[str, Any]]
    results: list[dict[str, Any]]
    semantic: str | None = None  # "embeddings" | "tfidf" | None (no free text)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "understood": self.understood,
            "semantic": self.semantic,
            "results": self.results,
        }


class SearchService:
    def __init__(
        self,
        pool: Any,
        config: SearchConfig | None = None,
        embedder: ModelCall | None = None,
        indexer: ModelCall | None = None,
    ) -> None:
        self.pool = pool
        self.config = config or SearchConfig()
        self.embedder = embedder
        self.indexer = indexer  # warms the replica's movie embeddings per catalog version
        self._warming: asyncio.Task[Any] | None = None
        self._catalog: Catalog | None = None
        self._loaded_at = -1e9
        self._lock = asyncio.Lock()

    async def catalog(self) -> Catalog:
        """The cached catalog, reloaded after ``catalog_ttl_s``."""
        if time.monotonic() - self._loaded_at < self.config.catalog_ttl_s and self._catalog:
            return self._catalog
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self.config.catalog_ttl_s or not self._catalog:
                async with self.pool.acquire() as conn:
                    rows = await store.load_catalog(conn)
                changed = self._catalog is None or self._catalog.version != rows.version
                self._catalog = Catalog.build(rows)
                self._loaded_at = time.monotonic()
                if changed:
                    self._warm(self._catalog)
        return self._catalog

    def _warm(self, cat: Catalog) -> None:
        """Have the deployment embed every movie's text now, not on the first queries."""
        if self.indexer is None or not self.config.embeddings or self._warming is not None:
            return
        indexer = self.indexer

        async def warm() -> None:
            try:
                if await indexer.ready(timeout_s=5.0):
                    await indexer(cat.texts, fallback=lambda: 0)
            finally:
                self._warming = None

        self._warming = asyncio.ensure_future(warm())

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()

    def _zone(self, cat: Catalog, city_id: int | None, near: tuple[float, float] | None) -> str:
        if city_id is not None and city_id in cat.city_zones:
            return cat.city_zones[city_id]
        if near is not None and (zone := cat.nearest_zone(near)):
            return zone
        return self.config.default_time_zone

    async def parse(
        self, q: str, *, city_id: int | None = None, near: tuple[float, float] | None = None,
        now: datetime | None = None,
    ) -> ParsedQuery:  # fmt: skip
        """``q`` read in the zone of the city it names (else the one passed, else near)."""
        cat = await self.catalog()
        now = now or datetime.now(UTC)
        zone = self._zone(cat, city_id, near)
        parsed = parse(q, ParseContext(now, zone, cat.vocabulary, location=near))
        place = parsed.city_id
        if parsed.theater_id is not None:
            place = cat.theaters[parsed.theater_id]["city_id"]
        if place is not None and cat.city_zones.get(place, zone) != zone:
            parsed = parse(q, ParseContext(now, cat.city_zones[place], cat.vocabulary, near))
        if parsed.near is not None:
            parsed = replace(parsed, radius_km=parsed.radius_km or self.config.near_radius_km)
        return parsed

    async def search(
        self,
        q: str,
        *,
        city_id: int | None = None,
        near: tuple[float, float] | None = None,
        now: datetime | None = None,
        limit: int = 20,
    ) -> SearchResult:
        now = now or datetime.now(UTC)
        cat = await self.catalog()
        parsed = await self.parse(q, city_id=city_id, near=near, now=now)
        understood = [dict(u) for u in parsed.understood]
        movie_ids = _movie_ids(cat, parsed)
        theater_ids = _theater_ids(cat, parsed, city_id)
        if movie_ids == [] or theater_ids == []:
            return SearchResult(parsed, understood, [], None)
        after = max(parsed.starts_after or now, now)
        before = parsed.starts_before or now + timedelta(days=self.config.horizon_days)
        if before <= after:
            return SearchResult(parsed, understood, [], None)
        shows = store.ShowFilter(
            after, before, movie_ids, theater_ids, parsed.max_price_cents, parsed.seat_category,
            parsed.at_time, per_movie=self.config.shows_per_movie,
        )  # fmt: skip
        async with self.pool.acquire() as conn:
            rows = await store.matching_shows(conn, shows)
        by_movie: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            by_movie.setdefault(int(row["movie_id"]), []).append(row)
        semantic, similarity = await self._similarity(cat, parsed.free_text, list(by_movie))
        ranked = _rank(cat, parsed, by_movie, similarity, self._floor(semantic))
        results = [
            _result(cat, parsed, mid, score, by_movie[mid], similarity) for mid, score in ranked
        ]
        return SearchResult(parsed, understood, results[:limit], semantic)

    def _floor(self, semantic: str | None) -> float:
        if semantic == "embeddings":
            return self.config.min_embedding_score
        return self.config.min_tfidf_score

    async def _similarity(
        self, cat: Catalog, text: str, ids: list[int]
    ) -> tuple[str | None, dict[int, float]]:
        if not text or not ids:
            return None, {}
        if self.embedder is not None and self.config.embeddings:
            texts = {mid: cat.texts[mid] for mid in ids}
            answer = await self.embedder(text, texts, fallback=lambda: None)
            if answer.value is not None:
                return "embeddings", dict(zip(ids, answer.value, strict=True))
        return "tfidf", dict(zip(ids, cat.tfidf.scores(text, ids), strict=True))

    async def autocomplete(
        self, prefix: str, *, city_id: int | None = None, limit: int = 8
    ) -> list[dict[str, Any]]:
        from gateway.search.suggest import suggest

        return suggest(await self.catalog(), prefix, city_id=city_id, limit=limit)


def _movie_ids(cat: Catalog, parsed: ParsedQuery) -> list[int] | None:
    """Movies the query's movie filters allow; None: any."""
    if not (parsed.movies or parsed.genres or parsed.language or parsed.family):
        return None
    ids = [mid for mid, _ in parsed.movies] or list(cat.movies)
    if parsed.genres:
        wanted = set(parsed.genres)
        every = [m for m in ids if wanted <= set(cat.movies[m]["genres"])]
        ids = every or [m for m in ids if wanted & set(cat.movies[m]["genres"])]
    if parsed.language:
        ids = [m for m in ids if cat.movies[m]["language"] == parsed.language]
    if parsed.family:
        ids = [m for m in ids if cat.movies[m]["certificate"] in FAMILY_CERTIFICATES]
    return ids


def _theater_ids(cat: Catalog, parsed: ParsedQuery, city_id: int | None) -> list[int] | None:
    if parsed.theater_id is not None:
        return [parsed.theater_id]
    if parsed.near is not None and parsed.city_id is None:
        return cat.theaters_near(parsed.near, parsed.radius_km)
    city = parsed.city_id if parsed.city_id is not None else city_id
    if city is None:
        return None
    return [tid for tid, t in cat.theaters.items() if t["city_id"] == city]


def _rank(
    cat: Catalog,
    parsed: ParsedQuery,
    by_movie: dict[int, list[dict[str, Any]]],
    similarity: dict[int, float],
    floor: float,
) -> list[tuple[int, float]]:
    titled = dict(parsed.movies)
    if similarity:
        best = max(similarity.values())
        keep = {m for m, s in similarity.items() if s >= floor and s >= 0.5 * best}
        by_movie = {m: rows for m, rows in by_movie.items() if m in keep}

    def key(mid: int) -> tuple[float, ...]:
        rows = by_movie[mid]
        return (
            -titled.get(mid, 0.0),
            -round(similarity.get(mid, 0.0), 4),
            -float(rows[0]["movie_show_count"]),
            rows[0]["starts_at"].timestamp(),
        )

    ordered = sorted(by_movie, key=key)
    return [(mid, round(titled.get(mid, 0.0) + similarity.get(mid, 0.0), 4)) for mid in ordered]


def _result(
    cat: Catalog,
    parsed: ParsedQuery,
    movie_id: int,
    score: float,
    rows: list[dict[str, Any]],
    similarity: dict[int, float],
) -> dict[str, Any]:
    movie = cat.movies[movie_id]
    why: list[str] = []
    if movie_id in dict(parsed.movies):
        why.append("title")
    why += [f"genre {g}" for g in parsed.genres if g in movie["genres"]]
    if movie_id in similarity:
        why.append(f"similar to '{parsed.free_text}' ({similarity[movie_id]:.2f})")
    return {
        "id": movie_id,
        "title": movie["title"],
        "genres": list(movie["genres"]),
        "certificate": movie["certificate"],
        "language": movie["language"],
        "score": score,
        "why": why,
        "show_count": int(rows[0]["movie_show_count"]),
        "shows": [_show(cat, r) for r in rows],
    }


def _show(cat: Catalog, row: dict[str, Any]) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    return {
        "show_id": int(row["show_id"]),
        "theater_id": int(row["theater_id"]),
        "theater_name": row["theater_name"],
        "city_id": int(row["city_id"]),
        "starts_at": row["starts_at"].astimezone(ZoneInfo(row["time_zone"])),
        "prices": dict(row["prices"]),
        "currency": row["currency"],
    }
