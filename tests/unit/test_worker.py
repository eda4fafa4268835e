"""The Worker against the real stores: claim → execute → complete, drain mode, retries, cancellation,
shutdown, fencing. Time is a ManualClock; concurrency is observed through probes, never sleeps."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ingestq.builtin import PROBE_KIND
from ingestq.clock import ManualClock
from ingestq.errors import StoreError
from ingestq.model.job import Job, JobFilter, JobState, NewJob, OutcomeKind
from ingestq.store.base import Store
from ingestq.tasks.registry import Registry, task
from ingestq.tasks.retry import ExponentialBackoff
from ingestq.tasks.task import JobContext
from ingestq.worker import Probes, Worker, WorkerConfig

NO_JITTER = ExponentialBackoff(base=10.0, max=600.0, jitter=0.0)


@task(name="tests.unit.registered_with_the_decorator")
async def decorated(n: int) -> int:
    return n * 2


async def insert(store: Store, clock: ManualClock, jobs: Sequence[NewJob]) -> list[Job]:
    return await store.job_insert_many(list(jobs), clock.now())


async def state_of(store: Store, job_id: int) -> Job:
    job = await store.job_get(job_id)
    assert job is not None
    return job


def gated_registry() -> tuple[Registry, dict[str, asyncio.Event]]:
    """A `gated` kind that blocks until the test opens its gate (by payload key)."""
    registry = Registry()
    gates: dict[str, asyncio.Event] = {}

    @registry.task(name="gated")
    async def gated(key: str, ctx: JobContext) -> str:
        gate = gates.setdefault(key, asyncio.Event())
        cancelled = asyncio.ensure_future(ctx.wait_cancelled())
        opened = asyncio.ensure_future(gate.wait())
        try:
            await asyncio.wait({cancelled, opened}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
            opened.cancel()
        ctx.raise_if_cancelled()
        return key

    return registry, gates


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        worker.request_stop(graceful=False)
        await asyncio.wait_for(task, 10)


async def test_drain_runs_every_job_once(store: Store) -> None:
    clock = ManualClock()
    jobs = await insert(store, clock, [NewJob(kind=PROBE_KIND) for _ in range(250)])
    worker = Worker(store, None, WorkerConfig(concurrency=7), clock)
    await asyncio.wait_for(worker.run(drain=True), 30)
    assert worker.counts == {OutcomeKind.SUCCEEDED: 250}
    for job in jobs[:5] + jobs[-5:]:
        done = await state_of(store, job.id)
        assert (done.state, done.attempt) == (JobState.SUCCEEDED, 1)
    assert await store.worker_list(clock.now()) == []  # deregistered


async def test_without_a_registry_a_worker_runs_the_decorated_tasks(store: Store) -> None:
    clock = ManualClock()
    (job,) = await insert(store, clock, [NewJob(kind=decorated.kind, payload={"n": 21})])
    await asyncio.wait_for(Worker(store, None, None, clock).run(drain=True), 10)
    done = await state_of(store, job.id)
    assert (done.state, done.result) == (JobState.SUCCEEDED, 42)


async def test_claims_only_known_kinds_and_chosen_queues(store: Store) -> None:
    clock = ManualClock()
    unknown, other_queue, mine = await insert(
        store,
        clock,
        [NewJob(kind="not.mine"), NewJob(kind=PROBE_KIND, queue="other"), NewJob(kind=PROBE_KIND, queue="a")],
    )
    worker = Worker(store, None, WorkerConfig(queues=("a", "b")), clock)
    await asyncio.wait_for(worker.run(drain=True), 10)
    assert (await state_of(store, unknown.id)).state is JobState.QUEUED
    assert (await state_of(store, other_queue.id)).state is JobState.QUEUED
    assert (await state_of(store, mine.id)).state is JobState.SUCCEEDED


async def test_retries_follow_the_schedule_then_succeed(store: Store) -> None:
    clock = ManualClock()
    (job,) = await insert(store, clock, [NewJob(kind=PROBE_KIND, payload={"fail_times": 2})])
    t0 = clock.now()

    async def drain() -> Job:
        await asyncio.wait_for(Worker(store, None, None, clock, retry_policy=NO_JITTER).run(drain=True), 10)
        return await state_of(store, job.id)

    first = await drain()
    assert (first.state, first.attempt) == (JobState.QUEUED, 1)
    assert (first.run_at - t0).total_seconds() == 10.0
    assert first.last_error == "RetryableError: probe failure on attempt 1 of 2 planned"
    assert (await drain()).attempt == 1  # not due yet: drain leaves it alone

    clock.advance(10)
    second = await drain()
    assert (second.state, second.attempt) == (JobState.QUEUED, 2)
    assert (second.run_at - clock.now()).total_seconds() == 20.0

    clock.advance(20)
    third = await drain()
    assert (third.state, third.attempt) == (JobState.SUCCEEDED, 3)
    assert [e.attempt for e in third.errors] == [1, 2]


async def test_exhausted_attempts_fail_with_the_last_error(store: Store) -> None:
    clock = ManualClock()
    (job,) = await insert(store, clock, [NewJob(kind=PROBE_KIND, payload={"fail_times": 9}, max_attempts=2)])
    await Worker(store, None, None, clock, retry_policy=NO_JITTER).run(drain=True)
    clock.advance(10)
    await Worker(store, None, None, clock, retry_policy=NO_JITTER).run(drain=True)
    failed = await state_of(store, job.id)
    assert (failed.state, failed.attempt) == (JobState.FAILED, 2)
    assert failed.last_error == "RetryableError: probe failure on attempt 2 of 9 planned"


async def test_bad_payload_fails_at_once(store: Store) -> None:
    clock = ManualClock()
    (job,) = await insert(store, clock, [NewJob(kind=PROBE_KIND, payload={"colour": "red"})])
    await Worker(store, None, None, clock).run(drain=True)
    failed = await state_of(store, job.id)
    assert (failed.state, failed.attempt) == (JobState.FAILED, 1)
    assert failed.last_error is not None
    assert failed.last_error.startswith("BadPayload: payload does not fit ingestq.probe:")
    assert "\n" not in failed.last_error


async def test_concurrency_bounds_what_is_claimed(store: Store) -> None:
    clock = ManualClock()
    registry, gates = gated_registry()
    jobs = await insert(store, clock, [NewJob(kind="gated", payload={"key": "k"}) for _ in range(10)])
    probes = Probes()
    started = probes.arm("job_started")
    worker = Worker(store, registry, WorkerConfig(concurrency=3), clock, probes)
    async with running(worker):
        for _ in range(3):
            await started.next()
        assert len(worker.held_job_ids) == 3
        finished = probes.arm("completed")
        gates.setdefault("k", asyncio.Event()).set()
        done: set[int] = set()
        while len(done) < 10:
            done |= await finished.next()
    states = {(await state_of(store, j.id)).state for j in jobs}
    assert states == {JobState.SUCCEEDED}


async def test_sync_handlers_run_as_many_at_once_as_the_worker_claims(store: Store) -> None:
    """Each claimed job of a sync kind gets a thread at once: 24 jobs that can only finish together
    (a barrier of 24) all finish. On the loop's default pool (min(32, CPUs + 4) threads on a small
    machine) the barrier would break and the jobs would fail."""
    clock = ManualClock()
    registry = Registry()
    together = threading.Barrier(24)

    @registry.task(name="together", max_attempts=1)
    def meet() -> None:
        together.wait(timeout=20)

    jobs = await insert(store, clock, [NewJob(kind="together", max_attempts=1) for _ in range(24)])
    worker = Worker(store, registry, WorkerConfig(concurrency=24), clock)
    await asyncio.wait_for(worker.run(drain=True), 60)
    assert {(await state_of(store, j.id)).state for j in jobs} == {JobState.SUCCEEDED}
    assert worker.counts[OutcomeKind.SUCCEEDED] == 24


async def test_a_kind_with_its_own_concurrency_is_never_claimed_beyond_it(store: Store) -> None:
    """TaskSpec.concurrency: at most 2 `heavy` jobs held at once, while `light` jobs fill the other
    slots; the queued `heavy` jobs stay in the queue meanwhile (for other workers), then all run."""
    clock = ManualClock()
    registry = Registry()
    gate = asyncio.Event()
    running_now = {"heavy": 0, "light": 0}
    most = {"heavy": 0, "light": 0}

    async def hold(kind: str) -> None:
        running_now[kind] += 1
        most[kind] = max(most[kind], running_now[kind])
        try:
            await gate.wait()
        finally:
            running_now[kind] -= 1

    @registry.task(name="heavy", concurrency=2)
    async def heavy() -> None:
        await hold("heavy")

    @registry.task(name="light")
    async def light() -> None:
        await hold("light")

    jobs = await insert(store, clock, [NewJob(kind="heavy") for _ in range(6)])
    jobs += await insert(store, clock, [NewJob(kind="light") for _ in range(6)])
    probes = Probes()
    started = probes.arm("job_started")
    worker = Worker(store, registry, WorkerConfig(concurrency=5), clock, probes)
    async with running(worker):
        for _ in range(5):
            await started.next()
        held = {(await state_of(store, job_id)).kind for job_id in worker.held_job_ids}
        assert held == {"heavy", "light"}
        assert running_now == {"heavy": 2, "light": 3}
        queued = await store.job_list(JobFilter(states=(JobState.QUEUED,), kinds=("heavy",)))
        assert len(queued) == 4
        finished = probes.arm("completed")
        gate.set()
        done: set[int] = set()
        while len(done) < len(jobs):
            done |= await finished.next()
    assert most["heavy"] == 2
    assert {(await state_of(store, j.id)).state for j in jobs} == {JobState.SUCCEEDED}


async def test_outcomes_are_written_in_batches(store: Store) -> None:
    clock = ManualClock()
    await insert(store, clock, [NewJob(kind=PROBE_KIND) for _ in range(400)])
    probes = Probes()
    batches = probes.arm("completed")
    worker = Worker(store, None, WorkerConfig(concurrency=50), clock, probes)
    await asyncio.wait_for(worker.run(drain=True), 30)
    assert worker.counts == {OutcomeKind.SUCCEEDED: 400}
    assert sum(len(b) for b in batches.values) == 400
    assert batches.hits <= 400 / 5  # no-op jobs finish together: far fewer writes than jobs


class FlakyStore:
    """The real store, except that the first `failures` calls of one method raise (a database blip)."""

    def __init__(self, store: Store, method: str, failures: int) -> None:
        self._store, self._method, self.failures = store, method, failures

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name != self._method:
            return attr

        async def flaky(*args: Any, **kwargs: Any) -> Any:
            if self.failures > 0:
                self.failures -= 1
                raise ConnectionError("database blip")
            return await attr(*args, **kwargs)

        return flaky


async def test_a_failed_completion_write_is_retried(store: Store) -> None:
    clock = ManualClock()
    jobs = await insert(store, clock, [NewJob(kind=PROBE_KIND) for _ in range(5)])
    # the completion write (it claims the next jobs in the same transaction)
    flaky = FlakyStore(store, "job_finish_and_claim", failures=2)
    worker = Worker(flaky, None, None, clock)
    await asyncio.wait_for(worker.run(drain=True), 30)
    assert flaky.failures == 0
    assert {(await state_of(store, j.id)).state for j in jobs} == {JobState.SUCCEEDED}


async def test_a_failed_claim_is_retried(store: Store) -> None:
    clock = ManualClock()
    (job,) = await insert(store, clock, [NewJob(kind=PROBE_KIND)])
    flaky = FlakyStore(store, "job_claim", failures=2)
    worker = Worker(flaky, None, WorkerConfig(poll_interval=0.01), clock)
    await asyncio.wait_for(worker.run(drain=True), 30)
    assert (await state_of(store, job.id)).state is JobState.SUCCEEDED


class RefusingStore:
    """The real store, except that it refuses any batch holding an outcome whose result is "poison", the
    way a database refuses a value it cannot hold."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def job_finish_many(self, outcomes: Sequence[Any], now: Any) -> set[int]:
        if any(o.result == "poison" for o in outcomes):
            raise ValueError("value too strange for this database")
        return await self._store.job_finish_many(outcomes, now)

    async def job_finish_and_claim(
        self, outcomes: Sequence[Any], claim: Any, now: Any
    ) -> tuple[set[int], list[Any]]:
        if any(o.result == "poison" for o in outcomes):
            raise ValueError("value too strange for this database")
        return await self._store.job_finish_and_claim(outcomes, claim, now)


