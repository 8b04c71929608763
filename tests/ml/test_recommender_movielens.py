"""The MovieLens loader on small files of both formats, and the NCF protocol on ml-100k (read
from the shared data directory, never copied: its license forbids redistribution)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.recommender import evaluate_movielens, format_report
from ml.recommender.movielens import load
from tests.conftest import SHARED_DATA

ML_100K = SHARED_DATA / "ml-100k"


def test_loads_ml_100k_tabs(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t10\t5\t100\n1\t11\t1\t200\n2\t10\t3\t150\n1\t10\t4\t300\n")
    data = load(tmp_path)
    assert (data.n_users, data.n_items, len(data)) == (2, 2, 3)  # every rating, one per pair
    assert list(data.user_ids) == [1, 2] and list(data.item_ids) == [10, 11]
    assert int(data.times[(data.users == 0) & (data.items == 0)][0]) == 300


def test_loads_ml_1m_double_colons(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("6040::858::4::956703932\n6040::593::5::956703954\n\n")
    data = load(tmp_path)
    assert (data.n_users, data.n_items, len(data)) == (1, 2, 2)
    assert list(data.item_ids) == [593, 858]


def test_refuses_a_directory_without_ratings_or_a_bad_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"u\.data or ratings\.dat"):
        load(tmp_path)
    (tmp_path / "u.data").write_text("1\t10\t5\t100\n1,11,1,200\n")
    with pytest.raises(ValueError, match=r"u\.data:2"):
        load(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not (ML_100K / "u.data").is_file(), reason=f"MovieLens 100K not at {ML_100K}")
def test_beats_item_knn_and_popularity_on_ml_100k() -> None:
    report = evaluate_movielens(ML_100K, progress=False, seed=0, epochs=5)
    print("\n" + format_report(report))
    for metric in ("hr@10", "ndcg@10"):
        assert report["model"][metric] > report["itemknn"][metric] > report["popularity"][metric]
    assert report["data"]["interactions"] == 100_000
