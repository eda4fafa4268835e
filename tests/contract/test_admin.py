"""What a person does: cancel (guarantee 8), retry, position, stats, purge and retention (guarantee 10)."""

from __future__ import annotations

import pytest
from contract_helpers import T0, at, claim, claim_one, finish, insert

from ingestq.errors import InvalidJobState, JobNotFound
from ingestq.model.job import JobFilter, JobState, NewJob, OutcomeKind, Retention
from ingestq.store import Store


async def test_cancel_queued_is_immediate(store: Store) -> None:
    job = await insert(store)
    cancelled = await store.job_cancel(job.id, at(3))
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.finished_at == at(3)
    assert await store.job_get(job.id) == cancelled
    assert await claim(store, now=at(4)) == []


async def test_cancel_running_only_asks(store: Store) -> None:
    await insert(store)
    job = await claim_one(store)
    asked = await store.job_cancel(job.id, at(1))
    assert asked.state is JobState.RUNNING
    assert asked.cancel_requested
    assert asked.lease_owner == "w1"
    assert await finish(store, job, OutcomeKind.CANCELLED, now=at(2))
    done = await store.job_get(job.id)
    assert done is not None
    assert done.state is JobState.CANCELLED


async def test_cancel_finished_returns_it_unchanged(store: Store) -> None:
    await insert(store)
    job = await claim_one(store)
    assert await finish(store, job, OutcomeKind.SUCCEEDED, result=5)
    before = await store.job_get(job.id)
    assert await store.job_cancel(job.id, at(9)) == before


async def test_cancel_missing_raises(store: Store) -> None:
    with pytest.raises(JobNotFound):
        await store.job_cancel(424_242, T0)


async def test_person_retry_of_a_failed_job(store: Store) -> None:
    await insert(store, max_attempts=2)
    for n in (1, 2):
        job = await claim_one(store, now=at(n))
        assert await finish(
            store, job, OutcomeKind.FAILED if n == 2 else OutcomeKind.RETRY, now=at(n), error="e"
        )
    failed = await store.job_get(job.id)
    assert failed is not None
    assert (failed.state, failed.attempt, failed.max_attempts) == (JobState.FAILED, 2, 2)
    retried = await store.job_retry(job.id, at(50))
    assert retried.state is JobState.QUEUED
    assert retried.run_at == at(50)
    assert retried.finished_at is None
    assert retried.max_attempts >= retried.attempt + 1
    assert len(retried.errors) == 2  # history kept
    again = await claim_one(store, now=at(50))
    assert again.attempt == 3


async def test_person_retry_of_a_cancelled_job(store: Store) -> None:
    job = await insert(store)
    await store.job_cancel(job.id, at(1))
    retried = await store.job_retry(job.id, at(2))
    assert retried.state is JobState.QUEUED
    assert not retried.cancel_requested
    assert retried.max_attempts == job.max_attempts  # attempts were left: unchanged


@pytest.mark.parametrize("state", ["queued", "running", "succeeded"])
async def test_person_retry_refuses_other_states(store: Store, state: str) -> None:
    job = await insert(store)
    if state != "queued":
        claimed = await claim_one(store)
        if state == "succeeded":
            assert await finish(store, claimed, OutcomeKind.SUCCEEDED)
    with pytest.raises(InvalidJobState, match=state):
        await store.job_retry(job.id, at(1))


async def test_person_retry_missing_raises(store: Store) -> None:
    with pytest.raises(JobNotFound):
        await store.job_retry(424_242, T0)


async def test_dedupe_returns_the_unfinished_job(store: Store) -> None:
    first = await insert(store, dedupe_key="doc-1", payload={"v": 1})
    again = await insert(store, now=at(1), dedupe_key="doc-1", payload={"v": 2})
    assert again == first
    batch = await store.job_insert_many(
        [NewJob(kind="k", dedupe_key="doc-2"), NewJob(kind="k", dedupe_key="doc-2"), NewJob(kind="k")], at(2)
    )
    assert batch[0].id == batch[1].id
    assert batch[2].id != batch[0].id
    running = await claim_one(store, now=at(3))
    assert running.id == first.id
    while_running = await insert(store, now=at(4), dedupe_key="doc-1")
    assert while_running.id == first.id
    assert while_running.state is JobState.RUNNING
    assert len(await store.job_list(JobFilter())) == 3