async def test_an_outcome_the_store_refuses_does_not_hold_back_the_others(store: Store) -> None:
    clock = ManualClock()
    registry = Registry()

    @registry.task(name="echo")
    async def echo(value: str) -> str:
        return value

    values = ["a", "poison", "b", "c"]
    jobs = await insert(store, clock, [NewJob(kind="echo", payload={"value": v}) for v in values])
    worker = Worker(RefusingStore(store), registry, None, clock)
    await asyncio.wait_for(worker.run(drain=True), 30)
    states = {v: await state_of(store, j.id) for v, j in zip(values, jobs, strict=True)}
    assert {v: s.state for v, s in states.items()} == {
        "a": JobState.SUCCEEDED,
        "poison": JobState.FAILED,
        "b": JobState.SUCCEEDED,
        "c": JobState.SUCCEEDED,
    }
    assert states["poison"].last_error == (
        "OutcomeNotRecorded: the store refused it: ValueError: value too strange for this database"
    )


async def test_nul_characters_never_reach_the_store(store: Store) -> None:
    clock = ManualClock()
    registry = Registry()

    @registry.task(name="nul_result")
    async def nul_result() -> str:
        return "a\x00b"

    @registry.task(name="nul_error")
    async def nul_error() -> None:
        raise ValueError("bad\x00byte")

    returns, raises = await insert(store, clock, [NewJob(kind="nul_result"), NewJob(kind="nul_error")])
    await asyncio.wait_for(Worker(store, registry, None, clock).run(drain=True), 30)
    failed = await state_of(store, returns.id)
    assert (failed.state, failed.last_error) == (
        JobState.FAILED,
        "ValueError: result of nul_result contains a NUL character",
    )
    retried = await state_of(store, raises.id)
    assert (retried.state, retried.last_error) == (JobState.QUEUED, "ValueError: bad\\x00byte")


