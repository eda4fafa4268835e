"""What the dashboard reads: the purge dry-run count, finished jobs per time bucket, worker liveness."""

from __future__ import annotations

from contract_helpers import T0, at, claim, finish, insert

from ingestq.model.job import FinishedBucket, JobState, OutcomeKind, WorkerBeat
from ingestq.store import Store


async def _finished(store: Store, kind: OutcomeKind, when: float, queue: str = "default") -> int:
    await insert(store, queue=queue, now=at(when))
    (job,) = await claim(store, now=at(when), queues=(queue,))
    assert await finish(store, job, kind, now=at(when), error="e")
    return job.id


async def test_purge_count_is_what_purge_then_deletes(store: Store) -> None:
    await _finished(store, OutcomeKind.SUCCEEDED, 0)
    await _finished(store, OutcomeKind.SUCCEEDED, 10)
    await _finished(store, OutcomeKind.SUCCEEDED, 100)  # too recent
    await _finished(store, OutcomeKind.FAILED, 0)
    await _finished(store, OutcomeKind.SUCCEEDED, 0, queue="other")
    cancelled = await insert(store)
    await store.job_cancel(cancelled.id, at(0))
    await insert(store)  # queued: never counted
    cases = [
        (([JobState.SUCCEEDED], "default", at(50)), 2),
        (([JobState.SUCCEEDED], None, at(50)), 3),
        (([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED], None, at(50)), 5),
        (([JobState.FAILED], "other", None), 0),
        (([], None, None), 0),
    ]
    for args, expected in cases:
        assert await store.job_purge_count(*args) == expected, args
    assert await store.job_purge_count([JobState.SUCCEEDED], "default", at(50)) == 2
    assert await store.job_purge([JobState.SUCCEEDED], "default", at(50)) == 2
    assert await store.job_purge_count([JobState.SUCCEEDED], None, None) == 2  # at(100) and "other"


async def test_purge_count_ignores_unfinished_states(store: Store) -> None:
    await insert(store)
    assert await store.job_purge_count([JobState.QUEUED, JobState.SUCCEEDED], None, None) == 0


async def test_finished_buckets_count_the_window_by_outcome(store: Store) -> None:
    await _finished(store, OutcomeKind.SUCCEEDED, 5)  # before the window
    for when in (60, 61, 119.5):
        await _finished(store, OutcomeKind.SUCCEEDED, when)
    await _finished(store, OutcomeKind.FAILED, 90)
    await _finished(store, OutcomeKind.FAILED, 200)
    cancelled = await insert(store, now=at(70))
    await store.job_cancel(cancelled.id, at(70))  # neither succeeded nor failed: left out
    await insert(store, now=at(80))
    found = sorted(await store.job_finished_buckets(at(60), 60.0), key=lambda b: (b.index, b.state))
    assert found == [
        FinishedBucket(0, JobState.FAILED, 1),
        FinishedBucket(0, JobState.SUCCEEDED, 3),
        FinishedBucket(2, JobState.FAILED, 1),
    ]
    assert await store.job_finished_buckets(at(300), 60.0) == []


async def test_worker_list_carries_the_lease_that_tells_alive_from_silent(store: Store) -> None:
    beat = WorkerBeat("w1", "host-a", 7, ("default",), 3, (), 10.0)
    await store.worker_heartbeat(beat, T0)
    (w,) = await store.worker_list(at(5))
    assert w.lease_seconds == 10.0
    assert w.alive(at(10))
    assert not w.alive(at(10.5))
    assert w.silent_for(at(30)) == 30.0
