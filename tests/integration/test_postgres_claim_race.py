"""Many claimers on many connections, racing for the same rows: no job is handed out twice."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import pytest

from ingestq.model.job import ClaimRequest, JobState, NewJob, Outcome, OutcomeKind
from ingestq.store.postgres.store import PostgresStore

PG_BACKENDS = ["pg"] + (["pg-ext"] if os.environ.get("INGESTQ_TEST_PG_URL") else [])
pytestmark = pytest.mark.parametrize("backend", PG_BACKENDS, indirect=True)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
JOBS = 3000
STORES = 4
CLAIMERS_PER_STORE = 4


async def test_claim_race_hands_out_each_job_once(database_url: str) -> None:
    stores = [PostgresStore(database_url, pool_max_size=CLAIMERS_PER_STORE) for _ in range(STORES)]
    for s in stores:
        await s.open()
    try:
        inserted = await stores[0].job_insert_many(
            [NewJob(kind="race", payload={"i": i}, priority=i % 3) for i in range(JOBS)], NOW
        )
        start = asyncio.Event()

        async def claimer(store: PostgresStore, worker: str) -> list[int]:
            await start.wait()
            got: list[int] = []
            while True:
                batch = await store.job_claim(ClaimRequest(worker, limit=7, lease_seconds=60), NOW)
                if not batch:
                    return got
                assert all(j.lease_owner == worker and j.attempt == 1 for j in batch)
                got.extend(j.id for j in batch)
                # finishing concurrently with other claims exercises the row locks both ways
                await store.job_finish_many(
                    [Outcome(j.id, worker, j.attempt, OutcomeKind.SUCCEEDED) for j in batch], NOW
                )

        tasks = [
            asyncio.create_task(claimer(store, f"w{n}-{k}"))
            for n, store in enumerate(stores)
            for k in range(CLAIMERS_PER_STORE)
        ]
        start.set()
        claimed = [job_id for ids in await asyncio.gather(*tasks) for job_id in ids]

        assert len(claimed) == len(set(claimed)), "a job was claimed twice"
        assert set(claimed) == {j.id for j in inserted}
        assert sum(1 for ids in [t.result() for t in tasks] if ids) > 1, "only one claimer got work"
        (stats,) = await stores[0].stats(NOW)
        assert stats.counts[JobState.SUCCEEDED] == JOBS
        assert stats.counts[JobState.QUEUED] == stats.counts[JobState.RUNNING] == 0
    finally:
        for s in stores:
            await s.close()


async def test_claim_returns_claim_order_and_respects_filters(database_url: str) -> None:
    store = PostgresStore(database_url)
    await store.open()
    try:
        a_low, a_high, b_high = await store.job_insert_many(
            [
                NewJob(kind="x", queue="a", priority=0),
                NewJob(kind="x", queue="a", priority=5),
                NewJob(kind="y", queue="b", priority=5),
            ],
            NOW,
        )
        only_a = await store.job_claim(ClaimRequest("w", 1, 30, queues=("a",)), NOW)
        assert [j.id for j in only_a] == [a_high.id]
        only_y = await store.job_claim(ClaimRequest("w", 5, 30, kinds=("y",)), NOW)
        assert [j.id for j in only_y] == [b_high.id]
        rest = await store.job_claim(ClaimRequest("w", 5, 30), NOW)
        assert [j.id for j in rest] == [a_low.id]
    finally:
        await store.close()
