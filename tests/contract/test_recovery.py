"""Crash recovery (guarantee 4): expired leases are rescued; heartbeats keep live workers' leases."""

from __future__ import annotations

from contract_helpers import at, claim, claim_one, finish, insert

from ingestq.model.job import JobState, OutcomeKind, WorkerBeat
from ingestq.store import Store


def beat(worker: str, job_ids: tuple[int, ...] = (), lease: float = 10.0) -> WorkerBeat:
    return WorkerBeat(
        worker_id=worker,
        hostname="host-a",
        pid=4242,
        queues=("default", "docs"),
        concurrency=4,
        job_ids=job_ids,
        lease_seconds=lease,
    )


async def test_rescue_requeues_expired_leases_counting_the_attempt(store: Store) -> None:
    await insert(store, max_attempts=3)
    job = await claim_one(store, lease=10)
    assert await store.job_rescue_stale(at(10)) == []  # expires at 10: not yet past
    assert await store.job_rescue_stale(at(10.5)) == [job.id]
    rescued = await store.job_get(job.id)
    assert rescued is not None
    assert rescued.state is JobState.QUEUED
    assert rescued.attempt == 1
    assert rescued.run_at == at(10.5)
    assert rescued.lease_owner is None
    assert rescued.lease_expires_at is None
    assert rescued.last_error is not None
    assert "lease expired" in rescued.last_error
    assert [e.attempt for e in rescued.errors] == [1]
    assert await store.job_rescue_stale(at(11)) == []
    again = await claim_one(store, now=at(11), worker="w2")
    assert again.attempt == 2


async def test_rescue_fails_a_job_with_no_attempt_left(store: Store) -> None:
    await insert(store, max_attempts=1)
    job = await claim_one(store, lease=10)
    assert await store.job_rescue_stale(at(20)) == [job.id]
    failed = await store.job_get(job.id)
    assert failed is not None
    assert failed.state is JobState.FAILED
    assert failed.finished_at == at(20)
    assert failed.last_error is not None
    assert "lease expired" in failed.last_error


async def test_rescue_cancels_a_job_whose_cancel_was_requested(store: Store) -> None:
    await insert(store)
    job = await claim_one(store, lease=10)
    await store.job_cancel(job.id, at(1))
    assert await store.job_rescue_stale(at(20)) == [job.id]
    cancelled = await store.job_get(job.id)
    assert cancelled is not None
    assert cancelled.state is JobState.CANCELLED


async def test_rescue_leaves_live_leases_and_other_states_alone(store: Store) -> None:
    for _ in range(3):
        await insert(store)
    short, long_ = await claim(store, limit=2, lease=10)
    await store.worker_heartbeat(beat("w1", (long_.id,), lease=100), at(5))
    assert await store.job_rescue_stale(at(50)) == [short.id]
    held = await store.job_get(long_.id)
    assert held is not None
    assert held.state is JobState.RUNNING


async def test_heartbeat_extends_owned_leases_and_reports_lost_ones(store: Store) -> None:
    for _ in range(3):
        await insert(store)
    a, b = await claim(store, worker="w1", limit=2, lease=10)
    (c,) = await claim(store, worker="w2", lease=10)
    reply = await store.worker_heartbeat(beat("w1", (a.id, b.id, c.id, 999_999), lease=10), at(8))
    assert reply.lost == frozenset({c.id, 999_999})
    assert reply.cancel_requested == frozenset()
    extended = await store.job_get(a.id)
    assert extended is not None
    assert extended.lease_expires_at == at(18)
    other = await store.job_get(c.id)
    assert other is not None
    assert other.lease_expires_at == at(10)  # not w1's to extend
    assert sorted(await store.job_rescue_stale(at(15))) == [c.id]


async def test_heartbeat_reports_a_job_reclaimed_by_another_worker_as_lost(store: Store) -> None:
    await insert(store)
    job = await claim_one(store, worker="w1", lease=10)
    assert await store.job_rescue_stale(at(11)) == [job.id]
    await claim_one(store, now=at(12), worker="w2")
    reply = await store.worker_heartbeat(beat("w1", (job.id,)), at(13))
    assert reply.lost == frozenset({job.id})


async def test_heartbeat_reports_finished_jobs_as_lost(store: Store) -> None:
    await insert(store)
    job = await claim_one(store)
    assert await finish(store, job, OutcomeKind.SUCCEEDED)
    reply = await store.worker_heartbeat(beat("w1", (job.id,)), at(1))
    assert reply.lost == frozenset({job.id})


async def test_heartbeat_reports_cancel_requests(store: Store) -> None:
    await insert(store)
    await insert(store)
    a, b = await claim(store, limit=2)
    cancelled = await store.job_cancel(a.id, at(1))
    assert cancelled.state is JobState.RUNNING
    assert cancelled.cancel_requested
    reply = await store.worker_heartbeat(beat("w1", (a.id, b.id)), at(2))
    assert reply.cancel_requested == frozenset({a.id})
    assert reply.lost == frozenset()


async def test_workers_are_registered_listed_and_deregistered(store: Store) -> None:
    await insert(store)
    await insert(store)
    held = await claim(store, worker="w1", limit=2)
    await store.worker_heartbeat(beat("w1", tuple(j.id for j in held)), at(1))
    await store.worker_heartbeat(beat("w1", tuple(j.id for j in held)), at(4))
    await store.worker_heartbeat(beat("w2"), at(2))
    workers = await store.worker_list(at(4))
    assert [w.worker_id for w in workers] == ["w1", "w2"]
    w1 = workers[0]
    assert (w1.hostname, w1.pid, w1.concurrency) == ("host-a", 4242, 4)
    assert w1.queues == ("default", "docs")
    assert (w1.started_at, w1.heartbeat_at) == (at(1), at(4))
    assert w1.running == 2
    assert workers[1].running == 0
    await store.worker_deregister("w2")
    assert [w.worker_id for w in await store.worker_list(at(5))] == ["w1"]
    await store.worker_deregister("never-registered")


async def test_worker_without_queue_filter(store: Store) -> None:
    every = WorkerBeat("w9", "h", 1, None, 1, (), 10.0)
    await store.worker_heartbeat(every, at(0))
    (w,) = await store.worker_list(at(0))
    assert w.queues is None


async def test_silent_workers_are_forgotten_after_ten_leases(store: Store) -> None:
    await store.worker_heartbeat(beat("old", lease=10), at(0))
    await store.worker_heartbeat(beat("live", lease=10), at(99))
    await store.worker_heartbeat(beat("live", lease=10), at(100))
    assert [w.worker_id for w in await store.worker_list(at(100))] == ["live", "old"]
    await store.worker_heartbeat(beat("live", lease=10), at(101))
    assert [w.worker_id for w in await store.worker_list(at(101))] == ["live"]