class DownStore:
    """The real store, except that the first `failures` outcome writes fail as an unreachable database
    does (StoreError), whichever write method they use."""

    def __init__(self, store: Store, failures: int) -> None:
        self._store, self.failures = store, failures

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in ("job_finish_many", "job_finish_and_claim"):
            return attr

        async def down(*args: Any, **kwargs: Any) -> Any:
            if self.failures > 0:
                self.failures -= 1
                raise StoreError("PostgreSQL at db:5432 is unavailable: no connection within 15s")
            return await attr(*args, **kwargs)

        return down


async def test_an_outage_is_not_taken_for_a_refused_outcome(store: Store) -> None:
    # Three failed writes make the completer try the outcomes one by one, to find one the store refuses.
    # A single write failing because the database is still away is no refusal: the outcome used to be
    # written as a failure the moment the database answered again (a succeeded job recorded as failed:
    # seen under PostgreSQL restarts every 2-4 s, docs/reliability.md).
    clock = ManualClock()
    (job,) = await insert(store, clock, [NewJob(kind=PROBE_KIND)])
    down = DownStore(store, failures=4)
    worker = Worker(down, None, WorkerConfig(poll_interval=0.01), clock)
    await asyncio.wait_for(worker.run(drain=True), 30)
    assert down.failures == 0
    row = await state_of(store, job.id)
    assert (row.state, row.last_error) == (JobState.SUCCEEDED, None)


