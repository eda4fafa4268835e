"""The worker's hot path: a steady drain costs about one store transaction per batch, because the
completer claims the next jobs in the transaction that records the finished ones."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ingestq.builtin import PROBE_KIND
from ingestq.clock import SYSTEM_CLOCK
from ingestq.model.job import JobFilter, JobState, NewJob, OutcomeKind
from ingestq.store.base import Store
from ingestq.store.sqlite.store import SqliteStore
from ingestq.worker import Worker, WorkerConfig

# The methods that each run one write transaction.
WRITES = ("job_claim", "job_finish_many", "job_finish_and_claim")


class CountingStore:
    """The real store, counting the calls of each write method."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in WRITES:
            return attr

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await attr(*args, **kwargs)

        return counted


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "q.db")
    await store.open()
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.parametrize("concurrency", [10, 50])
async def test_a_steady_drain_costs_about_one_transaction_per_batch(
    sqlite_store: SqliteStore, concurrency: int
) -> None:
    total = 2000
    await sqlite_store.job_insert_many([NewJob(kind=PROBE_KIND) for _ in range(total)], SYSTEM_CLOCK.now())
    counting = CountingStore(sqlite_store)
    worker = Worker(counting, None, WorkerConfig(concurrency=concurrency))
    await asyncio.wait_for(worker.run(drain=True), 60)
    assert worker.counts == {OutcomeKind.SUCCEEDED: total}
    left = await sqlite_store.job_list(JobFilter(states=(JobState.QUEUED, JobState.RUNNING)))
    assert left == []
    batches = total / concurrency
    # Two transactions per batch before the combined write; a few extra at the start and the end.
    assert sum(counting.calls.values()) <= batches * 1.1 + 5, counting.calls
    assert counting.calls["job_finish_and_claim"] >= batches * 0.9, counting.calls
