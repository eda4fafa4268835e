"""Contract cases found while building the PostgreSQL backend; they run on every backend.

Mostly concurrency across independent store instances (separate connections, as separate processes
would have): backpressure and dedupe must hold when enqueuers race, and an insert by one instance must
wake another that waits for jobs.
"""

from __future__ import annotations

import asyncio

import pytest
from contract_helpers import T0, StoreFactory, at, claim, claim_one, finish, insert

from ingestq.errors import QueueFull
from ingestq.model.job import JobFilter, JobState, NewJob, OutcomeKind, QueueConfig, Retention
from ingestq.store import Store

NEVER = 3600.0  # a max_wait no test may reach: only a wake-up ends the wait
STEP_TIMEOUT = 15.0


async def test_dedupe_within_one_batch_returns_one_job(store: Store) -> None:
    batch = [
        NewJob(kind="a"),
        NewJob(kind="d", dedupe_key="same", payload={"n": 1}),
        NewJob(kind="b"),
        NewJob(kind="d", dedupe_key="same", payload={"n": 2}),
        NewJob(kind="c"),
    ]
    a, first, b, second, c = await store.job_insert_many(batch, T0)
    assert first.id == second.id
    assert (a.kind, b.kind, c.kind) == ("a", "b", "c")
    assert a.id < first.id < b.id < c.id
    stored = await store.job_get(first.id)
    assert stored is not None
    assert stored.payload == {"n": 1}  # the first input holding the key is the one inserted
    assert len(await store.job_list(JobFilter())) == 4


async def test_racing_enqueuers_never_overshoot_max_depth(store: Store, more_stores: StoreFactory) -> None:
    await store.queue_configure(QueueConfig("tight", max_depth=5))
    stores = [store] + [await more_stores() for _ in range(3)]

    async def enqueue(n: int) -> bool:
        try:
            await stores[n % len(stores)].job_insert_many([NewJob(kind="k", queue="tight")], at(n))
        except QueueFull:
            return False
        return True

    accepted = await asyncio.gather(*(enqueue(n) for n in range(16)))
    assert sum(accepted) == 5
    (stats,) = await store.stats(at(100))
    assert stats.counts[JobState.QUEUED] == 5


async def test_racing_enqueuers_with_one_dedupe_key_get_one_job(
    store: Store, more_stores: StoreFactory
) -> None:
    stores = [store] + [await more_stores() for _ in range(3)]
    jobs = await asyncio.gather(
        *(
            stores[n % len(stores)].job_insert_many([NewJob(kind="k", dedupe_key="doc-1")], at(n))
            for n in range(12)
        )
    )
    assert len({batch[0].id for batch in jobs}) == 1
    assert len(await store.job_list(JobFilter())) == 1


async def test_retention_none_or_zero_keeps_jobs_forever(store: Store) -> None:
    job = await insert(store)
    assert await finish(store, await claim_one(store), OutcomeKind.SUCCEEDED)
    far = at(10 * 365 * 86400)
    assert await store.job_prune(Retention(succeeded=None, failed=None, cancelled=None), far) == 0
    assert await store.job_prune(Retention(succeeded=0, failed=0, cancelled=0), far) == 0
    assert await store.job_get(job.id) is not None


async def test_insert_by_one_instance_wakes_another(store: Store, more_stores: StoreFactory) -> None:
    waiter_store = await more_stores()
    assert await claim(waiter_store) == []

    async def worker_loop() -> None:
        # what a worker does: wait (spurious wake-ups allowed), claim, and wait again if nothing came
        while not await claim(waiter_store):
            await waiter_store.wait_for_jobs(NEVER)

    waiting = asyncio.create_task(worker_loop())
    await asyncio.sleep(0)
    await store.job_insert_many([NewJob(kind="k")], T0)
    await asyncio.wait_for(waiting, STEP_TIMEOUT)


@pytest.mark.parametrize("n", [1, 2_500])
async def test_bulk_insert_round_trip(store: Store, n: int) -> None:
    jobs = await store.job_insert_many(
        [NewJob(kind="bulk", payload={"i": i, "s": "é" * (i % 3)}, priority=i % 4) for i in range(n)], T0
    )
    assert [j.payload["i"] for j in jobs] == list(range(n))
    last = await store.job_get(jobs[-1].id)
    assert last == jobs[-1]
