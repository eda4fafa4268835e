"""Outcomes a worker reports, fenced by owner + attempt (guarantee 3), and progress."""

from __future__ import annotations

from contract_helpers import T0, at, claim_one, finish, insert, outcome

from ingestq.model.job import ERROR_HISTORY_LIMIT, JobState, NewJob, OutcomeKind, Progress
from ingestq.store import Store


async def test_succeeded_records_result_and_finish_time(store: Store) -> None:
    await insert(store)
    job = await claim_one(store)
    assert await finish(store, job, OutcomeKind.SUCCEEDED, now=at(3), result={"chunks": 12, "ok": [1, "a"]})
    done = await store.job_get(job.id)
    assert done is not None
    assert done.state is JobState.SUCCEEDED
    assert done.result == {"chunks": 12, "ok": [1, "a"]}
    assert done.finished_at == at(3)
    assert done.attempt == 1
    assert done.lease_expires_at is None


async def test_failed_records_the_error(store: Store) -> None:
    await insert(store)
    job = await claim_one(store)
    assert await finish(store, job, OutcomeKind.FAILED, now=at(2), error="bad input: not a PDF")
    failed = await store.job_get(job.id)
    assert failed is not None
    assert failed.state is JobState.FAILED
    assert failed.last_error == "bad input: not a PDF"
    assert [(e.attempt, e.at, e.message) for e in failed.errors] == [(1, at(2), "bad input: not a PDF")]
    assert failed.finished_at == at(2)


async def test_retry_requeues_at_run_at_keeping_the_attempt(store: Store) -> None:
    await insert(store)
    job = await claim_one(store)
    assert await finish(store, job, OutcomeKind.RETRY, now=at(1), error="timeout", run_at=at(31))
    retried = await store.job_get(job.id)
    assert retried is not None
    assert retried.state is JobState.QUEUED
    assert (retried.attempt, retried.run_at) == (1, at(31))
    assert retried.lease_owner is None
    assert retried.lease_expires_at is None
    assert retried.finished_at is None
    assert retried.last_error == "timeout"
    again = await claim_one(store, now=at(31))
    assert again.attempt == 2


async def test_error_history_is_bounded_and_keeps_the_newest(store: Store) -> None:
    await insert(store, max_attempts=100)
    rounds = ERROR_HISTORY_LIMIT + 3
    for n in range(1, rounds + 1):
        job = await claim_one(store, now=at(n))
        assert job.attempt == n
        assert await finish(store, job, OutcomeKind.RETRY, now=at(n), error=f"error {n}", run_at=at(n))
    final = await store.job_get(job.id)
    assert final is not None
    assert len(final.errors) == ERROR_HISTORY_LIMIT
    assert [e.attempt for e in final.errors] == list(range(rounds - ERROR_HISTORY_LIMIT + 1, rounds + 1))
    assert final.errors[-1].message == f"error {rounds}"
    assert final.last_error == f"error {rounds}"


async def test_cancelled_outcome(store: Store) -> None:
    await insert(store)
    job = await claim_one(store)
    assert await finish(store, job, OutcomeKind.CANCELLED, now=at(4))
    cancelled = await store.job_get(job.id)
    assert cancelled is not None
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.finished_at == at(4)


async def test_released_gives_the_attempt_back(store: Store) -> None:
    await insert(store, max_attempts=1)
    job = await claim_one(store)
    assert job.attempt == 1
    assert await finish(store, job, OutcomeKind.RELEASED, now=at(5))
    released = await store.job_get(job.id)
    assert released is not None
    assert released.state is JobState.QUEUED
    assert released.attempt == 0
    assert released.run_at == at(5)
    assert released.lease_owner is None
    again = await claim_one(store, now=at(5), worker="w2")
    assert again.attempt == 1  # still within max_attempts=1: shutdown did not burn it