class LateClaimStore:
    """The real store, except that the first claim reaches the database late: the clock moves past the
    claim's leases before it returns (it waited for a connection, or on one hung by a partition), and
    with `rescued` another worker's rescuer requeues the jobs meanwhile."""

    def __init__(self, store: Store, clock: ManualClock, lease: float, rescued: bool) -> None:
        self._store, self._clock, self._lease, self._rescued = store, clock, lease, rescued
        self.late = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def job_claim(self, req: Any, now: Any) -> list[Job]:
        jobs = await self._store.job_claim(req, now)
        if jobs and self.late:
            self.late = False
            self._clock.advance(self._lease + 1)
            if self._rescued:
                assert await self._store.job_rescue_stale(self._clock.now()) == [j.id for j in jobs]
        return jobs


@pytest.mark.parametrize("rescued", [False, True], ids=["not-yet-rescued", "rescued-meanwhile"])
async def test_a_late_claim_runs_its_jobs_once(store: Store, rescued: bool) -> None:
    # Started at once, a job whose lease had passed while its claim travelled ran while a rescuer could
    # requeue it: its outcome was refused and it ran again (twice in all). Confirmed by a heartbeat
    # first, it runs once: under the extended lease, or (rescued meanwhile) as the next attempt.
    clock = ManualClock()
    registry = Registry()
    calls: list[int] = []

    @registry.task(name="count")
    async def count(n: int) -> int:
        calls.append(n)
        return n

    (job,) = await insert(store, clock, [NewJob(kind="count", payload={"n": 1})])
    late = LateClaimStore(store, clock, 30.0, rescued)
    worker = Worker(late, registry, WorkerConfig(lease_seconds=30.0, poll_interval=0.01), clock)
    await asyncio.wait_for(worker.run(drain=True), 30)
    row = await state_of(store, job.id)
    assert (calls, row.state, row.attempt) == ([1], JobState.SUCCEEDED, 2 if rescued else 1)
