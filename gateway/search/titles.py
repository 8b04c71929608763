"""Movie titles in a query, typos and all: every run of adjacent words is compared with every
title (rapidfuzz's normalized Indel ratio, leading articles dropped); only confident matches
count, and titles nearly as good as the best one come along ("Frozen Hearts" and "Frozen
Hearts 2")."""

from __future__ import annotations

import re
from collections.abc import Mapping

from rapidfuzz import fuzz, process

THRESHOLD = 86.0  # ratio (0-100) a run of words needs to name a title
SHORT_THRESHOLD = 95.0  # ... when the run is shorter than 7 characters
NEAR_BEST = 4.0  # titles within this of the best match count too
MAX_WORDS = 7


def normalize(text: str) -> str:
    words = re.sub(r"[^\w ]+", " ", text.lower().replace("'s", "s")).split()
    while words and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def match_titles(
    text: str, titles: Mapping[int, str]
) -> tuple[tuple[int, int], list[tuple[int, float]]] | None:
    """((start, end) of the words in ``text``, [(movie id, score 0..1), ...]) of the best
    title match, or None."""
    if not titles:
        return None
    choices = {movie_id: normalize(title) for movie_id, title in titles.items()}
    words = list(re.finditer(r"\S+", text))
    best: tuple[float, int, int, list[tuple[int, float]], int] | None = None
    for i in range(len(words)):
        for j in range(i, min(len(words), i + MAX_WORDS)):
            if j > i and words[j].start() - words[j - 1].end() > 1:
                break  # something was taken between them
            phrase = normalize(text[words[i].start() : words[j].end()])
            if len(phrase) < 4:
                continue
            cutoff = SHORT_THRESHOLD if len(phrase) < 7 else THRESHOLD
            found = process.extract(
                phrase, choices, scorer=fuzz.ratio, score_cutoff=cutoff, limit=5
            )
            if not found:
                continue
            top = found[0][1]
            # a longer run that matches as well wins (it takes more words of the title)
            longer = best is not None and top == best[0] and j - i > best[4]
            if best is None or top > best[0] or longer:
                matches = [
                    (int(key), score / 100) for _, score, key in found if score >= top - NEAR_BEST
                ]
                best = (top, words[i].start(), words[j].end(), matches, j - i)
    if best is None:
        return None
    return (best[1], best[2]), best[3]
