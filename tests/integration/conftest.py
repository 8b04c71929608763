"""Fixtures of the gateway tests: a config and show hosts of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.gateway_support import drop_redis_keys, gateway_config
from tests.integration.shows import Engine, start_engine, stop_engine


@pytest.fixture
async def config(database_url: str, schema: str, redis_url: str) -> AsyncIterator[Any]:
    """A gateway config of this test's own: its schema, Redis prefix (keys and delta channels)
    and JWT secret; the keys written under that prefix are removed after the test."""
    made = gateway_config(database_url, schema, redis_url)
    yield made
    await drop_redis_keys(redis_url, made.redis_prefix)


@pytest.fixture
async def engine(
    ray_session: None, database_url: str, schema: str, redis_url: str, config: Any
) -> AsyncIterator[Engine]:
    """Show hosts that publish under this test's channel prefix (that of ``config``); test
    files of the seat engine alone define their own."""
    started = await start_engine(
        database_url, schema, redis_url, channel_prefix=config.redis_prefix
    )
    yield started
    await stop_engine(started)