async def test_stale_owner_cannot_finish(store: Store) -> None:
    await insert(store)
    job = await claim_one(store, worker="w1")
    stolen = outcome(job, OutcomeKind.SUCCEEDED)
    forged = type(stolen)(job.id, "w2", job.attempt, OutcomeKind.SUCCEEDED)
    assert await store.job_finish_many([forged], at(1)) == set()
    still = await store.job_get(job.id)
    assert still is not None
    assert still.state is JobState.RUNNING
    assert still.lease_owner == "w1"


async def test_old_attempt_cannot_finish_after_rescue_and_reclaim(store: Store) -> None:
    await insert(store)
    first = await claim_one(store, worker="w1", lease=10)
    assert await store.job_rescue_stale(at(11)) == [first.id]
    second = await claim_one(store, now=at(12), worker="w1", lease=10)  # same worker id, new attempt
    assert second.attempt == 2
    for kind in OutcomeKind:
        assert not await finish(store, first, kind, now=at(13), error="late", run_at=at(13))
    assert await finish(store, second, OutcomeKind.SUCCEEDED, now=at(14))
    final = await store.job_get(first.id)
    assert final is not None
    assert final.state is JobState.SUCCEEDED


async def test_finished_job_cannot_be_finished_twice(store: Store) -> None:
    await insert(store)
    job = await claim_one(store)
    assert await finish(store, job, OutcomeKind.SUCCEEDED, result=1)
    assert not await finish(store, job, OutcomeKind.FAILED, error="x")
    done = await store.job_get(job.id)
    assert done is not None
    assert done.state is JobState.SUCCEEDED
    assert done.result == 1


async def test_finish_many_applies_each_outcome_and_reports_which(store: Store) -> None:
    for _ in range(5):
        await insert(store)
    from contract_helpers import claim

    jobs = await claim(store, limit=5)
    outcomes = [
        outcome(jobs[0], OutcomeKind.SUCCEEDED, result="r0"),
        outcome(jobs[1], OutcomeKind.FAILED, error="e1"),
        outcome(jobs[2], OutcomeKind.RETRY, error="e2", run_at=at(60)),
        outcome(jobs[3], OutcomeKind.RELEASED),
        type(outcome(jobs[4], OutcomeKind.SUCCEEDED))(jobs[4].id, "intruder", 1, OutcomeKind.SUCCEEDED),
    ]
    applied = await store.job_finish_many(outcomes, at(1))
    assert applied == {j.id for j in jobs[:4]}
    states = [(await store.job_get(j.id)).state for j in jobs]  # type: ignore[union-attr]
    assert states == [
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.QUEUED,
        JobState.QUEUED,
        JobState.RUNNING,
    ]
    assert await store.job_finish_many([], at(1)) == set()


