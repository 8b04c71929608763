"""The query parser: free text in, filters out. Pure: no I/O, no clock (``ctx.now``).

    >>> q = parse("scary movies tonight under $15", ctx)
    >>> q.genres, q.max_price_cents, q.starts_after is not None
    (('Horror',), 1500, True)

Each extractor finds its phrases in what is left of the text, records what it read in
``understood`` and blanks the words it took; the words nothing took are ``free_text``, which the
service ranks movies against (embeddings or TF-IDF). Time phrases are read in ``ctx.time_zone``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from gateway.search import lexicon, timewords

DEFAULT_RADIUS_KM = 15.0


@dataclass(frozen=True)
class Vocabulary:
    """What the catalog has, built from Postgres by the service (``storage.search``)."""

    genres: tuple[str, ...] = ()
    movies: Mapping[int, str] = field(default_factory=dict)  # id -> title
    cities: Mapping[int, str] = field(default_factory=dict)  # id -> name
    theaters: Mapping[int, tuple[str, int]] = field(default_factory=dict)  # id -> (name, city)
    languages: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()  # empty: no show carries a format
    seat_categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParseContext:
    now: datetime  # aware
    time_zone: str  # IANA name of the city's / theater's zone
    vocabulary: Vocabulary
    # Where the customer is, when the request says so ("near me" needs it).
    location: tuple[float, float] | None = None


@dataclass(frozen=True)
class ParsedQuery:
    genres: tuple[str, ...] = ()
    movies: tuple[tuple[int, float], ...] = ()  # (movie id, match score 0..1)
    starts_after: datetime | None = None
    starts_before: datetime | None = None
    at_time: time | None = None  # "the 7pm show"
    city_id: int | None = None
    theater_id: int | None = None
    near: tuple[float, float] | None = None
    radius_km: float = DEFAULT_RADIUS_KM
    max_price_cents: int | None = None
    language: str | None = None
    format: str | None = None
    seat_category: str | None = None
    family: bool = False
    seat_count: int | None = None
    free_text: str = ""
    understood: tuple[dict[str, Any], ...] = ()


class _Text:
    """The query's words, blanked as extractors take them."""

    def __init__(self, raw: str) -> None:
        text = raw.lower().replace("’", "'")
        text = re.sub(r"[^\w$.:'\- ]+", " ", text)
        self.value = " " + " ".join(text.split()) + " "

    def find(self, pattern: str) -> re.Match[str] | None:
        return re.search(pattern, self.value)

    def take(self, match: re.Match[str], group: int | str = 0) -> str:
        start, end = match.span(group)
        taken = self.value[start:end]
        self.value = self.value[:start] + " " * (end - start) + self.value[end:]
        return taken.strip()

    def words(self) -> list[str]:
        return self.value.split()


def parse(text: str, ctx: ParseContext) -> ParsedQuery:
    """Read ``text`` into filters; see the module docstring."""
    t = _Text(text)
    out: dict[str, Any] = {}
    seen: list[dict[str, Any]] = []
    _price(t, out, seen)
    _seat_count(t, out, seen)
    timewords.extract(t, ctx, out, seen)
    _near(t, ctx, out, seen)
    _places(t, ctx.vocabulary, out, seen)
    _movies(t, ctx.vocabulary, out, seen)
    lexicon.extract(t, ctx.vocabulary, out, seen)
    rest = [w for w in t.words() if w not in lexicon.STOPWORDS]
    free = " ".join(w.strip(".:'-") for w in rest).strip()
    if free:
        seen.append({"kind": "free_text", "text": free, "value": free})
    return ParsedQuery(**out, free_text=free, understood=tuple(seen))


NUM = r"(\d{1,3}|" + "|".join(lexicon.NUMBERS) + r")"


def number(word: str) -> int:
    return int(word) if word.isdigit() else lexicon.NUMBERS[word]


def _price(t: _Text, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    m = t.find(
        r" (?:under|below|less than|cheaper than|at most|max|maximum|no more than|up to)"
        r" \$?(\d{1,4}(?:\.\d{1,2})?)(?: ?(?:dollars|bucks|usd|\$))?(?= )"
    )
    if m is None:
        m = t.find(r" (?:under|below|max) \$(\d{1,4}(?:\.\d{1,2})?)")
    if m is None:
        return
    cents = round(float(m.group(1)) * 100)
    phrase = t.take(m)
    out["max_price_cents"] = cents
    seen.append({"kind": "price", "text": phrase, "value": cents})


def _seat_count(t: _Text, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    m = t.find(rf" {NUM} (?:seats?|tickets?|people|persons|adults|of us)(?= )")
    if m is None:
        m = t.find(rf" for {NUM}(?= )(?! ?(?:am|pm|o'clock|:|\.\d|p\.m|a\.m))")
    if m is None:
        m = t.find(r" (?:a couple of|a pair of|couple of|pair of) (?:seats|tickets)(?= )")
        count = 2 if m else None
    else:
        count = number(m.group(1))
    if m is None or count is None or not 1 <= count <= 20:
        return
    phrase = t.take(m)
    out["seat_count"] = count
    seen.append({"kind": "seat_count", "text": phrase, "value": count})


def _near(t: _Text, ctx: ParseContext, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    radius = t.find(r" within (\d{1,3}(?:\.\d)?) ?(km|kilometers|kilometres|mi|miles)(?= )")
    radius_km = DEFAULT_RADIUS_KM
    if radius:
        radius_km = float(radius.group(1)) * (1.609 if radius.group(2).startswith("mi") else 1)
        t.take(radius)
    m = t.find(r" (?:near me|nearby|close to me|close by|around me|near here|closest|nearest)(?= )")
    if m is None and radius is None:
        return
    phrase = t.take(m) if m else "within"
    if ctx.location is None:
        seen.append({"kind": "near", "text": phrase, "value": None, "note": "no location given"})
        return
    out["near"], out["radius_km"] = ctx.location, radius_km
    seen.append({"kind": "near", "text": phrase, "value": [*ctx.location, radius_km]})


def _places(t: _Text, vocab: Vocabulary, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    for theater_id, (name, _) in sorted(vocab.theaters.items(), key=lambda i: -len(i[1][0])):
        m = t.find(rf" (?:at |in )?(?:the )?{re.escape(name.lower())}(?= )")
        if m:
            phrase = t.take(m)
            out["theater_id"] = theater_id
            seen.append({"kind": "theater", "text": phrase, "value": theater_id, "name": name})
            break
    for city_id, name in sorted(vocab.cities.items(), key=lambda i: -len(i[1])):
        m = t.find(rf" (?:in |near |around )?{re.escape(name.lower())}(?= )")
        if m:
            phrase = t.take(m)
            out["city_id"] = city_id
            seen.append({"kind": "city", "text": phrase, "value": city_id, "name": name})
            return


def _movies(t: _Text, vocab: Vocabulary, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    from gateway.search.titles import match_titles

    found = match_titles(t.value, vocab.movies)
    if not found:
        return
    (start, end), matches = found
    phrase = t.value[start:end].strip()
    t.value = t.value[:start] + " " * (end - start) + t.value[end:]
    out["movies"] = tuple(matches)
    for movie_id, score in matches:
        seen.append(
            {
                "kind": "movie",
                "text": phrase,
                "value": movie_id,
                "title": vocab.movies[movie_id],
                "score": round(score, 3),
            }
        )
