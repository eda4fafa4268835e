"""Worker heartbeats (lease extension, lost jobs, cancel requests) and throttled progress writes.

Every lease/3 the worker tells the store which jobs it still holds. The store extends those leases and
answers with the jobs this worker no longer owns (its lease expired and the rescuer gave the job to
someone else), the jobs a person asked to cancel and the paused queues (the worker leaves them out of
its claims from then on: a pause takes effect within one interval, lease/3). Lost jobs are stopped and
their outcomes dropped: writing them would be refused by the fence anyway, and their handlers must not
keep producing effects. Three beats per lease means two can fail (a database blip) before a live worker
loses anything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ingestq.clock import Clock
from ingestq.model.job import HeartbeatReply, Progress, WorkerBeat
from ingestq.tasks.task import ProgressSink
from ingestq.worker.executor import Running
from ingestq.worker.probes import NO_PROBES, Probes

if TYPE_CHECKING:
    from ingestq.store.base import Store

log = logging.getLogger("ingestq.worker")

RETRY_S = 0.5
"""After a failed beat, the next one comes this soon (jittered), or after the interval if that is shorter."""


class Heartbeat:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        worker_id: str,
        held: dict[int, Running],
        *,
        queues: tuple[str, ...] | None,
        concurrency: int,
        lease_seconds: float,
        on_lost: Callable[[int], None],
        on_paused: Callable[[frozenset[str]], None] | None = None,
        probes: Probes = NO_PROBES,
    ) -> None:
        self._store = store
        self._clock = clock
        self._worker_id = worker_id
        self._held = held
        self._queues = queues
        self._concurrency = concurrency
        self._lease = lease_seconds
        self._on_lost = on_lost
        self._on_paused = on_paused
        self._probes = probes
        self.interval = lease_seconds / 3
        self.unavailable: str | None = None
        """Sent with every beat: why this worker stopped claiming some kinds (shown by `ingestq stats`)."""
        # monotonic times of the last beat tried and the last one the store answered (the worker's health
        # endpoints: liveness needs the loop to keep trying, readiness needs the database to answer)
        self.tried_at: float | None = None
        self.answered_at: float | None = None

    async def beat(self) -> HeartbeatReply:
        """One heartbeat; applies the reply (stops lost jobs, forwards cancel requests and the paused
        queues)."""
        # Remember which attempt each id was: if a job finishes and is claimed again by this worker while
        # the beat is in flight, a "lost" for the old attempt must not stop the new one.
        self.tried_at = time.monotonic()
        snapshot = {job_id: run.job.attempt for job_id, run in self._held.items()}
        beat = WorkerBeat(
            worker_id=self._worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            queues=self._queues,
            concurrency=self._concurrency,
            job_ids=tuple(snapshot),
            lease_seconds=self._lease,
            unavailable=self.unavailable,
        )
        reply = await self._store.worker_heartbeat(beat, self._clock.now())
        self.answered_at = time.monotonic()
        if self._on_paused is not None:
            self._on_paused(reply.paused_queues)
        for job_id in reply.lost:
            run = self._held.get(job_id)
            if run is None or run.job.attempt != snapshot.get(job_id):
                continue
            if run.task is not None and run.task.done():
                # The handler has finished and its outcome is with the completer. Most often that outcome
                # was committed while this beat was in flight (the job is simply not running any more);
                # if the job really was lost, the completer's write is fenced by owner and attempt, refused
                # and logged there. Nothing to stop either way, and no false alarm.
                continue
            log.warning("job %s: lease lost to another worker, stopping it", job_id)
            self._on_lost(job_id)
        for job_id in reply.cancel_requested:
            run = self._held.get(job_id)
            if run is not None:
                run.ctx.request_cancel()
        await self.flush_progress()
        self._probes.hit("heartbeat", reply)
        return reply

    async def flush_progress(self) -> None:
        for run in list(self._held.values()):
            if run.progress_pending is not None:
                pending, run.progress_pending = run.progress_pending, None
                await write_progress(self._store, self._clock, self._worker_id, run, pending, self._on_lost)

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every interval until `stop` (the worker beats once itself before starting this)."""
        wait = self.interval
        while True:
            try:
                async with asyncio.timeout(wait):
                    await stop.wait()
                return
            except TimeoutError:
                pass
            try:
                await self.beat()
                wait = self.interval
            except Exception as exc:
                # Soon, not a whole interval later: with the database restarting every few seconds, two or
                # three beats lost in a row let the leases expire and the jobs be rescued from under us.
                wait = min(self.interval, RETRY_S) * random.uniform(0.8, 1.2)
                log.warning("heartbeat failed (retrying in %.1fs): %s", wait, exc)


async def write_progress(
    store: Store,
    clock: Clock,
    worker_id: str,
    run: Running,
    progress: Progress,
    on_lost: Callable[[int], None],
) -> None:
    run.progress_written_at = time.monotonic()
    held = await store.job_progress(run.job.id, worker_id, run.job.attempt, progress, clock.now())
    if not held and run.stop_reason is None:
        on_lost(run.job.id)


class ProgressThrottle:
    """Builds each job's progress sink: writes at most once per `interval` seconds per job; a report that
    arrives sooner is kept and written by the next report after the interval, or by the next heartbeat."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        worker_id: str,
        held: dict[int, Running],
        interval: float,
        on_lost: Callable[[int], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._worker_id = worker_id
        self._held = held
        self._interval = interval
        self._on_lost = on_lost

    def sink(self, job_id: int) -> ProgressSink:
        async def report(progress: Progress) -> None:
            run = self._held.get(job_id)
            if run is None:
                return
            if time.monotonic() - run.progress_written_at < self._interval:
                run.progress_pending = progress
                return
            run.progress_pending = None
            try:
                await write_progress(self._store, self._clock, self._worker_id, run, progress, self._on_lost)
            except Exception as exc:  # progress is best effort: never fail the job over it
                log.warning("job %s: progress not recorded: %s", job_id, exc)

        return report
