"""A pure-Python TF-IDF over the movies' texts: the semantic ranking when the embedding
deployment is absent, slow or failing (and the cheap half of autocomplete's fuzziness).

    >>> index = TfIdf({1: "a haunted lighthouse", 2: "a heist in paris"})
    >>> index.scores("haunted house", [1, 2])
    [0.7..., 0.0]
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping

_STOP = frozenset(
    " ".join(
        (
            "a an the of and or to in on at for from with by is are his her their who must its",
            "it as into be that this",
        )
    ).split()
)


def tokens(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]


def _stem(word: str) -> str:
    """A light stemmer: plurals and common endings, so "haunted" meets "haunting"."""
    for suffix in ("ing", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


class TfIdf:
    def __init__(self, texts: Mapping[int, str]) -> None:
        counted = {key: Counter(tokens(text)) for key, text in texts.items()}
        df: Counter[str] = Counter()
        for counts in counted.values():
            df.update(counts.keys())
        n = max(1, len(counted))
        self.idf = {term: math.log((1 + n) / (1 + f)) + 1.0 for term, f in df.items()}
        self.vectors = {key: self._unit(counts) for key, counts in counted.items()}

    def _unit(self, counts: Mapping[str, int]) -> dict[str, float]:
        vec = {t: (1 + math.log(c)) * self.idf.get(t, 0.0) for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items() if v}

    def scores(self, query: str, keys: Iterable[int]) -> list[float]:
        """Cosine similarity of ``query`` with each key's text (0 for unknown keys)."""
        q = self._unit(Counter(tokens(query)))
        return [
            sum(w * self.vectors.get(key, {}).get(t, 0.0) for t, w in q.items()) for key in keys
        ]
