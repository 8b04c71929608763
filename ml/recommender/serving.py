"""The serving core: a trained model, its item index and the rerank, read from an artifact.

A request folds the user in from their booked movies (no retrain: a booking made a minute ago
counts), asks an HNSW inner-product index for the nearest movies, keeps those actually playing
near the user, scores the playing movies the index missed directly, reranks by model probability
times the candidate's weight to the power ``WEIGHT_POWER``, and drops what they already booked.
``explain`` names, for each recommended movie, the booked movie nearest to it in the item space.

Artifact files: ``model.pt`` (weights and config), ``ids.npz`` (external user and movie id per
index, and each movie's training popularity), ``items.faiss`` (the index over
``TrainedModel.item_embeddings``). Reads are thread-safe: nothing is written after ``load``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import faiss
import numpy as np

from ml.artifacts import Artifact, ArtifactError
from ml.recommender.interactions import Interactions
from ml.recommender.models import TrainedModel

MODEL_FILE, IDS_FILE, INDEX_FILE = "model.pt", "ids.npz", "items.faiss"
ANN_NEIGHBOURS = 200  # movies asked of the index per request
WEIGHT_POWER = 0.5  # a movie with a quarter of the showtimes keeps half its score
HNSW_LINKS, HNSW_BUILD, HNSW_SEARCH = 32, 80, 256


def build_index(embeddings: np.ndarray) -> faiss.Index:
    """An HNSW inner-product index over the (n, e) float32 item embeddings."""
    index = faiss.IndexHNSWFlat(embeddings.shape[1], HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_BUILD
    index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
    index.hnsw.efSearch = HNSW_SEARCH
    return index


def write_files(directory: Path, model: TrainedModel, data: Interactions) -> None:
    """Write what ``RecommenderModel.load`` reads into an artifact draft's directory."""
    model.save(directory / MODEL_FILE)
    np.savez(
        directory / IDS_FILE,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        popularity=data.item_counts(),
    )
    faiss.write_index(build_index(model.item_embeddings), str(directory / INDEX_FILE))


class RecommenderModel:
    """Recommendations for one user's history among the movies playing near them."""

    def __init__(
        self,
        model: TrainedModel,
        item_ids: np.ndarray,
        popularity: np.ndarray,
        index: faiss.Index,
        version: str,
    ) -> None:
        if not len(item_ids) == len(popularity) == index.ntotal == model.n_items:
            raise ArtifactError("the model, its movie ids and its index disagree in size")
        self.model, self.item_ids, self.popularity = model, item_ids, popularity
        self.index, self.version = index, version
        self._index_of = {int(movie): n for n, movie in enumerate(item_ids)}
        self._unit = _unit_rows(model)

    @classmethod
    def load(cls, artifact: Artifact) -> RecommenderModel:
        if artifact.kind != "recommender":
            raise ArtifactError(f"a {artifact.kind} artifact is no recommender")
        try:
            model = TrainedModel.load(artifact.file(MODEL_FILE))
            with np.load(artifact.file(IDS_FILE)) as ids:
                item_ids, popularity = ids["item_ids"], ids["popularity"]
            index = faiss.read_index(str(artifact.file(INDEX_FILE)))
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"unreadable recommender at {artifact.path}: {exc}") from exc
        index.hnsw.efSearch = HNSW_SEARCH
        return cls(model, item_ids, popularity, index, artifact.version)

    def known_items(self) -> set[int]:
        """The movie ids the model learned."""
        return set(self._index_of)

    def recommend(
        self, history: Sequence[int], candidates: Mapping[int, float] | None, k: int = 10
    ) -> list[tuple[int, float]]:
        """Up to ``k`` (movie_id, score) pairs, best first, from ``candidates`` (movie id ->
        weight in (0, 1]; None: any movie) and never from ``history`` (booked movie ids, oldest
        first). [] when no history movie is known: the caller's cold-start rule applies.
        Candidates the model never saw are left out (it cannot score them)."""
        if k < 1:
            raise ValueError("k must be at least 1")
        weights = None if candidates is None else self._indexed(candidates)
        booked = {self._index_of[m] for m in history if m in self._index_of}
        if not booked:
            return []
        rep = self.model.fold_in(np.fromiter(booked, dtype=np.int64))
        pool = self._pool(rep, weights)
        pool = pool[~np.isin(pool, np.fromiter(booked, dtype=np.int64))]
        if len(pool) == 0:
            return []
        scores = 1.0 / (1.0 + np.exp(-self.model.score_folded(rep, pool).astype(np.float64)))
        if weights is not None:
            scores *= np.array([weights[i] for i in pool]) ** WEIGHT_POWER
        best = np.lexsort((self.item_ids[pool], -scores))[:k]
        return [(int(self.item_ids[pool[n]]), float(scores[n])) for n in best]

    def explain(
        self, history: Sequence[int], recommended: Sequence[int]
    ) -> list[tuple[int | None, float | None]]:
        """For each recommended movie, the booked movie (of ``history``, oldest first) most like
        it and their cosine similarity in the model's item space (the latest booked on a tie);
        ``(None, None)`` where the model knows neither it nor any booked movie."""
        booked = [m for m in reversed(dict.fromkeys(history)) if m in self._index_of]
        if not booked:
            return [(None, None)] * len(recommended)
        vectors = self._unit[[self._index_of[m] for m in booked]]
        out: list[tuple[int | None, float | None]] = []
        for movie in recommended:
            at = self._index_of.get(movie)
            if at is None:
                out.append((None, None))
                continue
            similarity = vectors @ self._unit[at]
            best = int(np.argmax(similarity))  # the first maximum: the latest booked
            out.append((int(booked[best]), float(similarity[best])))
        return out

    def _pool(self, rep: np.ndarray, weights: dict[int, float] | None) -> np.ndarray:
        """Item indices to score: the index's nearest, kept to the candidates, and the
        candidates it missed."""
        query = self.model.query(rep)[None]
        _, found = self.index.search(query, min(ANN_NEIGHBOURS, self.index.ntotal))
        nearest = found[0][found[0] >= 0]
        if weights is None:
            return nearest
        kept = [int(i) for i in nearest if int(i) in weights]
        missed = sorted(set(weights).difference(kept))
        return np.array(kept + missed, dtype=np.int64)

    def _indexed(self, candidates: Mapping[int, float]) -> dict[int, float]:
        """The candidates the model knows, by item index; weights checked."""
        for movie, weight in candidates.items():
            if not 0 < weight <= 1:
                raise ValueError(f"candidate {movie} has weight {weight}; weights lie in (0, 1]")
        return {self._index_of[m]: w for m, w in candidates.items() if m in self._index_of}


def _unit_rows(model: TrainedModel) -> np.ndarray:
    """The item vectors at unit length, to compare movies with each other (MF's bias column
    says how popular a movie is, not what it is like, so it is left out)."""
    vectors = model.item_embeddings.astype(np.float64)
    if model.kind == "mf":
        vectors = vectors[:, :-1]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)
