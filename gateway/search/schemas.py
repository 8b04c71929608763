"""Query and answer models of the search endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.schemas import Id, Latitude, Lenient, Longitude

Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class SearchQuery(Lenient):
    q: Text = Field(description="what the customer typed, e.g. 'action movies near me tonight'")
    city_id: Id | None = Field(None, description="the customer's city (its zone reads times)")
    lat: Latitude | None = Field(None, description="where the customer is, for 'near me'")
    lon: Longitude | None = None
    limit: Annotated[int, Field(ge=1, le=50)] = 20


class AutocompleteQuery(Lenient):
    q: Text = Field(description="what has been typed so far")
    city_id: Id | None = None
    limit: Annotated[int, Field(ge=1, le=20)] = 8


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShowHit(_Out):
    show_id: int
    theater_id: int
    theater_name: str
    city_id: int
    starts_at: str = Field(description="local time with its offset (ISO 8601)")
    prices: dict[str, int]
    currency: str


class MovieHit(_Out):
    id: int
    title: str
    genres: list[str]
    certificate: str
    language: str
    score: float
    why: list[str]
    show_count: int = Field(description="how many shows passed the filters")
    shows: list[ShowHit] = Field(description="the next matching shows")


class SearchOut(_Out):
    understood: list[dict[str, Any]] = Field(
        description="how the query was read: kind, text, value (and a note when not applied)"
    )
    semantic: str | None = Field(description="'embeddings', 'tfidf', or null (no free text)")
    results: list[MovieHit]


class Suggestion(_Out):
    kind: str = Field(description="movie, genre, theater or city")
    id: int | None
    text: str
    city_id: int | None = None


class AutocompleteOut(_Out):
    suggestions: list[Suggestion]
