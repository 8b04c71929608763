"""The baselines every model is held against, scoring like ``TrainedModel.score``.

``Popularity``: an item's count of training interactions, the same for everyone.
``ItemKNN``: cosine similarity between the items' user columns, each item keeping its
``neighbours`` most similar items; a user's score for an item is the sum of its similarities to
the user's training items (Sarwar et al. 2001; Deshpande & Karypis 2004).
"""

from __future__ import annotations

import numpy as np

from ml.recommender.interactions import Interactions

NEIGHBOURS = 100


class Popularity:
    def __init__(self, train: Interactions) -> None:
        self.counts = train.item_counts().astype(np.float64)

    def score(self, user_index: int | np.ndarray, item_indices: np.ndarray) -> np.ndarray:
        return self.counts[np.asarray(item_indices)]


class ItemKNN:
    def __init__(self, train: Interactions, neighbours: int = NEIGHBOURS) -> None:
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        matrix = train.matrix()
        norms = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        similarity = (matrix.T @ matrix).toarray() / np.outer(norms, norms)
        np.fill_diagonal(similarity, 0.0)
        if neighbours < similarity.shape[0]:
            # Keep each item's strongest neighbours (the rows it receives scores from).
            weakest = np.argpartition(-similarity, neighbours, axis=1)[:, neighbours:]
            np.put_along_axis(similarity, weakest, 0.0, axis=1)
        self.similarity = similarity.astype(np.float32)
        self.matrix = matrix

    def score(self, user_index: int | np.ndarray, item_indices: np.ndarray) -> np.ndarray:
        users = np.atleast_1d(np.asarray(user_index, dtype=np.int64))
        items = np.asarray(item_indices).reshape(len(users), -1)
        profile = self.matrix[users] @ self.similarity  # (n, n_items) summed similarities
        scores = np.take_along_axis(np.asarray(profile), items, axis=1)
        return scores[0] if np.ndim(user_index) == 0 else scores
