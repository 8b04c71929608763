"""Offline evaluation of the recommender, two protocols, against two baselines.

Leave-one-out (the NCF paper's protocol): each user with two or more interactions loses their
latest one (ties between equal timestamps broken by a seeded shuffle, so neither old nor new
item ids are favoured), which is ranked among up to 100 items the
user never interacted with (sampled once with the seed, the same for every method; a catalog
too small for 100 gives all it has). A method's rank counts every negative scoring at least the
held-out item's score (ties count against it): HR@10 and NDCG@10.

Time split: train on the interactions before the 80th percentile of the timestamps, rank every
item each user did not have in training, and compare the top 10 with what they turned to after
the cut: Precision@10, Recall@10 and catalog coverage (the share of items in someone's top 10).

``evaluate`` picks MF or NeuMF by NDCG@10 on a validation split carved from the training data
(each user's latest training interaction), never on the test items, and reports it as "model".
It also scores the serving path: users folded in from their training items (``fold_in``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ml.recommender import movielens
from ml.recommender.baselines import ItemKNN, Popularity
from ml.recommender.interactions import Interactions
from ml.recommender.models import KINDS, TrainedModel, defaults, fit

K = 10
NEGATIVES = 100
CUT_QUANTILE = 0.8
FOLD_IN_USERS = 1000  # users scored through the serving path (a fixed sample)
_BATCH = 512


class Scorer(Protocol):
    def score(self, user_index: np.ndarray, item_indices: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class LeaveOneOut:
    """Training data, and per evaluated user the held-out item and negatives (-1 pads)."""

    train: Interactions
    users: np.ndarray
    targets: np.ndarray
    negatives: np.ndarray


@dataclass(frozen=True)
class TimeSplit:
    train: Interactions
    cut: int  # epoch seconds; training holds what came before
    users: np.ndarray
    test: list[np.ndarray]  # items each user turned to after the cut, new to them


def leave_one_out(data: Interactions, *, seed: int, negatives: int = NEGATIVES) -> LeaveOneOut:
    """Hold out every user's latest interaction (users with at least two)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.permutation(len(data)), data.times, data.users))
    users = data.users[order]
    last = np.ones(len(users), dtype=bool)
    last[:-1] = users[1:] != users[:-1]
    counts = np.bincount(data.users, minlength=data.n_users)
    held = order[last & (counts[users] >= 2)]
    keep = np.ones(len(data), dtype=bool)
    keep[held] = False
    seen = data.matrix().tolil().rows
    sampled = np.full((len(held), negatives), -1, dtype=np.int64)
    for row, user in enumerate(data.users[held]):
        unseen = np.setdiff1d(np.arange(data.n_items), seen[user], assume_unique=True)
        drawn = rng.choice(unseen, size=min(negatives, len(unseen)), replace=False)
        sampled[row, : len(drawn)] = drawn
    return LeaveOneOut(data.subset(keep), data.users[held], data.items[held], sampled)


def time_split(data: Interactions, quantile: float = CUT_QUANTILE) -> TimeSplit:
    """Train before the ``quantile`` of the timestamps, test each known user after it."""
    cut = int(np.quantile(data.times, quantile))
    before = data.times < cut
    train = data.subset(before)
    known = np.bincount(train.users, minlength=data.n_users) > 0
    later = data.subset(~before & known[data.users])  # one row per pair: new to the user
    users = np.unique(later.users)
    order = np.argsort(later.users, kind="stable")
    test = np.split(later.items[order], np.searchsorted(later.users[order], users[1:]))
    return TimeSplit(train, cut, users, test)


def rank_metrics(scorer: Scorer, split: LeaveOneOut) -> dict[str, float]:
    """HR@10 and NDCG@10 of ``scorer`` on a leave-one-out split."""
    ranks = []
    for rows in _batches(len(split.users)):
        pads = split.negatives[rows] < 0
        items = np.hstack([split.targets[rows, None], np.where(pads, 0, split.negatives[rows])])
        scores = scorer.score(split.users[rows], items)
        ranks.append(((scores[:, 1:] >= scores[:, :1]) & ~pads).sum(axis=1))
    return _hit_metrics(np.concatenate(ranks))


