"""Fixtures of the gateway tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway_support import gateway_config


@pytest.fixture
def config(database_url: str, schema: str, redis_url: str) -> Any:
    """A gateway config of this test's own: its schema, Redis prefix (keys and delta channels)
    and JWT secret."""
    return gateway_config(database_url, schema, redis_url)
