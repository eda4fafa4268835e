"""Fixtures of the contract suite (the `store` fixture itself lives in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from contract_helpers import StoreFactory

from ingestq.settings import Settings
from ingestq.store import Store, open_store


@pytest.fixture
async def more_stores(settings: Settings) -> AsyncIterator[StoreFactory]:
    """Open further, independent Store instances on the same database (separate connections/pools)."""
    opened: list[Store] = []

    async def make() -> Store:
        s = open_store(settings)
        await s.open()
        opened.append(s)
        return s

    try:
        yield make
    finally:
        for s in opened:
            await s.close()