def fold_in_metrics(model: TrainedModel, split: LeaveOneOut, seed: int) -> dict[str, float]:
    """HR@10 and NDCG@10 of the serving path: each user folded in from their training items."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(split.users))[:FOLD_IN_USERS])
    history = split.train.matrix().tolil().rows
    ranks = []
    for row in rows:
        known = np.asarray(history[split.users[row]], dtype=np.int64)
        negatives = split.negatives[row][split.negatives[row] >= 0]
        scores = model.score_folded(
            model.fold_in(known), np.concatenate([[split.targets[row]], negatives])
        )
        ranks.append((scores[1:] >= scores[0]).sum())
    return _hit_metrics(np.asarray(ranks))


def topk_metrics(scorer: Scorer, split: TimeSplit) -> dict[str, float]:
    """Precision@10, Recall@10 and coverage of the top 10 on a time split."""
    n_items = split.train.n_items
    seen = split.train.matrix()
    precision, recall, shown = [], [], set()
    for rows in _batches(len(split.users)):
        users = split.users[rows]
        scores = scorer.score(users, np.tile(np.arange(n_items), (len(users), 1)))
        scores = np.where(seen[users].toarray() > 0, -np.inf, scores.astype(np.float64))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        for row, picks in zip(rows, top, strict=True):
            hits = np.isin(picks, split.test[row]).sum()
            precision.append(hits / K)
            recall.append(hits / len(split.test[row]))
            shown.update(picks.tolist())
    return {
        "precision@10": float(np.mean(precision)),
        "recall@10": float(np.mean(recall)),
        "coverage": len(shown) / n_items,
    }


def evaluate(
    data: Interactions, *, seed: int = 0, epochs: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """The full report (both protocols, both baselines, both candidates) on ``data``."""
    started = time.perf_counter()
    test = leave_one_out(data, seed=seed)
    if len(test.users) == 0:
        raise ValueError("no user has two interactions: nothing to evaluate")
    validation = leave_one_out(test.train, seed=seed + 1)
    candidates: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        mark = time.perf_counter()
        tried = fit(validation.train, defaults(kind, epochs=epochs, seed=seed), progress)
        candidates[kind] = {
            "validation": rank_metrics(tried, validation),
            "training_s": round(time.perf_counter() - mark, 2),
        }
    chosen = max(KINDS, key=lambda kind: candidates[kind]["validation"]["ndcg@10"])
    model = fit(test.train, defaults(chosen, epochs=epochs, seed=seed), progress)
    split = time_split(data)
    timed = fit(split.train, defaults(chosen, epochs=epochs, seed=seed), progress)
    return {
        "model": rank_metrics(model, test),
        "popularity": rank_metrics(Popularity(test.train), test),
        "itemknn": rank_metrics(ItemKNN(test.train), test),
        "fold_in": fold_in_metrics(model, test, seed),
        "time_split": {
            "model": topk_metrics(timed, split),
            "popularity": topk_metrics(Popularity(split.train), split),
            "itemknn": topk_metrics(ItemKNN(split.train), split),
            "users": len(split.users),
            "cut": int(split.cut),
        },
        "chosen": chosen,
        "candidates": candidates,
        "users_evaluated": len(test.users),
        "training_s": round(time.perf_counter() - started, 2),
    }


def evaluate_movielens(
    directory: Path, *, progress: bool = True, seed: int = 0, epochs: int | None = None
) -> dict[str, Any]:
    """``evaluate`` on an ml-100k or ml-1m directory.

    >>> print(format_report(evaluate_movielens(Path("../shared/data/ml-100k"))))
    """
    data = movielens.load(directory)
    report = evaluate(data, seed=seed, epochs=epochs, progress=progress)
    report["data"] = {"source": f"movielens:{Path(directory).name}", **data.summary()}
    return report


def format_report(report: dict[str, Any]) -> str:
    """A small table of the report, one row per method."""
    timed = report["time_split"]
    lines = [
        f"{'method':<16}{'HR@10':>8}{'NDCG@10':>9}{'P@10':>8}{'R@10':>8}{'cover':>8}",
    ]
    for name, label in (("model", report["chosen"]), ("popularity", ""), ("itemknn", "")):
        loo, top = report[name], timed[name]
        title = f"{name} ({label})" if label else name
        lines.append(
            f"{title:<16}{loo['hr@10']:>8.3f}{loo['ndcg@10']:>9.3f}"
            f"{top['precision@10']:>8.3f}{top['recall@10']:>8.3f}{top['coverage']:>8.3f}"
        )
    fold = report["fold_in"]
    lines.append(f"{'fold-in':<16}{fold['hr@10']:>8.3f}{fold['ndcg@10']:>9.3f}")
    for kind, result in report["candidates"].items():
        val = result["validation"]
        lines.append(
            f"candidate {kind}: validation HR@10 {val['hr@10']:.3f} NDCG@10 {val['ndcg@10']:.3f}"
            f" ({result['training_s']:.1f} s)"
        )
    lines.append(
        f"{report['users_evaluated']} users evaluated, {report['training_s']:.1f} s in all"
    )
    return "\n".join(lines)


def _hit_metrics(ranks: np.ndarray) -> dict[str, float]:
    hits = ranks < K
    gains = np.where(hits, 1.0 / np.log2(ranks + 2.0), 0.0)
    return {"hr@10": float(hits.mean()), "ndcg@10": float(gains.mean())}


def _batches(n: int) -> list[np.ndarray]:
    return [np.arange(start, min(n, start + _BATCH)) for start in range(0, n, _BATCH)]
