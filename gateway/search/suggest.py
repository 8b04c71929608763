"""Autocomplete: titles, genres, theaters and cities that start with what was typed (at the
start of any word), then fuzzy matches (typos) when prefixes find too few."""

from __future__ import annotations

from typing import Any

from rapidfuzz import fuzz, process

from gateway.search.catalog import Catalog

FUZZY_CUTOFF = 75.0


def _entries(cat: Catalog, city_id: int | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"kind": "movie", "id": mid, "text": title} for mid, title in cat.vocabulary.movies.items()
    ]
    out += [{"kind": "genre", "id": None, "text": g} for g in cat.vocabulary.genres]
    out += [
        {"kind": "theater", "id": tid, "text": name, "city_id": city}
        for tid, (name, city) in cat.vocabulary.theaters.items()
        if city_id is None or city == city_id
    ]
    out += [
        {"kind": "city", "id": cid, "text": name} for cid, name in cat.vocabulary.cities.items()
    ]
    return out


def suggest(
    cat: Catalog, prefix: str, *, city_id: int | None = None, limit: int = 8
) -> list[dict[str, Any]]:
    """Suggestions for ``prefix``: word-prefix matches first (shortest first), then fuzzy."""
    typed = " ".join(prefix.lower().split())
    if not typed:
        return []
    entries = _entries(cat, city_id)
    hits: list[tuple[int, int, dict[str, Any]]] = []
    for entry in entries:
        text = entry["text"].lower()
        if text.startswith(typed):
            hits.append((0, len(text), entry))
        elif f" {typed}" in f" {text}":
            hits.append((1, len(text), entry))
    hits.sort(key=lambda h: (h[0], h[1], h[2]["text"]))
    found = [h[2] for h in hits[:limit]]
    if len(found) < limit and len(typed) >= 3:
        taken = {(e["kind"], e["id"], e["text"]) for e in found}
        rest = [e for e in entries if (e["kind"], e["id"], e["text"]) not in taken]
        fuzzy = process.extract(
            typed,
            [e["text"].lower()[: len(typed) + 2] for e in rest],
            scorer=fuzz.ratio,
            score_cutoff=FUZZY_CUTOFF,
            limit=limit - len(found),
        )
        found += [rest[index] for _, _, index in fuzzy]
    return [{k: v for k, v in e.items() if v is not None or k == "id"} for e in found]
