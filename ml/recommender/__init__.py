"""The movie recommender: implicit-feedback collaborative filtering on bookings.

Modules: ``interactions`` (the data, from bookings), ``movielens`` (offline data), ``models``
(MF and NeuMF in torch, with fold-in), ``baselines`` (popularity, item-kNN), ``evaluate`` (the
protocols and the report), ``plots``, ``train`` (Postgres to artifact) and ``serving`` (the
index, fold-in and rerank behind the Serve deployment). Imports nothing of ours but ``ml``'s
artifact store.

    artifact = await train(conn, ArtifactStore(root))
    RecommenderModel.load(artifact).recommend([12, 40], {7: 1.0, 9: 0.5})
"""

from ml.recommender.evaluate import evaluate_movielens, format_report
from ml.recommender.interactions import Interactions, load_bookings
from ml.recommender.models import FitConfig, TrainedModel, defaults, fit
from ml.recommender.serving import RecommenderModel
from ml.recommender.train import GATE_RULE, evaluate_database, train

__all__ = [
    "GATE_RULE",
    "FitConfig",
    "Interactions",
    "RecommenderModel",
    "TrainedModel",
    "defaults",
    "evaluate_database",
    "evaluate_movielens",
    "fit",
    "format_report",
    "load_bookings",
    "train",
]
