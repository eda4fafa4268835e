"""Worker lifecycle on every backend: cancellation, graceful and hard shutdown, lost leases and fencing,
progress throttling, rescue, periodic jobs and retention. ManualClock + probes; no sleeps."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from test_worker import gated_registry, insert, running, state_of

from ingestq.builtin import PROBE_KIND, probe_task
from ingestq.clock import ManualClock
from ingestq.model.document import DocumentRef
from ingestq.model.job import (
    ClaimRequest,
    JobFilter,
    JobState,
    NewJob,
    OutcomeKind,
    Progress,
    Retention,
)
from ingestq.model.webhook import DeliveryFilter, DeliveryOptions, DeliveryStatus
from ingestq.settings import Settings
from ingestq.store.base import IndexStore, Store
from ingestq.store.webhook_base import WebhookStore
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext
from ingestq.worker import Periodic, Probes, Worker, WorkerConfig
from ingestq.worker.executor import Running
from ingestq.worker.heartbeat import Heartbeat
from ingestq.worker.maintenance import BLOB_GRACE, Cleaner
from ingestq.worker.periodic import PeriodicScheduler


async def test_cancel_request_stops_a_running_job(store: Store) -> None:
    clock = ManualClock()
    registry, _gates = gated_registry()
    (job,) = await insert(store, clock, [NewJob(kind="gated", payload={"key": "never"})])
    probes = Probes()
    started, completed = probes.arm("job_started"), probes.arm("completed")
    worker = Worker(store, registry, None, clock, probes)
    async with running(worker):
        await started.next()
        await store.job_cancel(job.id, clock.now())
        reply = await worker.heartbeat_now()
        assert reply.cancel_requested == {job.id}
        assert job.id in await completed.next()
    cancelled = await state_of(store, job.id)
    assert cancelled.state is JobState.CANCELLED
    assert worker.counts[OutcomeKind.CANCELLED] == 1


async def test_graceful_stop_lets_in_flight_jobs_finish(store: Store) -> None:
    clock = ManualClock()
    registry, gates = gated_registry()
    (job,) = await insert(store, clock, [NewJob(kind="gated", payload={"key": "g"})])
    probes = Probes()
    started = probes.arm("job_started")
    worker = Worker(store, registry, WorkerConfig(shutdown_grace=30), clock, probes)
    task = asyncio.create_task(worker.run())
    await started.next()
    worker.request_stop()
    await asyncio.sleep(0)
    assert not task.done()  # waiting for the job, not cancelling it
    gates.setdefault("g", asyncio.Event()).set()
    await asyncio.wait_for(task, 10)
    done = await state_of(store, job.id)
    assert (done.state, done.result) == (JobState.SUCCEEDED, "g")


async def test_after_the_grace_period_jobs_are_released_with_their_attempt(store: Store) -> None:
    clock = ManualClock()
    registry, _gates = gated_registry()
    (job,) = await insert(store, clock, [NewJob(kind="gated", payload={"key": "never"})])
    probes = Probes()
    started = probes.arm("job_started")
    worker = Worker(store, registry, WorkerConfig(shutdown_grace=0), clock, probes)
    task = asyncio.create_task(worker.run())
    await started.next()
    assert (await state_of(store, job.id)).attempt == 1
    worker.request_stop()
    await asyncio.wait_for(task, 10)
    released = await state_of(store, job.id)
    assert (released.state, released.attempt, released.lease_owner) == (JobState.QUEUED, 0, None)
    assert worker.counts == {OutcomeKind.RELEASED: 1}


async def test_second_stop_releases_at_once(store: Store) -> None:
    clock = ManualClock()
    registry, _gates = gated_registry()
    jobs = await insert(store, clock, [NewJob(kind="gated", payload={"key": "never"}) for _ in range(3)])
    probes = Probes()
    started = probes.arm("job_started")
    worker = Worker(store, registry, WorkerConfig(shutdown_grace=3600), clock, probes)
    task = asyncio.create_task(worker.run())
    for _ in jobs:
        await started.next()
    worker.request_stop(graceful=True)
    worker.request_stop(graceful=False)
    await asyncio.wait_for(task, 10)
    for job in jobs:
        assert (await state_of(store, job.id)).state is JobState.QUEUED


async def test_a_stale_worker_cannot_complete_a_rescued_job(store: Store) -> None:
    clock = ManualClock()
    registry, gates = gated_registry()
    (job,) = await insert(store, clock, [NewJob(kind="gated", payload={"key": "slow"})])
    probes = Probes()
    started, completed = probes.arm("job_started"), probes.arm("completed")
    # No background maintenance: the test plays the rescuer; lease 30 s of manual time. One slot, so the
    # stale worker cannot claim the rescued job again itself.
    config = WorkerConfig(concurrency=1, lease_seconds=30, maintenance=False)
    stale = Worker(store, registry, config, clock, probes)
    async with running(stale):
        await started.next()
        clock.advance(31)  # the stale worker hung: its lease expired
        assert await store.job_rescue_stale(clock.now()) == [job.id]
        (taken,) = await store.job_claim(ClaimRequest("other", 1, 30), clock.now())
        assert (taken.id, taken.attempt) == (job.id, 2)
        gates.setdefault("slow", asyncio.Event()).set()  # the stale handler finishes now
        assert await completed.next() == set()  # its outcome was fenced off
    now_held = await state_of(store, job.id)
    assert (now_held.state, now_held.lease_owner, now_held.attempt) == (JobState.RUNNING, "other", 2)
    assert stale.counts == {}


async def test_a_heartbeat_that_reports_a_lost_job_stops_its_handler(store: Store) -> None:
    clock = ManualClock()
    registry, _gates = gated_registry()
    (job,) = await insert(store, clock, [NewJob(kind="gated", payload={"key": "never"})])
    probes = Probes()
    started, lost = probes.arm("job_started"), probes.arm("lost")
    config = WorkerConfig(concurrency=1, lease_seconds=30, maintenance=False)
    worker = Worker(store, registry, config, clock, probes)
    async with running(worker):
        await started.next()
        clock.advance(31)
        await store.job_rescue_stale(clock.now())
        await store.job_claim(ClaimRequest("other", 1, 30), clock.now())
        reply = await worker.heartbeat_now()
        assert reply.lost == {job.id}
        assert await lost.next() == job.id
        assert worker.held_job_ids == []
    assert (await state_of(store, job.id)).lease_owner == "other"


async def test_a_lost_reply_for_a_job_whose_handler_has_finished_is_not_a_false_alarm(
    store: Store,
) -> None:
    """A job completed while a heartbeat was in flight comes back as "lost" (it is no longer running under
    this worker's lease): its handler is done and its outcome is with the completer, whose fenced write
    decides. The heartbeat must neither stop it nor drop that outcome; a running handler is still stopped."""
    clock = ManualClock()
    done_job, live_job = await insert(store, clock, [NewJob(kind="k"), NewJob(kind="k")])
    claimed = await store.job_claim(ClaimRequest("w", 2, 30), clock.now())
    assert {j.id for j in claimed} == {done_job.id, live_job.id}
    held: dict[int, Running] = {}
    for job in claimed:
        held[job.id] = Running(job, JobContext(job))
    finished: asyncio.Task[None] = asyncio.create_task(asyncio.sleep(0))
    await finished
    never: asyncio.Task[bool] = asyncio.create_task(asyncio.Event().wait())
    held[done_job.id].task, held[live_job.id].task = finished, never
    # Both leases expire and another worker takes both jobs: the store reports both as lost.
    clock.advance(31)
    await store.job_rescue_stale(clock.now())
    await store.job_claim(ClaimRequest("other", 2, 30), clock.now())
    stopped: list[int] = []
    beat = Heartbeat(
        store, clock, "w", held, queues=None, concurrency=2, lease_seconds=30, on_lost=stopped.append
    )
    reply = await beat.beat()
    assert reply.lost == {done_job.id, live_job.id}
    assert stopped == [live_job.id]
    never.cancel()


async def test_progress_is_throttled_and_flushed_by_the_heartbeat(store: Store) -> None:
    clock = ManualClock()
    registry = Registry()
    gate = asyncio.Event()
    reported = asyncio.Event()

    @registry.task(name="steps")
    async def steps(ctx: JobContext) -> None:
        await ctx.progress("parse", 1, 3)
        await ctx.progress("parse", 2, 3)  # within the throttle window: kept for later
        reported.set()
        await gate.wait()

    (job,) = await insert(store, clock, [NewJob(kind="steps")])
    # Only the beat the test asks for may flush: the worker's first beat ends before its first claim, the
    # heartbeat task's next one is 100 s away, and no rescuer runs (it beats before each pass, and its
    # first pass, at start, raced the job's reports: CI read 2/3 where 1/3 was due).
    config = WorkerConfig(progress_interval=3600, lease_seconds=300, maintenance=False)
    worker = Worker(store, registry, config, clock)
    async with running(worker):
        await asyncio.wait_for(reported.wait(), 10)
        assert (await state_of(store, job.id)).progress == Progress("parse", 1, 3)
        await worker.heartbeat_now()
        assert (await state_of(store, job.id)).progress == Progress("parse", 2, 3)
        gate.set()


async def test_drain_rescues_a_dead_workers_job_first(store: Store) -> None:
    clock = ManualClock()
    (job,) = await insert(store, clock, [NewJob(kind=PROBE_KIND)])
    await store.job_claim(ClaimRequest("dead:1:x", 1, 5), clock.now())
    probes = Probes()
    rescued = probes.arm("rescued")
    clock.advance(6)
    await Worker(store, None, None, clock, probes).run(drain=True)
    assert await rescued.next() == [job.id]
    done = await state_of(store, job.id)
    assert (done.state, done.attempt) == (JobState.SUCCEEDED, 2)
    assert done.errors[0].attempt == 1


async def test_the_rescuer_never_takes_its_own_workers_live_job(store: Store) -> None:
    """Issue 8: a worker never rescues its own live jobs. Its heartbeat task is starved here (lease 30 s,
    so the next beat is 10 s of real time away) while manual time jumps past the lease the first beat
    wrote; the rescuer, every 20 ms, must beat before it looks. Without that beat it requeues the job."""
    clock = ManualClock()
    registry, gates = gated_registry()
    (job,) = await insert(store, clock, [NewJob(kind="gated", payload={"key": "live"})])
    probes = Probes()
    started, rescued, completed = probes.arm("job_started"), probes.arm("rescued"), probes.arm("completed")
    config = WorkerConfig(lease_seconds=30, rescue_interval=0.02)
    worker = Worker(store, registry, config, clock, probes)
    async with running(worker):
        await started.next()
        # Every pass so far and one that ends now; then the jump, with no await in between, so that no
        # pass is between its beat and its look when time moves (a jump there would beat the rule too).
        passes = [await rescued.next() for _ in range(rescued.hits + 1)]
        clock.advance(45)  # past the lease of the first heartbeat (first beat + 30 s)
        passes += [await rescued.next() for _ in range(3)]
        assert [ids for ids in passes if job.id in ids] == []
        held = await state_of(store, job.id)
        assert (held.state, held.attempt, held.lease_owner) == (JobState.RUNNING, 1, worker.worker_id)
        gates["live"].set()
        assert job.id in await completed.next()
    done = await state_of(store, job.id)
    assert (done.state, done.attempt, done.errors) == (JobState.SUCCEEDED, 1, ())


async def _periodic_jobs(store: Store) -> int:
    return len(await store.job_list(JobFilter(kinds=(PROBE_KIND,), limit=1000)))


async def test_periodic_slots_are_enqueued_once_across_workers(store: Store) -> None:
    clock = ManualClock()  # 2030-01-01 00:00, a slot boundary
    every5 = Periodic("*/5 * * * *", probe_task, payload={"fail_times": 0})
    schedulers = [PeriodicScheduler(store, clock, [every5]) for _ in range(3)]
    for s in schedulers:
        assert await s.tick() == 60.0  # first slot is in the future: nothing yet, re-check in 60 s at most
    assert await _periodic_jobs(store) == 0
    clock.advance(300)
    await asyncio.gather(*(s.tick() for s in schedulers))
    assert await _periodic_jobs(store) == 1
    clock.advance(60)
    await asyncio.gather(*(s.tick() for s in schedulers))
    assert await _periodic_jobs(store) == 1
    clock.advance(3600)  # missed slots coalesce into one job
    await asyncio.gather(*(s.tick() for s in schedulers))
    assert await _periodic_jobs(store) == 2
    (job, _) = await store.job_list(JobFilter(kinds=(PROBE_KIND,)))
    assert job.payload == {"fail_times": 0}


async def test_worker_runs_periodic_jobs_on_start(store: Store) -> None:
    clock = ManualClock()
    clock.advance(90)
    hourly = Periodic("0 * * * *", PROBE_KIND, run_on_start=True)
    worker = Worker(store, None, None, clock, periodic=[hourly])
    await worker.run(drain=True)
    await Worker(store, None, None, clock, periodic=[hourly]).run(drain=True)  # same slot: no second job
    assert worker.counts == {OutcomeKind.SUCCEEDED: 1}
    assert await _periodic_jobs(store) == 1


def test_periodic_rejects_a_bad_cron() -> None:
    with pytest.raises(ValueError, match=r"^invalid cron expression 'every five minutes' \(expected"):
        Periodic("every five minutes", PROBE_KIND)


async def test_cleaner_prunes_finished_jobs_past_retention(store: Store) -> None:
    clock = ManualClock()
    ok, bad = await insert(
        store, clock, [NewJob(kind=PROBE_KIND), NewJob(kind=PROBE_KIND, payload={"nope": 1})]
    )
    await Worker(store, None, None, clock).run(drain=True)
    cleaner = Cleaner(store, clock, Retention(succeeded=60, failed=3600, cancelled=60), batch=1)
    assert await cleaner.run_once() == 0
    clock.advance(61)
    assert await cleaner.run_once() == 1
    assert await store.job_get(ok.id) is None
    assert (await state_of(store, bad.id)).state is JobState.FAILED
    clock.advance(timedelta(hours=1).total_seconds())
    assert await cleaner.run_once() == 1
    assert await store.job_get(bad.id) is None


async def _skip_without_the_index_schema(store: Store) -> None:
    applied, latest = await store.schema_version()
    if applied < latest:
        pytest.skip("this PostgreSQL server has no pgvector: no documents, cache, blobs or webhooks")


async def test_cleaner_prunes_the_embedding_cache_past_its_retention(store: Store) -> None:
    await _skip_without_the_index_schema(store)
    # The one-hour soak (bench/soak) found the cache growing with every upload, deleted documents
    # included: nothing ever deleted its entries.
    assert isinstance(store, IndexStore)
    clock = ManualClock()
    await store.embed_cache_put("m", {"a": [1.0], "b": [2.0]}, clock.now())
    keep_forever = Cleaner(store, clock, Retention(), batch=1)
    cleaner = Cleaner(store, clock, Retention(), batch=1, embed_cache_retention=3600)
    clock.advance(1800)
    await store.embed_cache_put("m", {"c": [3.0]}, clock.now())
    clock.advance(1801)
    assert await keep_forever.prune_embed_cache() == 0
    await cleaner.run_once()
    assert set(await store.embed_cache_get("m", ["a", "b", "c"])) == {"c"}
    assert WorkerConfig.from_settings(Settings(embed_cache_retention=0)).embed_cache_retention is None
    assert WorkerConfig.from_settings(Settings()).embed_cache_retention == 30 * 24 * 3600


async def test_cleaner_sweeps_uploaded_bytes_no_document_names(store: Store) -> None:
    await _skip_without_the_index_schema(store)
    # The one-hour soak (bench/soak) found one blob per upload left behind each deleted document.
    assert isinstance(store, IndexStore)
    clock = ManualClock()
    kept = await store.blob_put(b"kept", clock.now())
    gone = await store.blob_put(b"gone", clock.now())
    await store.document_register(DocumentRef("c", "kept", "upload:kept", kept), clock.now())
    await store.document_register(DocumentRef("c", "gone", "upload:gone", gone), clock.now())
    assert await store.document_delete("c", "gone")
    cleaner = Cleaner(store, clock, Retention())
    assert await cleaner.prune_blobs() == 0  # within the grace: its document may be on its way
    clock.advance(BLOB_GRACE + 1)
    await cleaner.run_once()
    assert await store.blob_get(gone) is None
    assert await store.blob_get(kept) == b"kept"


async def test_cleaner_prunes_finished_webhook_deliveries_with_the_jobs_retention(store: Store) -> None:
    await _skip_without_the_index_schema(store)
    # Deliveries and their attempts were never deleted: their jobs were pruned, the rows stayed.
    assert isinstance(store, WebhookStore)
    clock = ManualClock()
    options = DeliveryOptions(queue="hooks", max_attempts=1)
    await store.job_insert_with_callbacks(
        NewJob(kind=PROBE_KIND), ["https://a.example/h"], options, clock.now()
    )
    await Worker(store, None, WorkerConfig(queues=("default",)), clock).run(drain=True)
    (delivery,) = await store.webhook_delivery_list(DeliveryFilter())
    assert delivery.job_id is not None
    await store.webhook_attempt_record(
        delivery.id, delivery.job_id, DeliveryStatus.DELIVERED, 200, None, 1.0, clock.now()
    )
    cleaner = Cleaner(store, clock, Retention(succeeded=60, failed=3600, cancelled=60))
    assert await cleaner.prune_webhooks() == 0
    clock.advance(61)
    await cleaner.run_once()
    assert await store.webhook_delivery_get(delivery.id) is None


async def test_registry_periodic_reaches_the_worker(store: Store) -> None:
    clock = ManualClock()
    registry = Registry()
    registry.periodic("*/10 * * * *", probe_task, {"seconds": 0}, run_on_start=True)
    worker = Worker(store, registry, None, clock)
    await worker.run(drain=True)
    assert worker.counts == {OutcomeKind.SUCCEEDED: 1}
    (job,) = await store.job_list(JobFilter(kinds=(PROBE_KIND,)))
    assert job.payload == {"seconds": 0}


async def test_a_deadline_stops_claiming_then_releases_what_is_still_running(store: Store) -> None:
    clock = ManualClock()
    registry, _gates = gated_registry()
    jobs = await insert(store, clock, [NewJob(kind="gated", payload={"key": "never"}) for _ in range(3)])
    probes = Probes()
    started = probes.arm("job_started")
    # one slot: the first job runs (and never finishes), the others wait for the slot
    worker = Worker(store, registry, WorkerConfig(concurrency=1, shutdown_grace=0), clock, probes)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(worker.run(deadline=loop.time() + 0.2))
    await started.next()
    await asyncio.wait_for(task, 10)  # without the deadline the run would wait on the gate forever
    states = [await state_of(store, job.id) for job in jobs]
    assert [(s.state, s.attempt, s.lease_owner) for s in states] == [(JobState.QUEUED, 0, None)] * 3
    assert worker.counts == {OutcomeKind.RELEASED: 1}


async def test_a_drain_with_a_deadline_in_the_past_claims_nothing(store: Store) -> None:
    clock = ManualClock()
    (job,) = await insert(store, clock, [NewJob(kind=PROBE_KIND)])
    worker = Worker(store, None, WorkerConfig(shutdown_grace=0), clock)
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(worker.run(drain=True, deadline=loop.time() - 1), 10)
    assert (await state_of(store, job.id)).state is JobState.QUEUED
    assert worker.counts == {}