async def test_dedupe_key_is_free_once_the_job_finished(store: Store) -> None:
    first = await insert(store, dedupe_key="k1")
    job = await claim_one(store)
    assert await finish(store, job, OutcomeKind.SUCCEEDED)
    second = await insert(store, now=at(1), dedupe_key="k1")
    assert second.id != first.id
    assert second.state is JobState.QUEUED


async def test_person_retry_refused_while_another_job_holds_the_dedupe_key(store: Store) -> None:
    first = await insert(store, dedupe_key="k1")
    await store.job_cancel(first.id, at(1))
    await insert(store, now=at(2), dedupe_key="k1")
    with pytest.raises(InvalidJobState):
        await store.job_retry(first.id, at(3))


async def test_position_in_claim_order(store: Store) -> None:
    a = await insert(store, now=T0)
    b = await insert(store, now=at(1))
    urgent = await insert(store, now=at(2), priority=10)
    other_queue = await insert(store, now=T0, queue="other")
    later = await insert(store, run_at=at(100))
    now = at(10)
    assert await store.job_position(urgent.id, now) == 1
    assert await store.job_position(a.id, now) == 2
    assert await store.job_position(b.id, now) == 3
    assert await store.job_position(other_queue.id, now) == 1
    assert await store.job_position(later.id, now) == 4  # not due yet: after every due job
    (running,) = await claim(store, now=now, queues=("default",))
    assert running.id == urgent.id
    assert await store.job_position(urgent.id, now) is None
    assert await store.job_position(a.id, now) == 1
    assert await store.job_position(424_242, now) is None


async def test_stats(store: Store) -> None:
    await store.job_insert_many([NewJob(kind="k") for _ in range(4)], T0)
    await insert(store, queue="docs", now=at(5))
    await insert(store, queue="docs", run_at=at(1000))
    j1, j2, j3 = await claim(store, now=at(10), queues=("default",), limit=3, worker="w1")
    assert await finish(store, j1, OutcomeKind.SUCCEEDED, now=at(11))
    assert await finish(store, j2, OutcomeKind.FAILED, now=at(11), error="x")
    (d1,) = await claim(store, now=at(10), queues=("docs",), worker="w2")
    assert await store.job_cancel((await insert(store, queue="docs", now=at(12))).id, at(12))
    stats = {s.queue: s for s in await store.stats(at(20))}
    assert set(stats) == {"default", "docs"}
    default, docs = stats["default"], stats["docs"]
    assert default.counts == {
        JobState.QUEUED: 1,
        JobState.RUNNING: 1,
        JobState.SUCCEEDED: 1,
        JobState.FAILED: 1,
        JobState.CANCELLED: 0,
    }
    assert default.oldest_queued_age == pytest.approx(20.0)
    assert default.running_by_worker == {"w1": 1}
    assert docs.counts[JobState.QUEUED] == 1  # the future one
    assert docs.counts[JobState.RUNNING] == 1
    assert docs.counts[JobState.CANCELLED] == 1
    assert docs.oldest_queued_age is None  # nothing due
    assert docs.running_by_worker == {"w2": 1}
    assert j3.state is JobState.RUNNING
    assert d1.queue == "docs"


async def test_stats_follow_retries_and_purges(store: Store) -> None:
    await insert(store)
    job = await claim_one(store)
    assert await finish(store, job, OutcomeKind.FAILED, error="x")
    await store.job_retry(job.id, at(1))
    (s,) = await store.stats(at(1))
    assert (s.counts[JobState.FAILED], s.counts[JobState.QUEUED]) == (0, 1)
    again = await claim_one(store, now=at(1))
    assert await finish(store, again, OutcomeKind.SUCCEEDED)
    assert await store.job_purge([JobState.SUCCEEDED], None, None) == 1
    stats = await store.stats(at(2))
    assert all(sum(q.counts.values()) == 0 for q in stats)


async def test_stats_empty_database(store: Store) -> None:
    assert await store.stats(T0) == []


async def _finished(store: Store, kind: OutcomeKind, when: float, queue: str = "default") -> int:
    await insert(store, queue=queue, now=at(when))
    (job,) = await claim(store, now=at(when), queues=(queue,))
    assert await finish(store, job, kind, now=at(when), error="e")
    return job.id


