"""The recommender trained on the demo history: the artifact and its gate, the model against
popularity and item-kNN, serving from candidates only, fold-in of a new booking, and the demo
customers' hidden tastes learned back."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import numpy as np
import pytest

from ml.artifacts import Artifact, ArtifactStore
from ml.recommender import Interactions, RecommenderModel, evaluate_database, load_bookings, train
from ml.recommender.evaluate import leave_one_out
from storage.demo.catalog import make_cities, make_theaters, sizes
from storage.demo.generate import PAST_DAYS, USERS_PER_SCALE
from storage.demo.people import Customer, make_customers
from tests.ml.conftest import DEMO_SCALE, DEMO_SEED


@pytest.fixture(scope="module")
async def trained(demo_history, tmp_path_factory) -> tuple[ArtifactStore, Artifact]:
    conn = await demo_history.connect()
    try:
        store = ArtifactStore(tmp_path_factory.mktemp("models"))
        artifact = await train(conn, store, progress=False, seed=0)
    finally:
        await conn.close()
    return store, artifact


@pytest.fixture(scope="module")
async def bookings(demo_history) -> tuple[dict[int, list[int]], dict[int, list[str]]]:
    """Each user's booked movies (oldest first) and each movie's genres."""
    conn = await demo_history.connect()
    try:
        data = await load_bookings(conn)
        genres = {
            r["id"]: list(r["genres"]) for r in await conn.fetch("SELECT id, genres FROM movies")
        }
    finally:
        await conn.close()
    history: dict[int, list[int]] = defaultdict(list)
    for row in np.lexsort((data.items, data.times, data.users)):
        history[int(data.user_ids[data.users[row]])].append(int(data.item_ids[data.items[row]]))
    return dict(history), genres


async def test_training_commits_a_gated_artifact_that_beats_popularity(trained) -> None:
    store, artifact = trained
    assert store.latest("recommender") == artifact
    assert artifact.gate.passed and "popularity" in artifact.gate.rule
    assert artifact.file("eval.png").stat().st_size > 10_000
    report = artifact.metrics
    for metric in ("hr@10", "ndcg@10"):
        assert report["model"][metric] > report["popularity"][metric]
        assert report["fold_in"][metric] > report["popularity"][metric]  # the serving path
        assert 0 < report["itemknn"][metric] < 1
    assert set(report["candidates"]) == {"mf", "neumf"} and report["chosen"] in report["candidates"]
    timed = report["time_split"]
    assert timed["model"]["recall@10"] > timed["popularity"]["recall@10"]
    assert artifact.data["source"] == "bookings" and artifact.data["interactions"] > 1000
    print(
        "\nrecommender on the demo:",
        {name: report[name] for name in ("model", "popularity", "itemknn", "fold_in", "data")},
    )


async def test_recommends_only_playing_movies_never_booked_ones(trained, bookings) -> None:
    model = RecommenderModel.load(trained[1])
    history, _ = bookings
    user, booked = next((u, h) for u, h in sorted(history.items()) if len(h) >= 4)
    known = sorted(model.known_items())
    candidates = {m: 1.0 if n % 2 else 0.3 for n, m in enumerate(known[::2])}
    candidates.update(dict.fromkeys(booked, 1.0))  # booked movies still playing
    picks = model.recommend(booked, candidates, k=5)
    assert 0 < len(picks) <= 5
    assert all(m in candidates and m not in booked for m, _ in picks)
    assert [s for _, s in picks] == sorted((s for _, s in picks), reverse=True)
    assert model.recommend([], candidates) == []
    assert model.recommend([10**9], candidates) == []  # no known movie: cold start is the caller's
    with pytest.raises(ValueError, match="weight"):
        model.recommend(booked, {known[0]: 1.5})
    assert model.version == trained[1].version


async def test_a_new_booking_moves_the_recommendations(trained, bookings) -> None:
    model = RecommenderModel.load(trained[1])
    history, genres = bookings
    booked = next(h for _, h in sorted(history.items()) if len(h) == 3)
    before = model.recommend(booked, None, k=5)
    liked = {genres[m][0] for m in booked}
    other = next(
        m for m, _ in reversed(model.recommend(booked, None, k=100)) if genres[m][0] not in liked
    )
    after = model.recommend([*booked, other], None, k=5)
    assert after != before and other not in dict(after)


def _customers(today: dt.date) -> dict[int, Customer]:
    """The demo's ground truth, rebuilt the way storage.demo.generate seeds it."""
    rng = random.Random(f"{DEMO_SEED}/catalog")
    n_cities, n_theaters, _ = sizes(DEMO_SCALE)
    theaters = make_theaters(rng, make_cities(rng, n_cities), n_theaters)
    count = max(50, round(USERS_PER_SCALE * DEMO_SCALE))
    people = random.Random(f"{DEMO_SEED}/people")
    first = today - dt.timedelta(days=PAST_DAYS)
    return {c.id: c for c in make_customers(people, count, theaters, first)}


async def test_learns_the_customers_hidden_tastes_back(demo_history, trained, bookings) -> None:
    """Top-5 picks match a customer's favourite genres more often than popularity's do."""
    model = RecommenderModel.load(trained[1])
    history, genres = bookings
    customers = _customers(demo_history.today)
    popular = [int(m) for m in model.item_ids[np.argsort(-model.popularity, kind="stable")]]
    matched = {"model": [], "popularity": []}
    for user, booked in sorted(history.items()):
        if len(booked) < 3 or user not in customers:
            continue
        tastes = {genre for genre, _ in customers[user].tastes}
        picks = [m for m, _ in model.recommend(booked, None, k=5)]
        usual = [m for m in popular if m not in booked][:5]
        for name, movies in (("model", picks), ("popularity", usual)):
            matched[name].append(np.mean([genres[m][0] in tastes for m in movies]))
    model_share, popular_share = np.mean(matched["model"]), np.mean(matched["popularity"])
    print(
        f"\nfavourite-genre share of the top 5: model {model_share:.3f},",
        f"popularity {popular_share:.3f}",
    )
    assert len(matched["model"]) > 200
    assert model_share > popular_share + 0.05


async def test_evaluate_database_reports_without_an_artifact(demo_history) -> None:
    conn = await demo_history.connect()
    try:
        report = await evaluate_database(conn, progress=False, seed=1, epochs=1)
    finally:
        await conn.close()
    assert {"model", "popularity", "itemknn", "time_split", "chosen", "candidates"} <= set(report)
    assert report["data"]["source"] == "bookings"
    assert report["popularity"]["hr@10"] < report["itemknn"]["hr@10"]


def test_interactions_keep_one_row_per_pair_with_its_latest_time() -> None:
    data = Interactions.from_triples([(7, 100, 5), (7, 100, 9), (7, 101, 6), (8, 100, 3)])
    assert (len(data), data.n_users, data.n_items) == (3, 2, 2)
    rows = {
        (int(data.user_ids[u]), int(data.item_ids[i])): int(t)
        for u, i, t in zip(data.users, data.items, data.times, strict=True)
    }
    assert rows == {(7, 100): 9, (7, 101): 6, (8, 100): 3}
    split = leave_one_out(data, seed=0)
    assert [int(data.item_ids[i]) for i in split.targets] == [100]  # user 7's latest
    assert len(split.train) == 2 and set(split.negatives[0]) == {-1}  # nothing left unseen
    with pytest.raises(ValueError):
        Interactions.from_triples([])
