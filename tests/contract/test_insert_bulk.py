"""Store.job_insert_bulk: jobs that differ only by payload, given as JSON text; ids back, no Job objects."""

from __future__ import annotations

import asyncio
import json

import pytest
from contract_helpers import T0, StoreFactory, at, claim, insert

from ingestq.errors import QueueFull
from ingestq.model.job import JobFilter, JobState, NewJob, QueueConfig
from ingestq.store import Store

NEVER = 3600.0
STEP_TIMEOUT = 30.0


async def test_bulk_ids_are_in_input_order_and_rows_follow_the_template(store: Store) -> None:
    template = NewJob(kind="mail", queue="q", priority=4, run_at=at(30), max_attempts=6, document_id="d")
    payloads = [
        json.dumps({"i": i, "text": 'é"\\\n' * (i % 3), "nested": [i, {"ok": None}]}) for i in range(300)
    ]
    ids = await store.job_insert_bulk(template, payloads, at(1))
    assert len(ids) == 300
    assert ids == sorted(ids)
    for i in (0, 1, 150, 299):
        job = await store.job_get(ids[i])
        assert job is not None
        assert job.payload == json.loads(payloads[i])
        assert (job.kind, job.queue, job.priority, job.max_attempts) == ("mail", "q", 4, 6)
        assert (job.state, job.attempt, job.dedupe_key, job.document_id) == (JobState.QUEUED, 0, None, "d")
        assert (job.run_at, job.created_at) == (at(30), at(1))


async def test_bulk_runs_now_by_default_and_claims_in_input_order(store: Store) -> None:
    ids = await store.job_insert_bulk(NewJob(kind="k"), ["{}", '{"a": 1}', "{}"], at(2))
    job = await store.job_get(ids[1])
    assert job is not None
    assert (job.run_at, job.payload, job.queue) == (at(2), {"a": 1}, "default")
    claimed = await claim(store, now=at(3), limit=3)
    assert [j.id for j in claimed] == ids


async def test_bulk_nothing(store: Store) -> None:
    assert await store.job_insert_bulk(NewJob(kind="k"), [], T0) == []


async def test_bulk_refuses_a_dedupe_key(store: Store) -> None:
    with pytest.raises(ValueError, match="dedupe_key"):
        await store.job_insert_bulk(NewJob(kind="k", dedupe_key="x"), ["{}"], T0)
    assert await store.job_list(JobFilter()) == []


async def test_bulk_respects_max_depth_all_or_nothing(store: Store) -> None:
    await store.queue_configure(QueueConfig("small", max_depth=3))
    assert len(await store.job_insert_bulk(NewJob(kind="k", queue="small"), ["{}"] * 2, T0)) == 2
    with pytest.raises(QueueFull) as info:
        await store.job_insert_bulk(NewJob(kind="k", queue="small"), ["{}"] * 2, at(1))
    assert (info.value.queue, info.value.max_depth) == ("small", 3)
    assert len(await store.job_list(JobFilter())) == 2
    assert len(await store.job_insert_bulk(NewJob(kind="k", queue="small"), ["{}"], at(2))) == 1
    # other queues are not limited by it
    assert len(await store.job_insert_bulk(NewJob(kind="k", queue="free"), ["{}"] * 5, at(3))) == 5


async def test_bulk_and_single_inserts_wake_another_instance(store: Store, more_stores: StoreFactory) -> None:
    waiter_store = await more_stores()

    async def worker_loop() -> int:
        while not (got := await claim(waiter_store)):
            await waiter_store.wait_for_jobs(NEVER)
        return got[0].id

    for enqueue in (
        lambda: store.job_insert_bulk(NewJob(kind="k"), ["{}"], T0),
        lambda: store.job_insert_many([NewJob(kind="k")], T0),
        lambda: store.job_insert_many([NewJob(kind="k", dedupe_key="d")], T0),
    ):
        waiting = asyncio.create_task(worker_loop())
        await asyncio.sleep(0)
        await enqueue()
        await asyncio.wait_for(waiting, STEP_TIMEOUT)


async def test_single_insert_on_a_limited_queue_still_counts(store: Store) -> None:
    await store.queue_configure(QueueConfig("one", max_depth=1))
    first = await insert(store, queue="one")
    with pytest.raises(QueueFull):
        await insert(store, queue="one", now=at(1))
    await store.queue_configure(QueueConfig("one", max_depth=None))
    assert (await insert(store, queue="one", now=at(2))).id > first.id
