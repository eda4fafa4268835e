"""A job holds its slot until its outcome is committed, and a kind this machine cannot serve is given
back without spending attempts. Real stores (every backend), probes and events; no sleeps."""

from __future__ import annotations

import asyncio

import pytest
from test_worker import insert, running, state_of

import ingestq.worker.runner as runner
from ingestq.builtin import PROBE_KIND
from ingestq.clock import ManualClock
from ingestq.errors import Unavailable
from ingestq.model.job import JobFilter, JobState, NewJob, Outcome
from ingestq.store.base import Store
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext
from ingestq.worker import Probes, Worker, WorkerConfig
from ingestq.worker.probes import Probe


async def _running_count(store: Store) -> int:
    return len(await store.job_list(JobFilter(states=(JobState.RUNNING,), limit=100)))


async def test_a_job_waiting_for_its_finalizer_keeps_its_slot(store: Store) -> None:
    """The handler returns at once, its finalizer (an index write) waits: the worker must not claim
    more jobs than it has slots meanwhile (it claimed all of them before the fix)."""
    clock = ManualClock()
    release = asyncio.Event()
    finalizing = asyncio.Event()

    async def finalize(outcome: Outcome) -> bool:
        finalizing.set()
        await release.wait()
        applied = await store.job_finish_many([outcome], clock.now())
        return outcome.job_id in applied

    registry = Registry()

    @registry.task(name="indexed")
    async def indexed(ctx: JobContext) -> None:
        ctx.finalize_with(finalize)

    jobs = await insert(store, clock, [NewJob(kind="indexed") for _ in range(6)])
    probes = Probes()
    finished = probes.arm("job_finished")
    worker = Worker(store, registry, WorkerConfig(concurrency=2), clock, probes)
    task = asyncio.create_task(worker.run(drain=True))
    await finished.next()
    await finished.next()
    await asyncio.wait_for(finalizing.wait(), 10)
    for _ in range(20):  # let the loop turn: a claim, if it would happen, happens now
        await asyncio.sleep(0)
    assert await _running_count(store) == 2
    assert len(worker.held_job_ids) == 2
    release.set()
    await asyncio.wait_for(task, 20)
    done = [await state_of(store, j.id) for j in jobs]
    assert [(d.state, d.attempt) for d in done] == [(JobState.SUCCEEDED, 1)] * 6


async def test_an_unavailable_kind_is_given_back_and_resumed_once_mended(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "RECHECK_FIRST", 0.01)
    clock = ManualClock()
    mended = False
    rechecked = asyncio.Event()

    async def recheck() -> None:
        rechecked.set()
        if not mended:
            raise Unavailable("parser process failed to start: ImportError: broken", recheck)

    registry = Registry()

    @registry.task(name="needs_parser")
    async def needs_parser(ctx: JobContext) -> str:
        if not mended:
            raise Unavailable("parser process failed to start: ImportError: broken", recheck)
        return "parsed"

    parsed = await insert(store, clock, [NewJob(kind="needs_parser") for _ in range(5)])
    (plain,) = await insert(store, clock, [NewJob(kind=PROBE_KIND)])
    probes = Probes()
    completed = probes.arm("completed")
    worker = Worker(store, registry, WorkerConfig(concurrency=10), clock, probes)
    async with running(worker):
        await _until_applied(completed, {plain.id, *(j.id for j in parsed)})
        await asyncio.wait_for(rechecked.wait(), 10)
        # the other kind ran; the documents' jobs wait, not one attempt spent
        assert "ImportError: broken" in worker.unavailable["needs_parser"]
        assert (await state_of(store, plain.id)).state is JobState.SUCCEEDED
        states = [await state_of(store, j.id) for j in parsed]
        assert [(s.state, s.attempt) for s in states] == [(JobState.QUEUED, 0)] * 5
        mended = True
        await _until_applied(completed, {j.id for j in parsed})
        assert worker.unavailable == {}
    done = [await state_of(store, j.id) for j in parsed]
    assert [(d.state, d.attempt, d.result) for d in done] == [(JobState.SUCCEEDED, 1, "parsed")] * 5


async def _until_applied(completed: Probe, ids: set[int]) -> None:
    """Until every job of `ids` has had an outcome committed (the `completed` probe's applied sets)."""
    left = set(ids)
    while left:
        left -= await completed.next()
