"""Two implicit-feedback models in torch, trained on sampled negatives with a logistic loss.

``mf``: a user vector · an item vector + an item bias. ``neumf``: NeuMF (He et al. 2017), a GMF
tower (element-wise product) beside an MLP tower over the concatenated embeddings, joined by one
output layer. Each user is a row of one table (for NeuMF the GMF half, then the MLP half), so
both models score a user *representation*: the trained row for evaluation, or one folded in
from the user's items (``TrainedModel.fold_in``) for serving, with the item side frozen.

The fold-in minimises the training objective for one user: logistic loss on their items, the
expected weight of sampled negatives on every other item, and the same L2 penalty. MF solves it
by Newton's method (a convex problem in d dimensions); NeuMF by a few L-BFGS steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ml.recommender.interactions import Interactions

KINDS = ("mf", "neumf")


@dataclass(frozen=True)
class FitConfig:
    """How to train one model; ``defaults(kind)`` gives the tuned settings."""

    kind: str
    dim: int = 64  # embedding width (NeuMF: per tower)
    epochs: int = 15
    negatives: int = 4  # sampled negatives per positive
    batch_size: int = 1024
    lr: float = 0.002
    l2: float = 1e-4  # per-example L2 on the embeddings it touches
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; one of {', '.join(KINDS)}")
        for name in ("dim", "epochs", "negatives", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.lr <= 0 or self.l2 < 0:
            raise ValueError("lr must be positive and l2 not negative")


def defaults(kind: str, **overrides: Any) -> FitConfig:
    """The tuned configuration of ``kind``, with ``overrides`` (e.g. ``epochs=3``)."""
    tuned = {
        "mf": FitConfig("mf", dim=64, epochs=15, lr=0.002, l2=3e-3),
        "neumf": FitConfig("neumf", dim=32, epochs=10, lr=0.001, l2=1e-5),
    }
    if kind not in tuned:
        raise ValueError(f"unknown model kind {kind!r}; one of {', '.join(KINDS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(tuned[kind], **overrides)


class _MF(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.users = nn.Embedding(n_users, dim)
        self.items = nn.Embedding(n_items, dim)
        self.bias = nn.Embedding(n_items, 1)
        for table, std in ((self.users, 0.1), (self.items, 0.1), (self.bias, 0.0)):
            nn.init.normal_(table.weight, std=std)

    def scores(self, reps: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits of (n, m) ``items`` for (n, r) user representations."""
        return torch.einsum("nd,nmd->nm", reps, self.items(items)) + self.bias(items)[..., 0]


