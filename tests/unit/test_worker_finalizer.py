"""`JobContext.finalize_with`: a handler's own writes commit with the job's outcome, whatever it is.

The finalizer here records the outcome in a side list and then applies it through the store, so the
test sees both that the worker called it (and not the batch) and that the job ended as it says."""

from __future__ import annotations

import asyncio

from ingestq.clock import ManualClock
from ingestq.errors import PermanentError
from ingestq.model.job import JobState, NewJob, Outcome, OutcomeKind
from ingestq.store.base import Store
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext
from ingestq.worker import Worker, WorkerConfig


async def test_finalizer_applies_success_and_failure_instead_of_the_batch(store: Store) -> None:
    clock = ManualClock()
    seen: list[Outcome] = []
    registry = Registry()

    async def apply(outcome: Outcome) -> bool:
        seen.append(outcome)
        return bool(await store.job_finish_many([outcome], clock.now()))

    @registry.task(name="finalized")
    async def finalized(fail: bool, ctx: JobContext) -> str:
        ctx.finalize_with(apply)
        if fail:
            raise PermanentError("bad input")
        return "ok"

    @registry.task(name="plain")
    async def plain() -> str:
        return "plain"

    jobs = await store.job_insert_many(
        [
            NewJob(kind="finalized", payload={"fail": False}),
            NewJob(kind="finalized", payload={"fail": True}),
            NewJob(kind="plain"),
        ],
        clock.now(),
    )
    worker = Worker(store, registry, WorkerConfig(concurrency=3), clock)
    await asyncio.wait_for(worker.run(drain=True), 30)

    assert sorted((o.job_id, o.kind) for o in seen) == [
        (jobs[0].id, OutcomeKind.SUCCEEDED),
        (jobs[1].id, OutcomeKind.FAILED),
    ]
    states = [(await store.job_get(j.id)) for j in jobs]
    assert [s.state for s in states if s] == [JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED]
    assert worker.counts == {OutcomeKind.SUCCEEDED: 2, OutcomeKind.FAILED: 1}


async def test_a_finalizer_that_raises_is_retried_and_one_that_is_fenced_is_not_counted(
    store: Store,
) -> None:
    clock = ManualClock()
    calls = 0
    second_call = asyncio.Event()
    registry = Registry()

    async def flaky(outcome: Outcome) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database restarting")
        second_call.set()
        return False  # fenced: another worker holds the job (nothing written)

    @registry.task(name="flaky")
    async def handler(ctx: JobContext) -> None:
        ctx.finalize_with(flaky)

    (job,) = await store.job_insert_many([NewJob(kind="flaky")], clock.now())
    worker = Worker(store, registry, WorkerConfig(concurrency=1), clock)
    task = asyncio.create_task(worker.run(drain=False))
    try:
        await asyncio.wait_for(second_call.wait(), 10)
    finally:
        worker.request_stop(graceful=False)
        await asyncio.wait_for(task, 10)
    assert calls == 2
    assert worker.counts == {}
    row = await store.job_get(job.id)
    assert row is not None
    assert row.state is JobState.RUNNING  # nothing applied: its lease will expire
