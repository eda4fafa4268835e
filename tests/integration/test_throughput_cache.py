"""The overview's throughput chart: requests that arrive while it is computed share the answer, and an
expensive answer is reused for ten times its cost (at most CACHE_SECONDS). With a million jobs finished
in the hour each computation costs 50–330 ms, and ten overview requests a second queued them up to
8–10 s each (bench.service flat). A cheap chart is recomputed every time: the browser test of the
overview saw a chart cached at a fixed age stay at its value from before the last job event."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ingestq.api.dashboard import throughput as tp
from ingestq.client.client import Client
from ingestq.settings import Settings
from ingestq.store.sqlite.store import SqliteStore


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """One entry per job_finished_buckets query reaching the store."""
    seen: list[float] = []
    original = SqliteStore.job_finished_buckets

    async def counted(self: SqliteStore, since: Any, width: float) -> Any:
        seen.append(width)
        await asyncio.sleep(0.05)  # a slow count: requests arrive while it runs
        return await original(self, since, width)

    monkeypatch.setattr(SqliteStore, "job_finished_buckets", counted)
    return seen


async def test_concurrent_and_repeated_requests_share_one_computation(
    tmp_path: Path, calls: list[float]
) -> None:
    async with Client.connect(Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")) as client:
        await client.enqueue("k")
        charts = await asyncio.gather(*(tp.throughput(client) for _ in range(20)))
        assert len(calls) == 1
        assert all(c is charts[0] for c in charts)
        await tp.throughput(client)  # within CACHE_SECONDS: the same answer, no query
        assert len(calls) == 1


async def test_past_its_age_the_chart_is_computed_again(
    tmp_path: Path, calls: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tp, "CACHE_SECONDS", 0.0)
    async with Client.connect(Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")) as client:
        await tp.throughput(client)
        await tp.throughput(client)
        assert len(calls) == 2


async def test_a_cheap_chart_is_computed_for_each_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[float] = []
    original = SqliteStore.job_finished_buckets

    async def counted(self: SqliteStore, since: Any, width: float) -> Any:
        seen.append(width)
        return await original(self, since, width)

    monkeypatch.setattr(SqliteStore, "job_finished_buckets", counted)
    async with Client.connect(Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")) as client:
        await tp.throughput(client)
        cost = tp._memos[client.store].cost
        assert cost < 0.1  # an empty table: about a millisecond
        await asyncio.sleep(tp.REUSE_FACTOR * cost + 0.05)
        await tp.throughput(client)
        assert len(seen) == 2
