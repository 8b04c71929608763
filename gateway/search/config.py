"""The search's plain values, built by the composition root from ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchConfig:
    # Whether free text is ranked by the embedding deployment on Serve (else TF-IDF only).
    embeddings: bool = True
    # Time budget of one embedding call; past it the TF-IDF answers (design: search 200 ms).
    embedding_budget_s: float = 0.2
    # How long the parsed-against catalog (titles, places, texts) is kept before a reload.
    catalog_ttl_s: float = 300.0
    # With no time in the query: shows from now to this many days ahead.
    horizon_days: int = 7
    # Next shows listed per movie.
    shows_per_movie: int = 5
    # Default radius of "near me", and the zone used when nothing says where the customer is.
    near_radius_km: float = 15.0
    default_time_zone: str = "America/New_York"
    # Least similarity a movie needs to count as matching the free text.
    min_embedding_score: float = 0.2
    min_tfidf_score: float = 0.05
