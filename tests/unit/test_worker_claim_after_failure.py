"""A finding of the fault suite (docs/reliability.md): jobs claimed by the first claim that succeeds after a
failed one must run once. `Worker._claim` used to scan for orphaned claims before `_start_all` held the jobs
it had just claimed, so it released them (attempt given back), ran them anyway (their outcome then fenced
off) and they ran again under the same attempt."""

from __future__ import annotations

import asyncio
from collections import Counter

from test_worker import FlakyStore, insert, state_of

from ingestq.clock import ManualClock
from ingestq.model.job import JobState, NewJob
from ingestq.store.base import Store
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext
from ingestq.worker import Worker, WorkerConfig


async def test_jobs_of_the_claim_after_a_failed_claim_run_once(store: Store) -> None:
    clock = ManualClock()
    registry = Registry()
    runs: Counter[int] = Counter()

    @registry.task(name="counted")
    async def counted(n: int, ctx: JobContext) -> int:
        runs[ctx.job.id] += 1
        return n

    jobs = await insert(store, clock, [NewJob(kind="counted", payload={"n": i}) for i in range(5)])
    flaky = FlakyStore(store, "job_claim", failures=1)
    worker = Worker(flaky, registry, WorkerConfig(poll_interval=0.01), clock)
    await asyncio.wait_for(worker.run(drain=True), 10)
    finished = [await state_of(store, j.id) for j in jobs]
    assert {j.state for j in finished} == {JobState.SUCCEEDED}
    assert runs == {j.id: 1 for j in jobs}, f"handler runs per job: {dict(runs)}"
