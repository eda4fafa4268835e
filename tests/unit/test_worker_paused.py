"""A paused queue (issue 9): a real worker on every backend stops claiming from it at its next heartbeat
and claims its jobs again once it is resumed. The other queues' jobs run meanwhile, claimed both by the
fetch loop and by the completer with its writes (more jobs than slots)."""

from __future__ import annotations

import asyncio
import time

import pytest
from test_worker import insert, running

from ingestq.clock import ManualClock
from ingestq.model.job import Job, JobState, NewJob
from ingestq.store.base import Store
from ingestq.tasks.registry import Registry
from ingestq.worker import Worker, WorkerConfig


def _registry() -> Registry:
    registry = Registry()

    @registry.task(name="k")
    async def k() -> str:
        return "done"

    return registry


async def _states(store: Store, jobs: list[Job]) -> set[JobState]:
    found = [await store.job_get(j.id) for j in jobs]
    return {j.state for j in found if j is not None}


async def _until(store: Store, jobs: list[Job], state: JobState) -> None:
    deadline = time.monotonic() + 20
    while await _states(store, jobs) != {state}:
        assert time.monotonic() < deadline, f"jobs not {state.value}: {await _states(store, jobs)}"
        await asyncio.sleep(0.02)


async def _still_queued(store: Store, jobs: list[Job]) -> None:
    # several poll intervals and wake-ups: a claim that would take them has had its chances
    await asyncio.sleep(0.3)
    assert await _states(store, jobs) == {JobState.QUEUED}


@pytest.mark.parametrize(
    "queues", [None, ("a",), ("a", "b")], ids=["every queue", "only the paused one", "named queues"]
)
async def test_a_worker_started_while_a_queue_is_paused_never_claims_from_it(
    store: Store, queues: tuple[str, ...] | None
) -> None:
    clock = ManualClock()
    await store.queue_pause("a", True, clock.now())
    in_a = await insert(store, clock, [NewJob(kind="k", queue="a") for _ in range(3)])
    in_b = await insert(store, clock, [NewJob(kind="k", queue="b") for _ in range(6)])
    config = WorkerConfig(concurrency=2, queues=queues, poll_interval=0.05)
    worker = Worker(store, _registry(), config, clock)
    async with running(worker):
        if queues is None or "b" in queues:
            await _until(store, in_b, JobState.SUCCEEDED)
        await _still_queued(store, in_a)
        await store.queue_pause("a", False, clock.now())
        await worker.heartbeat_now()  # instead of waiting for the next beat (lease/3)
        await _until(store, in_a, JobState.SUCCEEDED)


async def test_a_pause_takes_effect_at_the_next_heartbeat(store: Store) -> None:
    clock = ManualClock()
    worker = Worker(store, _registry(), WorkerConfig(concurrency=2, poll_interval=0.05), clock)
    async with running(worker):
        first = await insert(store, clock, [NewJob(kind="k", queue="a") for _ in range(2)])
        await _until(store, first, JobState.SUCCEEDED)
        await store.queue_pause("a", True, clock.now())
        reply = await worker.heartbeat_now()
        assert reply.paused_queues == {"a"}
        in_a = await insert(store, clock, [NewJob(kind="k", queue="a") for _ in range(3)])
        in_b = await insert(store, clock, [NewJob(kind="k", queue="b") for _ in range(6)])
        await _until(store, in_b, JobState.SUCCEEDED)
        await _still_queued(store, in_a)
        await store.queue_pause("a", False, clock.now())
        await worker.heartbeat_now()
        await _until(store, in_a, JobState.SUCCEEDED)
