"""The change feed's reads (`job_watch`) and its private wake-up source (`change_waiter`)."""

from __future__ import annotations

import asyncio

from contract_helpers import StoreFactory, at, claim_one, finish, insert

from ingestq.model.job import JobState, OutcomeKind
from ingestq.store import Store


async def test_watch_returns_new_running_and_recently_finished_jobs(store: Store) -> None:
    old = await insert(store)
    done = await insert(store)
    running = await insert(store)
    old, done, running = [await claim_one(store) for _ in (old, done, running)]
    assert await finish(store, old, OutcomeKind.SUCCEEDED, now=at(1))
    assert await finish(store, done, OutcomeKind.FAILED, now=at(10), error="bad")
    fresh = await insert(store)
    newer = await insert(store)

    seen = await store.job_watch(after_id=running.id, finished_since=at(5), limit=10)
    states = {job.id: job.state for job in seen}
    # new: ids above after_id, ascending; running below it; finished since at(5) below it; not `old`
    assert states == {
        fresh.id: JobState.QUEUED,
        newer.id: JobState.QUEUED,
        running.id: JobState.RUNNING,
        done.id: JobState.FAILED,
    }
    new_ids = [job.id for job in seen if job.id > running.id]
    assert new_ids == [fresh.id, newer.id]
    # the limit bounds the new part from the oldest
    firsts = await store.job_watch(after_id=running.id, finished_since=at(5), limit=1)
    assert [j.id for j in firsts if j.id > running.id] == [fresh.id]


async def test_change_waiter_wakes_on_an_insert_by_another_store(
    store: Store, more_stores: StoreFactory
) -> None:
    waiter = store.change_waiter()
    try:
        await waiter.wait(0.5)  # start listening (the first wake-up may be the start itself)
        other = await more_stores()
        woke = asyncio.create_task(waiter.wait(10))
        await asyncio.sleep(0.2)  # let the waiter wait: an insert before that would be seen too
        await insert(other)
        assert await woke
    finally:
        await waiter.close()