class _NeuMF(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.users = nn.Embedding(n_users, 2 * dim)  # [GMF | MLP]
        self.items = nn.Embedding(n_items, 2 * dim)
        self.mlp = nn.Sequential(
            nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, dim // 2), nn.ReLU()
        )
        self.out = nn.Linear(dim + dim // 2, 1)
        for table in (self.users, self.items):
            nn.init.normal_(table.weight, std=0.1)

    def scores(self, reps: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        d = self.dim
        q = self.items(items)
        gmf = reps[:, None, :d] * q[..., :d]
        towers = torch.cat([reps[:, None, d:].expand(-1, q.shape[1], -1), q[..., d:]], dim=-1)
        return self.out(torch.cat([gmf, self.mlp(towers)], dim=-1))[..., 0]


_NETS = {"mf": _MF, "neumf": _NeuMF}


class TrainedModel:
    """A trained model: scores for known users, fold-in for anyone, vectors for an ANN index."""

    def __init__(self, config: FitConfig, net: nn.Module, n_users: int, n_items: int) -> None:
        self.config, self.net, self.n_users, self.n_items = config, net.eval(), n_users, n_items
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        self._items = net.items.weight.numpy()
        self._bias = net.bias.weight.numpy()[:, 0] if config.kind == "mf" else None

    @property
    def kind(self) -> str:
        return self.config.kind

    def score(self, user_index: int | np.ndarray, item_indices: np.ndarray) -> np.ndarray:
        """Logits of trained users: one user and (m,) items, or (n,) users and (n, m) items."""
        users = np.atleast_1d(np.asarray(user_index, dtype=np.int64))
        reps = self.net.users.weight[torch.from_numpy(users)].numpy()
        scores = self.score_vectors(reps, np.asarray(item_indices).reshape(len(users), -1))
        return scores[0] if np.ndim(user_index) == 0 else scores

    def score_vectors(self, reps: np.ndarray, item_indices: np.ndarray) -> np.ndarray:
        """Logits of (n, m) items for (n, r) user representations (trained or folded in)."""
        with torch.no_grad():
            logits = self.net.scores(
                torch.from_numpy(np.asarray(reps, dtype=np.float32)),
                torch.from_numpy(np.asarray(item_indices, dtype=np.int64)),
            )
        return logits.numpy()

    def score_folded(self, rep: np.ndarray, item_indices: np.ndarray) -> np.ndarray:
        """Logits of (m,) items for one representation."""
        if self.kind == "mf":
            return self._items[item_indices] @ rep + self._bias[item_indices]
        return self.score_vectors(rep[None], np.asarray(item_indices)[None])[0]

    def fold_in(self, item_indices: np.ndarray) -> np.ndarray:
        """A user's representation from their items (indices), the item side frozen."""
        items = np.unique(np.asarray(item_indices, dtype=np.int64))
        if len(items) == 0 or items[0] < 0 or items[-1] >= self.n_items:
            raise ValueError("fold_in needs at least one known item index")
        others = np.ones(self.n_items, dtype=bool)
        others[items] = False
        k, neg = len(items), self.config.negatives
        weight = neg * k / self.n_items  # expected draws of each other item as a negative
        l2 = self.config.l2 * k * (1 + neg)  # the penalty the user's examples carried
        if self.kind == "mf":
            return _newton(self._items, self._bias, others, weight, l2)
        return self._lbfgs(items, others, weight, l2)

    def _lbfgs(self, items: np.ndarray, others: np.ndarray, weight: float, l2: float) -> np.ndarray:
        every = torch.arange(self.n_items)[None]
        target = torch.from_numpy(~others).float()
        mass = torch.where(target > 0, 1.0, weight)
        rep = self.net.users.weight.mean(0, keepdim=True).clone().requires_grad_(True)
        solver = torch.optim.LBFGS([rep], lr=1.0, max_iter=8, line_search_fn="strong_wolfe")

        def objective() -> torch.Tensor:
            solver.zero_grad()
            logits = self.net.scores(rep, every)[0]
            loss = nn.functional.binary_cross_entropy_with_logits(
                logits, target, weight=mass, reduction="sum"
            )
            loss = loss + l2 * rep.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            solver.step(objective)
        return rep.detach()[0].numpy()

    @property
    def item_embeddings(self) -> np.ndarray:
        """(n_items, e) float32 item vectors whose inner product with ``query(rep)`` ranks items:
        exactly the MF logit (the bias rides in the last column), NeuMF's GMF tower."""
        if self.kind == "mf":
            return np.hstack([self._items, self._bias[:, None]]).astype(np.float32)
        d = self.config.dim
        return (self._items[:, :d] * self.net.out.weight.numpy()[0, :d]).astype(np.float32)

    def query(self, rep: np.ndarray) -> np.ndarray:
        """The ANN query vector of a representation (see ``item_embeddings``)."""
        if self.kind == "mf":
            return np.append(rep, 1.0).astype(np.float32)
        return np.asarray(rep[: self.config.dim], dtype=np.float32)

    def save(self, path: Path) -> None:
        state = {
            "config": dataclasses.asdict(self.config),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "state": self.net.state_dict(),
        }
        torch.save(state, path)

    @classmethod
    def load(cls, path: Path) -> TrainedModel:
        state = torch.load(path, weights_only=True)
        config = FitConfig(**state["config"])
        net = _NETS[config.kind](state["n_users"], state["n_items"], config.dim)
        net.load_state_dict(state["state"])
        return cls(config, net, state["n_users"], state["n_items"])


def _newton(
    items: np.ndarray,
    bias: np.ndarray,
    others: np.ndarray,
    weight: float,
    l2: float,
    steps: int = 10,
) -> np.ndarray:
    """Minimise the one-user MF objective (positives: the items not in ``others``) by Newton's
    method from zero."""
    target = (~others).astype(np.float64)
    mass = np.where(others, weight, 1.0)
    q = items.astype(np.float64)
    rep = np.zeros(q.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(q @ rep + bias)))
        gradient = q.T @ (mass * (p - target)) + 2 * l2 * rep
        hessian = (q.T * (mass * p * (1 - p))) @ q + 2 * l2 * np.eye(len(rep))
        step = np.linalg.solve(hessian, gradient)
        rep -= step
        if np.abs(step).max() < 1e-5:
            break
    return rep.astype(np.float32)


def fit(interactions: Interactions, config: FitConfig, progress: bool = True) -> TrainedModel:
    """Train ``config.kind`` on ``interactions`` (every one a positive), deterministically."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    rng = np.random.default_rng(config.seed)
    n_users, n_items = interactions.n_users, interactions.n_items
    net = _NETS[config.kind](n_users, n_items, config.dim)
    solver = torch.optim.Adam(net.parameters(), lr=config.lr)
    known = np.sort(interactions.users * n_items + interactions.items)
    for _ in tqdm(range(config.epochs), desc=f"train {config.kind}", disable=not progress):
        users, items, labels = _epoch(interactions, known, config.negatives, rng)
        for batch in np.array_split(
            rng.permutation(len(users)), -(-len(users) // config.batch_size)
        ):
            u = torch.from_numpy(users[batch])
            i = torch.from_numpy(items[batch])
            reps = net.users(u)
            logits = net.scores(reps, i[:, None])[:, 0]
            loss = nn.functional.binary_cross_entropy_with_logits(
                logits, torch.from_numpy(labels[batch])
            )
            penalty = reps.pow(2).sum(1) + net.items(i).pow(2).sum(1)
            loss = loss + config.l2 * penalty.mean()
            solver.zero_grad()
            loss.backward()
            solver.step()
    return TrainedModel(config, net, n_users, n_items)


def _epoch(
    interactions: Interactions, known: np.ndarray, negatives: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every positive, and ``negatives`` uniform draws per positive that the user never had."""
    n_items = interactions.n_items
    users = np.repeat(interactions.users, negatives)
    drawn = rng.integers(0, n_items, size=len(users))
    fresh = ~np.isin(users * n_items + drawn, known, assume_unique=False)
    users = np.concatenate([interactions.users, users[fresh]])
    items = np.concatenate([interactions.items, drawn[fresh]])
    labels = np.concatenate([np.ones(len(interactions)), np.zeros(fresh.sum())])
    return users, items, labels.astype(np.float32)