async def test_a_batch_of_each_kind_applies_per_job_and_counts_per_queue(store: Store) -> None:
    """Several outcomes of every kind in one batch, over two queues, some from a stale holder: each job
    gets its own error, time and fence, and stats count what finished, per queue."""
    from contract_helpers import OutcomeFields, claim

    kinds = [OutcomeKind.SUCCEEDED, OutcomeKind.FAILED, OutcomeKind.RETRY, OutcomeKind.CANCELLED]
    kinds.append(OutcomeKind.RELEASED)
    await store.job_insert_many([NewJob(kind="k", queue=f"q{i % 2}") for i in range(25)], T0)
    jobs = await claim(store, limit=25)
    outcomes = []
    for i, job in enumerate(jobs):
        kind = kinds[i % 5]
        fields: OutcomeFields = {"error": f"e{job.id}"} if kind is not OutcomeKind.RELEASED else {}
        if kind is OutcomeKind.RETRY:
            fields["run_at"] = at(100 + job.id)
        mine = outcome(job, kind, **fields)
        outcomes.append(mine if i < 20 else type(mine)(job.id, "stale", job.attempt, kind, **fields))
    applied = await store.job_finish_many(outcomes, at(5))
    assert applied == {j.id for j in jobs[:20]}
    expected_state = {
        OutcomeKind.SUCCEEDED: JobState.SUCCEEDED,
        OutcomeKind.FAILED: JobState.FAILED,
        OutcomeKind.RETRY: JobState.QUEUED,
        OutcomeKind.CANCELLED: JobState.CANCELLED,
        OutcomeKind.RELEASED: JobState.QUEUED,
    }
    finished: dict[tuple[str, JobState], int] = {}
    for i, job in enumerate(jobs):
        row = await store.job_get(job.id)
        assert row is not None
        kind = kinds[i % 5]
        if i >= 20:
            assert row.state is JobState.RUNNING
            continue
        assert row.state is expected_state[kind]
        if kind in (OutcomeKind.FAILED, OutcomeKind.RETRY):
            assert row.last_error == f"e{job.id}"
            assert [e.message for e in row.errors] == [f"e{job.id}"]
        if kind is OutcomeKind.RETRY:
            assert (row.run_at, row.attempt) == (at(100 + job.id), 1)
        if kind is OutcomeKind.RELEASED:
            assert (row.run_at, row.attempt, row.errors) == (at(5), 0, ())
        if row.state.finished:
            finished[job.queue, row.state] = finished.get((job.queue, row.state), 0) + 1
    for stats in await store.stats(at(5)):
        for state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
            assert stats.counts.get(state, 0) == finished.get((stats.queue, state), 0), stats


async def test_results_of_a_batch_of_successes_survive_the_round_trip(store: Store) -> None:
    """Successes are written together (one statement on SQLite): each keeps its own result, whatever
    its JSON type, and a stale holder's success in the same batch does not apply."""
    from contract_helpers import claim

    results: list[object] = ["text", 1.5, 2**53, [1, "a", None], {"é": {"n": []}}, None, True, '"quoted"']
    await store.job_insert_many([NewJob(kind="k") for _ in range(len(results) + 1)], T0)
    jobs = await claim(store, limit=len(results) + 1)
    outcomes = [outcome(j, OutcomeKind.SUCCEEDED, result=r) for j, r in zip(jobs, results, strict=False)]
    stale = type(outcomes[0])(jobs[-1].id, "intruder", 1, OutcomeKind.SUCCEEDED, result="no")
    applied = await store.job_finish_many([*outcomes, stale], at(1))
    assert applied == {j.id for j in jobs[:-1]}
    for job, result in zip(jobs, results, strict=False):
        done = await store.job_get(job.id)
        assert done is not None
        assert (done.state, done.result, done.finished_at) == (JobState.SUCCEEDED, result, at(1))
    left = await store.job_get(jobs[-1].id)
    assert left is not None
    assert (left.state, left.result) == (JobState.RUNNING, None)


async def test_progress_is_fenced(store: Store) -> None:
    await insert(store)
    job = await claim_one(store)
    assert await store.job_progress(job.id, "w1", job.attempt, Progress("embed", 3, 10), at(1))
    stored = await store.job_get(job.id)
    assert stored is not None
    assert stored.progress == Progress("embed", 3, 10)
    assert not await store.job_progress(job.id, "w2", job.attempt, Progress("x"), at(2))
    assert not await store.job_progress(job.id, "w1", job.attempt + 1, Progress("x"), at(2))
    assert await store.job_progress(job.id, "w1", job.attempt, Progress("parse"), at(3))
    stored = await store.job_get(job.id)
    assert stored is not None
    assert stored.progress == Progress("parse", 0, None)
    assert await finish(store, job, OutcomeKind.SUCCEEDED)
    assert not await store.job_progress(job.id, "w1", job.attempt, Progress("late"), at(4))


async def test_payload_survives_the_round_trip(store: Store) -> None:
    payload = {"text": "naïve — ünïcode ✓", "n": 1.5, "big": 2**53, "none": None, "list": [{"a": []}]}
    await insert(store, payload=payload)
    job = await claim_one(store, now=T0)
    assert job.payload == payload
