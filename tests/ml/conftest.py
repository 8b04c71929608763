"""A demo history shared by the model tests: one schema, loaded once per session, dropped after.

The models train on it the way ``seatserver train`` does on a real database: through a
connection to that schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

import storage
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
