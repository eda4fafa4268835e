"""Periodic schedules (one job per slot however many callers race) and backpressure (guarantee 7)."""

from __future__ import annotations

import asyncio

import pytest
from contract_helpers import T0, StoreFactory, at, claim_one, finish, insert

from ingestq.errors import QueueFull
from ingestq.model.job import JobFilter, NewJob, OutcomeKind, QueueConfig
from ingestq.store import Store


async def test_periodic_enqueues_once_per_slot(store: Store) -> None:
    job = NewJob(kind="report", payload={"daily": True})
    first = await store.periodic_enqueue("daily", at(0), job, at(1))
    assert first is not None
    assert first.kind == "report"
    assert first.created_at == at(1)
    assert await store.periodic_enqueue("daily", at(0), job, at(2)) is None
    assert await store.periodic_enqueue("daily", at(-3600), job, at(2)) is None  # an older slot
    nxt = await store.periodic_enqueue("daily", at(86400), job, at(86400))
    assert nxt is not None
    assert nxt.id != first.id
    other = await store.periodic_enqueue("hourly", at(0), job, at(3))
    assert other is not None
    assert len(await store.job_list(JobFilter())) == 3


async def test_periodic_exactly_once_under_concurrency(store: Store, more_stores: StoreFactory) -> None:
    stores = [store] + [await more_stores() for _ in range(3)]
    job = NewJob(kind="tick")

    async def caller(n: int, slot: int) -> bool:
        s = stores[n % len(stores)]
        return await s.periodic_enqueue("tick", at(slot), job, at(slot)) is not None

    for slot in (60, 120):
        results = await asyncio.gather(*(caller(n, slot) for n in range(16)))
        assert sum(results) == 1
    assert len(await store.job_list(JobFilter())) == 2


async def test_queue_config_round_trip(store: Store) -> None:
    assert await store.queue_list() == []
    await store.queue_configure(QueueConfig("docs", max_depth=10))
    await store.queue_configure(QueueConfig("bulk"))
    await store.queue_configure(QueueConfig("docs", max_depth=20))
    assert await store.queue_list() == [QueueConfig("bulk", None), QueueConfig("docs", 20)]


async def test_queue_full_rejects_the_whole_batch(store: Store) -> None:
    await store.queue_configure(QueueConfig("small", max_depth=3))
    await store.job_insert_many([NewJob(kind="k", queue="small") for _ in range(2)], T0)
    batch = [NewJob(kind="k", queue="free"), NewJob(kind="k", queue="small"), NewJob(kind="k", queue="small")]
    with pytest.raises(QueueFull) as info:
        await store.job_insert_many(batch, at(1))
    assert info.value.queue == "small"
    assert info.value.max_depth == 3
    assert "small" in str(info.value)
    assert len(await store.job_list(JobFilter())) == 2  # nothing of the batch, not even "free"
    assert len(await store.job_insert_many([NewJob(kind="k", queue="small")], at(2))) == 1
    with pytest.raises(QueueFull):
        await insert(store, queue="small", now=at(3))


async def test_depth_counts_running_but_not_finished_jobs(store: Store) -> None:
    await store.queue_configure(QueueConfig("q", max_depth=1))
    await insert(store, queue="q")
    (job,) = [await claim_one(store)]
    with pytest.raises(QueueFull):
        await insert(store, queue="q")
    assert await finish(store, job, OutcomeKind.SUCCEEDED)
    assert (await insert(store, queue="q")).queue == "q"


async def test_dedupe_hit_on_a_full_queue_is_not_an_error(store: Store) -> None:
    await store.queue_configure(QueueConfig("q", max_depth=1))
    first = await insert(store, queue="q", dedupe_key="d")
    again = await insert(store, queue="q", dedupe_key="d")
    assert again.id == first.id


async def test_periodic_respects_backpressure_and_keeps_the_slot(store: Store) -> None:
    await store.queue_configure(QueueConfig("q", max_depth=0))
    job = NewJob(kind="tick", queue="q")
    with pytest.raises(QueueFull):
        await store.periodic_enqueue("p", at(0), job, at(0))
    await store.queue_configure(QueueConfig("q", max_depth=None))
    assert await store.periodic_enqueue("p", at(0), job, at(1)) is not None  # the slot was not used up
