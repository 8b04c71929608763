"""The home page on real Postgres and Redis: a customer's next shows come at their favourite
theaters first, then at their usual time of day, then nearest; "because you booked …" names a
movie they booked (by shared genres without the model, by the model's item vectors with the
recommender deployed on Ray Serve); a visitor gets what sells in the city and nothing personal;
bad input is refused; prices say where they came from."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import storage
from gateway import keys
from gateway.app import create_app
from gateway.models import ModelsConfig
from tests.conftest import fresh_schema
from tests.gateway_support import Account, gateway_config, make_account
from tests.integration import home_catalog
from tests.integration.home_catalog import ACTION, ROMANCE, Catalog

HOME = "/api/v1/home"


class NoShows:
    """The home reads shows from Postgres, never from the show actors."""

    async def snapshot(self, show_id: int) -> Any:
        raise AssertionError("the home never reads a seat map")

    async def execute(self, show_id: int, command: Any) -> Any:
        raise AssertionError("the home never changes seats")


@dataclasses.dataclass
class Site:
    client: Any
    app: Any
    catalog: Catalog
    customer: Account


async def _site(aiohttp_client: Any, config: Any, pool: Any, **models: Any) -> Site:
    customer = await make_account(pool, config)
    async with pool.acquire() as conn:
        catalog = await home_catalog.build(conn, customer.user_id, dt.datetime.now(dt.UTC))
    config = dataclasses.replace(config, models=ModelsConfig(**models))
    app = create_app(config, engine=NoShows())
    return Site(await aiohttp_client(app), app, catalog, customer)


@pytest.fixture
async def site(aiohttp_client: Any, config: Any, pool: Any, redis: Any) -> AsyncIterator[Site]:
    # Models off: every model call answers from its rules at once ("absent").
    yield await _site(aiohttp_client, config, pool, enabled=False, fraud_check=False)
    found = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    if found:
        await redis.delete(*found)


async def _home(
    site: Site, account: Account | None = None, status: int = 200, **params: Any
) -> Any:
    headers = account.headers if account else {}
    resp = await site.client.get(HOME, params=params, headers=headers)
    body = await resp.json()
    assert resp.status == status, body
    return body


def _movies(body: Any, kind: str = "recommended") -> dict[str, Any]:
    [section] = [s for s in body["sections"] if s["kind"] == kind]
    return {m["title"]: m for m in section["movies"]}


def _where(site: Site, movie: dict[str, Any]) -> list[tuple[str, str, bool, bool]]:
    """Each next show as (theater, local HH:MM, favourite theater, at the usual time)."""
    return [
        (
            site.catalog.theater(s["theater_id"]),
            s["local_time"][11:16],
            s["favourite_theater"],
            s["at_usual_time"],
        )
        for s in movie["next_shows"]
    ]


async def test_favourite_theaters_then_the_usual_time_come_first(site: Site) -> None:
    body = await _home(site, site.customer)
    assert body["personalized"] is True and body["city"]["name"] == "Hometown"  # home city
    assert [t["name"] for t in body["favourite_theaters"]] == ["Fav Cinema", "Second Screen"]
    assert [t["bookings"] for t in body["favourite_theaters"]] == [3, 1]
    assert body["usual_time_of_day"] == "evening"
    movies = _movies(body)
    # The favourite theater's show first, though two days away; then the evening show of the
    # other theater before its morning one, though the morning one is sooner.
    assert _where(site, movies["Night Chase"]) == [
        ("Fav Cinema", "19:00", True, True),
        ("Far Hall", "19:30", False, True),
        ("Far Hall", "09:00", False, False),
    ]
    # One theater: the usual time first, then the soonest.
    assert [s[1] for s in _where(site, movies["Blast Point"])] == ["19:00", "10:00", "14:00"]
    # Two favourites, neither at the usual time: the more booked one first.
    assert [s[0] for s in _where(site, movies["Quiet Heart"])] == ["Fav Cinema", "Second Screen"]
    # The favourite theater's show is sold out: the other one is shown.
    assert [s[0] for s in _where(site, movies["Space Saga"])] == ["Far Hall"]
    # Fewer shows per movie when asked.
    one = _movies(await _home(site, site.customer, shows_per_movie=1))
    assert _where(site, one["Night Chase"]) == [("Fav Cinema", "19:00", True, True)]


async def test_because_you_booked_names_a_booked_movie_without_the_model(site: Site) -> None:
    body = await _home(site, site.customer)
    assert body["source"] == "fallback" and body["fallback_reason"] == "absent"
    movies = _movies(body)
    booked = {"Old Action", "Old Romance"}
    assert not booked & set(movies)  # never what they booked
    for title in ("Night Chase", "Blast Point", "Space Saga"):
        because = movies[title]["because"]
        assert movies[title]["reason"] == "because_you_booked"
        assert because["title"] == "Old Action" and "action" in because["shared_genres"]
        assert because["similarity"] is None  # shared genres, not the model
    assert movies["Night Chase"]["because"]["shared_genres"] == ["action", "thriller"]
    for title in ("Quiet Heart", "Love Letters"):
        assert movies[title]["because"]["title"] == "Old Romance"
    # No booked movie shares a genre with the comedy, which is a genre they picked.
    assert movies["Laugh Track"]["reason"] == "your_genres"
    assert movies["Laugh Track"]["because"] is None
    assert movies["Night Chase"]["runtime_min"] == 100
    assert movies["Night Chase"]["certificate"] == "PG-13"


async def test_a_visitor_gets_what_sells_in_the_city_and_nothing_personal(site: Site) -> None:
    body = await _home(site, None, city_id=site.catalog.city, lat=40.9, lon=-73.8)
    assert body["personalized"] is False
    assert body["source"] == "fallback" and body["fallback_reason"] == "cold_start"
    [section] = body["sections"]
    assert section["kind"] == "popular" and section["title"] == "Popular in Hometown"
    titles = [m["title"] for m in section["movies"]]
    assert titles[:2] == ["Laugh Track", "Love Letters"]  # sold best lately
    assert len(titles) == 6 and "Old Action" not in titles  # what plays, not what played
    assert "favourite_theaters" not in body and "usual_time_of_day" not in body
    for movie in section["movies"]:
        assert movie["reason"] == "popular_in_city" and movie["because"] is None
        for show in movie["next_shows"]:
            assert "favourite_theater" not in show and "at_usual_time" not in show
            assert show["distance_km"] >= 0
    # Near Far Hall: its shows before the sooner ones elsewhere.
    night = next(m for m in section["movies"] if m["title"] == "Night Chase")
    assert [site.catalog.theater(s["theater_id"]) for s in night["next_shows"]] == [
        "Far Hall",
        "Far Hall",
        "Fav Cinema",
    ]
    near = [s["distance_km"] for s in night["next_shows"]]
    assert near[0] < 1.0 < near[2]
    assert (
        len((await _home(site, None, city_id=site.catalog.city, limit=2))["sections"][0]["movies"])
        == 2
    )


async def test_bad_input_is_refused(site: Site) -> None:
    city = site.catalog.city
    for params, status, code in (
        ({}, 422, "city_required"),  # a visitor must say the city
        ({"city_id": "0"}, 422, "validation_failed"),
        ({"city_id": "999999"}, 404, "not_found"),
        ({"city_id": city, "lat": "91", "lon": "0"}, 422, "validation_failed"),
        ({"city_id": city, "lat": "40", "lon": "-181"}, 422, "validation_failed"),
        ({"city_id": city, "lat": "40"}, 422, "validation_failed"),  # lat without lon
        ({"city_id": city, "lat": "north", "lon": "0"}, 422, "validation_failed"),
        ({"city_id": city, "limit": "0"}, 422, "validation_failed"),
        ({"city_id": city, "limit": "21"}, 422, "validation_failed"),
        ({"city_id": city, "shows_per_movie": "6"}, 422, "validation_failed"),
    ):
        body = await _home(site, None, status, **params)
        assert body["error"]["code"] == code, (params, body)
    resp = await site.client.get(HOME, headers={"Authorization": "Bearer nonsense"})
    assert resp.status == 401
    # A customer with no home city must say one too; another city is theirs to pick.
    async with site.app[keys.POOL].acquire() as conn:
        await conn.execute(
            "UPDATE users SET home_city_id = NULL WHERE id = $1", site.customer.user_id
        )
    assert (await _home(site, site.customer, 422))["error"]["code"] == "city_required"
    elsewhere = await _home(site, site.customer, city_id=site.catalog.other_city)
    assert elsewhere["city"]["name"] == "Elsewhere" and elsewhere["sections"] == []


async def test_prices_say_where_they_came_from(aiohttp_client: Any, config: Any, pool: Any) -> None:
    # Everyone in the dynamic arm, and no pricing model: each price from its table, and said.
    site = await _site(aiohttp_client, config, pool, enabled=False, pricing_dynamic_share=1.0)
    for account in (site.customer, None):
        body = await _home(site, account, city_id=site.catalog.city)
        assert body["pricing"] == {"source": "fallback", "fallback_reason": "absent"}
        shows = [s for sec in body["sections"] for m in sec["movies"] for s in m["next_shows"]]
        assert shows and {(s["price_from_cents"], s["currency"]) for s in shows} == {(1200, "USD")}


async def test_the_control_arm_sees_the_price_table(
    aiohttp_client: Any, config: Any, pool: Any
) -> None:
    site = await _site(aiohttp_client, config, pool, enabled=False, pricing_dynamic_share=0.0)
    body = await _home(site, site.customer)
    assert body["pricing"] == {"source": "fallback", "fallback_reason": "control_arm"}


# -- with the recommender on Ray Serve ---------------------------------------------------------


@dataclasses.dataclass
class Deployed:
    config: Any
    catalog: Catalog
    customer: Account
    version: str


def _train(catalog: Catalog, root: Path) -> str:
    """A recommender trained on customers of one taste each (action, romance or the comedy),
    committed as a passing artifact; its version."""
    from ml.artifacts import ArtifactStore, Gate
    from ml.recommender.interactions import Interactions
    from ml.recommender.models import defaults, fit
    from ml.recommender.serving import write_files

    rng = random.Random(0)
    triples = []
    for n in range(300):
        taste = (ACTION, ROMANCE, ("Laugh Track",))[n % 3]
        picks = [taste[0], *rng.sample(taste[1:], k=min(2, len(taste) - 1))]
        triples += [(n, catalog.movies[title], rng.randrange(10**6)) for title in picks]
    data = Interactions.from_triples(triples)
    model = fit(data, defaults("mf"), progress=False)
    with ArtifactStore(root).draft("recommender") as draft:
        write_files(draft.path, model, data)
        artifact = draft.commit(metrics={}, gate=Gate(True, "test tastes"), data={})
    return artifact.version


@pytest.fixture(scope="module")
async def deployed(
    ray_session: None, database_url: str, redis_url: str, tmp_path_factory: Any
) -> AsyncIterator[Deployed]:
    from serve.deployments import Scaling, deploy, undeploy

    async with fresh_schema(database_url, "home") as schema:
        config = gateway_config(database_url, schema, redis_url)
        pool = await storage.create_pool(database_url, schema=schema, min_size=1, max_size=2)
        try:
            customer = await make_account(pool, config)
            async with pool.acquire() as conn:
                now = dt.datetime.now(dt.UTC)
                catalog = await home_catalog.build(conn, customer.user_id, now)
        finally:
            await pool.close()
        root = tmp_path_factory.mktemp("home-models")
        version = await asyncio.to_thread(_train, catalog, root)
        deploy(root, Scaling(min_replicas=1, max_replicas=1), kinds=("recommender",))
        try:
            yield Deployed(config, catalog, customer, version)
        finally:
            undeploy(("recommender",))


async def _served(aiohttp_client: Any, deployed: Deployed, **models: Any) -> Site:
    config = dataclasses.replace(
        deployed.config, models=ModelsConfig(enabled=True, fraud_check=False, **models)
    )
    app = create_app(config, engine=NoShows())
    client = await aiohttp_client(app)
    assert await app[keys.MODELS].recommender.ready(30)
    return Site(client, app, deployed.catalog, deployed.customer)


@pytest.mark.slow
async def test_the_model_says_which_booked_movie_each_is_like(
    aiohttp_client: Any, deployed: Deployed
) -> None:
    from serve.client import ANSWERS, LATENCY

    site = await _served(aiohttp_client, deployed, pricing_dynamic_share=1.0)
    timed = LATENCY.labels("recommender")
    answered = ANSWERS.labels("recommender", "model", "")
    before = (_histogram_count(timed), answered._value.get())
    for _ in range(20):  # a replica's first answers may miss the budget
        body = await _home(site, site.customer)
        if body["source"] == "model":
            break
        await asyncio.sleep(0.5)
    assert body["source"] == "model" and body["model_version"] == deployed.version, body
    # Each answer the model gave is timed for the dashboard's model latency (exactly one).
    assert (_histogram_count(timed), answered._value.get()) == (before[0] + 1, before[1] + 1)
    movies = _movies(body)
    assert {"Night Chase", "Blast Point", "Quiet Heart", "Love Letters"} <= set(movies)
    for titles, booked in ((ACTION, "Old Action"), (ROMANCE, "Old Romance")):
        for title in titles[1:]:
            if title not in movies:
                continue
            movie = movies[title]
            assert movie["reason"] == "because_you_booked", movie
            assert movie["because"]["title"] == booked, movie
            assert 0 < movie["because"]["similarity"] <= 1
    assert body["pricing"]["source"] == "fallback"  # no pricing model: the price tables


def _histogram_count(histogram: Any) -> float:
    """Observations of one labelled histogram child so far."""
    return next(
        sample.value
        for family in histogram.collect()
        for sample in family.samples
        if sample.name.endswith("_count")
    )


@pytest.mark.slow
async def test_a_model_past_its_budget_gives_the_rule_and_shared_genres(
    aiohttp_client: Any, deployed: Deployed
) -> None:
    site = await _served(aiohttp_client, deployed, recommender_budget_s=1e-6)
    body = await _home(site, site.customer)
    assert body["source"] == "fallback" and body["fallback_reason"] == "timeout", body
    because = _movies(body)["Night Chase"]["because"]
    assert because["title"] == "Old Action" and because["similarity"] is None
