"""`JobContext.progress_threadsafe`: a sync handler, running in one of the worker's threads, reports progress
that reaches the store while it still runs (the README's example)."""

from __future__ import annotations

import asyncio
import threading

from test_worker import insert, running, state_of

from ingestq.clock import ManualClock
from ingestq.model.job import JobState, NewJob
from ingestq.store.base import Store
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext
from ingestq.worker import Probes, Worker, WorkerConfig


async def test_a_sync_handler_reports_progress_from_its_thread(store: Store) -> None:
    clock = ManualClock()
    release = threading.Event()
    registry = Registry()

    @registry.task(name="resize")
    def resize(ctx: JobContext) -> str:  # sync: runs in a worker thread
        ctx.progress_threadsafe("resize", done=1, total=2)
        release.wait(30)
        return "done"

    (job,) = await insert(store, clock, [NewJob(kind="resize")])
    probes = Probes()
    completed = probes.arm("completed")
    worker = Worker(store, registry, WorkerConfig(progress_interval=0), clock, probes)
    try:
        async with running(worker):
            async with asyncio.timeout(20):
                while True:
                    seen = await state_of(store, job.id)
                    if seen.progress is not None:
                        break
                    await asyncio.sleep(0.02)
            assert seen.state is JobState.RUNNING  # reported while the handler still runs
            assert (seen.progress.stage, seen.progress.done, seen.progress.total) == ("resize", 1, 2)
            release.set()
            while job.id not in await completed.next():
                pass
    finally:
        release.set()
    done = await state_of(store, job.id)
    assert (done.state, done.result) == (JobState.SUCCEEDED, "done")
