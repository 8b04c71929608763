"""Natural-language search: "action movies near me tonight" read into filters (``parse``),
shows filtered in Postgres and movies ranked by the words left over (``SearchService``), and
its two endpoints. ``search_ctx`` keeps one ``SearchService`` at ``app[keys.SEARCH]``.

Imports no torch or sentence-transformers: the embeddings run in the Serve deployment
(``serve.deployments.SearchReplica``), reached through ``serve.client.ModelCall``; without it
the ranking is a pure-Python TF-IDF.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway import keys
from gateway.endpoint import Endpoint
from gateway.search import schemas as s
from gateway.search import views
from gateway.search.config import SearchConfig
from gateway.search.parse import ParseContext, ParsedQuery, Vocabulary, parse
from gateway.search.service import SearchResult, SearchService
from serve.client import ModelCall

API = "/api/v1"
SEARCH_APP = "search"  # the Serve application and deployment (serve.deployments)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        API + "/search",
        views.search,
        "Search shows in plain words; the answer says how the query was understood",
        "search",
        response=s.SearchOut,
        query=s.SearchQuery,
        auth=("optional",),
        idempotency="none",
        errors=(422,),
    ),
    Endpoint(
        "GET",
        API + "/search/autocomplete",
        views.autocomplete,
        "Suggestions as the customer types: titles, genres, theaters, cities",
        "search",
        response=s.AutocompleteOut,
        query=s.AutocompleteQuery,
        auth=("optional",),
        idempotency="none",
        errors=(422,),
    ),
)


def embedding_calls(config: SearchConfig) -> tuple[ModelCall, ModelCall]:
    """The ranking call (within the budget) and the indexing call (warms the replica's cache
    of movie embeddings when the catalog changes) of the search deployment."""
    rank = ModelCall(
        SEARCH_APP, SEARCH_APP, "rank", config.embedding_budget_s, key="scores",
        enabled=config.embeddings,
    )  # fmt: skip
    index = ModelCall(
        SEARCH_APP, SEARCH_APP, "index", 120.0, key="indexed", enabled=config.embeddings
    )
    return rank, index


async def search_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG].search or SearchConfig(embeddings=False)
    rank, index = embedding_calls(config)
    service = SearchService(app[keys.POOL], config, rank, index)
    app[keys.SEARCH] = service
    yield
    await service.close()


__all__ = [
    "ENDPOINTS",
    "ParseContext",
    "ParsedQuery",
    "SearchConfig",
    "SearchResult",
    "SearchService",
    "Vocabulary",
    "parse",
    "search_ctx",
]
