"""How long a quote batch takes: 16 shows × 4 priced seat categories × a 21-point price grid,
each show two weeks out (every time bucket left to predict), through ``PricingModel.quote``.

    python -m ml.pricing.bench DATA_DIR/models/pricing/VERSION
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from pathlib import Path

from ml.artifacts import ArtifactStore
from ml.pricing.facts import ShowFacts
from ml.pricing.optimizer import PriceState
from ml.pricing.serving import PricingModel, QuoteRequest

NOW = dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)
# Base prices large enough that ±10 % spans more than 20 steps of 25 cents: a full grid.
BASES = {"standard": 5000, "premium": 6500, "recliner": 8000, "deluxe": 9000}  # one unseen


def sample_requests(shows: int = 16) -> list[QuoteRequest]:
    requests = []
    for i in range(shows):
        facts = ShowFacts(
            show_id=i,
            starts_at=NOW + dt.timedelta(days=14, hours=i),
            weekday=i % 7,
            hour=12 + i % 10,
            movie_id=i,
            movie_popularity=5 * i,
            movie_age_days=i,
            screen_id=i,
            screen_seats=200,
            seats=dict.fromkeys(BASES, 50),
            city_id=1 + i % 3,
            country="US",
            holiday_days=i,
            base_prices=BASES,
            currency="USD",
            city_bookings=100 + i,
        )
        requests.append(QuoteRequest(facts, dict.fromkeys(BASES, 0.1), PriceState(), NOW))
    return requests


def bench(model: PricingModel, rounds: int = 200) -> dict[str, float]:
    """Milliseconds per quote batch: median and 95th percentile over ``rounds`` batches."""
    requests = sample_requests()
    model.quote(requests)  # warm up
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        model.quote(requests)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * len(times))]}


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    path = Path(argv[0])
    artifact = ArtifactStore(path.parent.parent).get("pricing", path.name)
    print(bench(PricingModel.load(artifact)))


if __name__ == "__main__":
    main(sys.argv[1:])