async def test_purge_by_state_queue_and_age(store: Store) -> None:
    s_old = await _finished(store, OutcomeKind.SUCCEEDED, 0)
    s_new = await _finished(store, OutcomeKind.SUCCEEDED, 100)
    f_old = await _finished(store, OutcomeKind.FAILED, 0)
    s_other = await _finished(store, OutcomeKind.SUCCEEDED, 0, queue="other")
    queued = await insert(store)
    assert await store.job_purge([JobState.SUCCEEDED], "default", at(50)) == 1
    assert await store.job_get(s_old) is None
    assert await store.job_get(s_new) is not None
    assert await store.job_purge([JobState.SUCCEEDED, JobState.FAILED], None, None) == 3
    assert [await store.job_get(i) for i in (s_new, f_old, s_other)] == [None, None, None]
    assert await store.job_get(queued.id) is not None
    assert await store.job_purge([], None, None) == 0


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.RUNNING])
async def test_purge_refuses_unfinished_states(store: Store, state: JobState) -> None:
    job = await insert(store)
    with pytest.raises(InvalidJobState):
        await store.job_purge([JobState.SUCCEEDED, state], None, None)
    assert await store.job_get(job.id) is not None


async def test_prune_applies_each_state_retention(store: Store) -> None:
    s = await _finished(store, OutcomeKind.SUCCEEDED, 0)
    f = await _finished(store, OutcomeKind.FAILED, 0)
    c_job = await insert(store)
    await store.job_cancel(c_job.id, at(0))
    recent = await _finished(store, OutcomeKind.SUCCEEDED, 90)
    unfinished = await insert(store, now=at(0))
    retention = Retention(succeeded=50, failed=None, cancelled=200)
    assert await store.job_prune(retention, at(100)) == 1
    assert await store.job_get(s) is None
    assert await store.job_get(recent) is not None
    assert await store.job_get(f) is not None  # kept forever
    assert await store.job_get(c_job.id) is not None  # 100 s < 200 s
    assert await store.job_prune(retention, at(201)) == 2  # the cancelled one and `recent`
    assert await store.job_get(c_job.id) is None
    assert await store.job_get(unfinished.id) is not None
    assert await store.job_get(f) is not None


async def test_prune_limit(store: Store) -> None:
    for _ in range(5):
        await _finished(store, OutcomeKind.SUCCEEDED, 0)
    retention = Retention(succeeded=1, failed=1, cancelled=1)
    assert await store.job_prune(retention, at(10), limit=2) == 2
    assert await store.job_prune(retention, at(10), limit=2) == 2
    assert await store.job_prune(retention, at(10), limit=2) == 1
    assert await store.job_prune(retention, at(10), limit=2) == 0


async def test_stats_agree_with_the_jobs_after_every_kind_of_move(store: Store) -> None:
    """Finished counts may be kept incrementally: check them against the rows after a mix of moves."""
    queues = ("a", "b")
    await store.job_insert_many(
        [NewJob(kind="k", queue=queues[i % 2], max_attempts=1) for i in range(40)], T0
    )
    jobs = await claim(store, now=at(1), limit=30, lease=5)
    kinds = [OutcomeKind.SUCCEEDED, OutcomeKind.FAILED, OutcomeKind.CANCELLED, OutcomeKind.RETRY]
    for i, job in enumerate(jobs[:24]):
        assert await finish(store, job, kinds[i % 4], now=at(2), error="e", run_at=at(2))
    assert len(await store.job_rescue_stale(at(10))) == 6  # max_attempts=1: failed
    for job in await store.job_list(JobFilter(states=(JobState.QUEUED,), limit=4)):
        await store.job_cancel(job.id, at(11))
    for job in await store.job_list(JobFilter(states=(JobState.FAILED,), limit=3)):
        await store.job_retry(job.id, at(12))
    assert await store.job_purge([JobState.CANCELLED], "a", None) > 0
    assert await store.job_prune(Retention(succeeded=1, failed=None, cancelled=None), at(100), limit=2) == 2
    await claim(store, now=at(13), limit=3, worker="w9")

    every = await store.job_list(JobFilter(limit=1000))
    expected: dict[str, dict[JobState, int]] = {}
    for job in every:
        per_queue = expected.setdefault(job.queue, dict.fromkeys(JobState, 0))
        per_queue[job.state] += 1
    got = {s.queue: s.counts for s in await store.stats(at(13))}
    assert got == expected
