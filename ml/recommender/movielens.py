"""The MovieLens ratings (GroupLens) as implicit feedback, for offline evaluation.

Every rating counts as an interaction, whatever its value (the NCF paper's convention). The data
is read where it lies; its license forbids redistribution, so nothing of it enters the project.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ml.recommender.interactions import Interactions

# file name -> field separator; ml-100k first, ml-1m second
FORMATS = (("u.data", "\t"), ("ratings.dat", "::"))


def load(directory: Path) -> Interactions:
    """The interactions of an ml-100k (``u.data``) or ml-1m (``ratings.dat``) directory.

    >>> load(Path("../shared/data/ml-100k")).n_users
    943
    """
    directory = Path(directory)
    for name, separator in FORMATS:
        path = directory / name
        if path.is_file():
            return Interactions.from_triples(_triples(path, separator))
    names = " or ".join(name for name, _ in FORMATS)
    raise ValueError(f"{directory} holds no MovieLens ratings ({names})")


def _triples(path: Path, separator: str) -> Iterator[tuple[int, int, int]]:
    with path.open(encoding="latin-1") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split(separator)
            try:
                user, item, _rating, timestamp = (int(f) for f in fields)
            except ValueError:
                raise ValueError(
                    f"{path}:{number}: expected user{separator}item{separator}rating"
                    f"{separator}timestamp, got {line.strip()!r}"
                ) from None
            yield user, item, timestamp
