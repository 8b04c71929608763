"""A demo history shared by the model tests: one schema, loaded once per session, dropped after.

The models train on it the way ``seatserver train`` does on a real database: through a
connection to that schema.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import storage
from ml.artifacts import KINDS, ArtifactStore
from tests.conftest import TEST_KEYRING, fresh_schema

# Today, so the demo's coming week of shows is on sale for the serving tests.
DEMO_TODAY = dt.date.today()
DEMO_SCALE = 0.1  # 5,000 customers, a year of their bookings
DEMO_SEED = 11


@dataclass(frozen=True)
class DemoHistory:
    database_url: str
    schema: str
    today: dt.date

    async def connect(self) -> object:
        return await storage.connect(self.database_url, schema=self.schema)


@pytest.fixture(scope="session")
async def demo_history(database_url: str) -> AsyncIterator[DemoHistory]:
    async with fresh_schema(database_url, "t_ml") as name:
        conn = await storage.connect(database_url, schema=name)
        try:
            await storage.generate_demo_data(
                conn,
                scale=DEMO_SCALE,
                seed=DEMO_SEED,
                today=DEMO_TODAY,
                keyring=TEST_KEYRING,
                progress=False,
            )
        finally:
            await conn.close()
        yield DemoHistory(database_url, name, DEMO_TODAY)


@pytest.fixture(scope="session")
async def models_dir(demo_history: DemoHistory, tmp_path_factory: Any) -> Path:
    """Every kind of model trained once on the demo history (each passed its gate), for the
    tests that serve them."""
    root: Path = tmp_path_factory.mktemp("models")
    store = ArtifactStore(root)
    conn: Any = await demo_history.connect()
    try:
        for kind in KINDS:
            trainer = importlib.import_module(f"ml.{kind}.train")
            artifact = await trainer.train(conn, store, progress=False, seed=0)
            assert artifact.gate.passed, (kind, artifact.gate)
    finally:
        await conn.close()
    return root
