"""The Worker: a fetch loop that claims jobs for its free slots, runs them, and records their outcomes.

    claim (free slots) ──▶ executor (one task per job) ──▶ completer (batched writes)
            ▲                                                     │
            └──── a slot frees / new jobs arrive / poll ◀─────────┘
    heartbeat (lease/3): extend leases, stop lost jobs, forward cancel requests, learn the paused queues
    maintenance: rescuer, retention cleaner, periodic scheduler

The loop never prefetches beyond its free slots (like River's producer): a job claimed by a busy worker
would sit idle under a lease while another worker could run it, and a crash would strand more of them.
It claims only kinds its registry knows, so mixed fleets (workers with different --app) share queues.
When outcomes are waiting to be written, the loop leaves the claim to the completer, which makes both
in one transaction (the Worker is its `Claimer`); slots reserved by a claim in flight count as taken.

A job holds its slot from its claim until its outcome is committed (`_held`), not only while its handler
runs: a job whose finalizer (a document's index write) waits in the completer still counts. Otherwise a
fast handler with a slow finalizer lets the claim loop run ahead of the writes without bound, and the
held jobs' leases expire behind the backlog (issue 8: 2,541 ingestion jobs running under a cap of 64).

A handler that raises `Unavailable` (this machine cannot serve the kind now: a parser process that cannot
start) gives its job back without spending the attempt; the worker stops claiming that kind, gives back
the other jobs of the kind it holds, shows the reason on its heartbeat, and calls the error's `recheck`
with backoff until it passes. Other kinds run on.

A paused queue (`ingestq queues pause`) is left out of the claims from the next heartbeat reply on, so a
pause takes effect within one heartbeat interval (lease/3); the first beat comes before the first claim,
so a worker that starts while a queue is paused never claims from it. Jobs it already holds run on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ingestq.builtin import builtin_kinds
from ingestq.clock import SYSTEM_CLOCK, Clock
from ingestq.errors import Unavailable
from ingestq.model.job import ClaimRequest, HeartbeatReply, Job, Outcome, OutcomeKind
from ingestq.settings import Settings
from ingestq.tasks.registry import Registry, default_registry
from ingestq.tasks.retry import RetryPolicy
from ingestq.tasks.task import JobContext
from ingestq.worker.completer import Completer
from ingestq.worker.config import WorkerConfig
from ingestq.worker.executor import Executor, Running, StopReason
from ingestq.worker.heartbeat import Heartbeat, ProgressThrottle
from ingestq.worker.maintenance import Cleaner, Rescuer, every
from ingestq.worker.orphans import orphaned_claims
from ingestq.worker.periodic import PeriodicScheduler
from ingestq.worker.probes import NO_PROBES, Probes
from ingestq.worker.slots import Slots

if TYPE_CHECKING:  # annotations only (see tests/cli/test_worker_startup.py)
    from ingestq.store.base import Store
    from ingestq.tasks.periodic import Periodic
    from ingestq.worker.metrics import WorkerMetrics

log = logging.getLogger("ingestq.worker")

RECHECK_FIRST = 1.0  # seconds before an unavailable kind's first recheck; doubles up to RECHECK_MAX
RECHECK_MAX = 30.0


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self,
        store: Store,
        registry: Registry | None = None,
        config: WorkerConfig | Settings | None = None,
        clock: Clock = SYSTEM_CLOCK,
        probes: Probes | None = None,
        *,
        periodic: Sequence[Periodic] = (),
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        if isinstance(config, Settings):
            config = WorkerConfig.from_settings(config)
        self.config = config or WorkerConfig()
        self.store = store
        # Like Client: without a registry, the tasks registered with @ingestq.task (and the built-in kinds).
        self.registry = builtin_kinds(self.config.probe_marker_dir).merge(
            registry if registry is not None else default_registry
        )
        self.clock = clock
        self.probes = probes or NO_PROBES
        self.periodic = (*self.registry.periodic_jobs, *periodic)
        self.worker_id = make_worker_id()
        self.counts: Counter[OutcomeKind] = Counter()
        self.abandoned_threads = 0  # sync handlers still running in threads after their job was stopped
        self.metrics: WorkerMetrics | None = None  # set to serve Prometheus metrics (worker/metrics.py)
        self._executor = Executor(self.registry, clock, self.worker_id, retry_policy)
        self._executor.on_unavailable = self._on_unavailable
        self._rechecks: set[asyncio.Task[None]] = set()  # of kinds this machine cannot serve now
        self._confirming: set[asyncio.Task[None]] = set()  # late claims waiting for a heartbeat
        caps = {k: spec.concurrency for k, spec in self.registry.tasks.items() if spec.concurrency}
        self._slots = Slots(self.config.concurrency, caps)
        self._held: dict[int, Running] = {}  # claimed, outcome not yet committed: each holds a slot
        self._executing = 0  # held jobs whose handler is still running
        self._wake = asyncio.Event()
        self._stopping = False
        self._hard = False
        # True when a claim may find jobs: set by wake-ups from the store, a full claim, a requeue.
        self._maybe_more = True
        self._completer: Completer | None = None
        self._claim_failed = False
        self._scanning = False  # looking for orphaned claims: no claim may run meanwhile
        self._drain = False
        self._request: ClaimRequest | None = None
        self._paused: frozenset[str] = frozenset()  # paused queues, from the last heartbeat reply
        self._heartbeat: Heartbeat | None = None
        self._progress = ProgressThrottle(
            store, clock, self.worker_id, self._held, self.config.progress_interval, self._on_lost
        )

    # --- public ----------------------------------------------------------------------------------------
    @property
    def held_job_ids(self) -> list[int]:
        return list(self._held)

    @property
    def heartbeat(self) -> Heartbeat | None:
        """The running worker's heartbeat (None before `run`): when it last tried and was answered."""
        return self._heartbeat

    @property
    def stopping(self) -> bool:
        return self._stopping

    def request_stop(self, graceful: bool = True) -> None:
        """Stop claiming. Graceful: in-flight jobs get `shutdown_grace` seconds, then are released.
        Not graceful: in-flight jobs are cancelled and released now. Safe to call more than once."""
        self._stopping = True
        if not graceful and not self._hard:
            self._hard = True
            for run in list(self._held.values()):
                if run.task is not None and not run.task.done():
                    run.stop(StopReason.SHUTDOWN)
        self._wake.set()

    async def heartbeat_now(self) -> HeartbeatReply:
        """Beat at once instead of waiting for the next tick (tests, and a worker that knows it lagged)."""
        if self._heartbeat is None:
            raise RuntimeError("the worker is not running")
        return await self._heartbeat.beat()

    async def run(self, drain: bool = False, deadline: float | None = None) -> None:
        """Work until `request_stop`, or with `drain=True` until nothing due remains and nothing is in
        flight. Database errors never end the run: every loop logs them and retries.

        `deadline` (on the event loop's clock, `loop.time()`, as `asyncio.timeout_at` takes it): stop
        claiming then, as `request_stop()` would; in-flight jobs get `shutdown_grace` more seconds to
        finish, then are released without spending their attempt. So the run ends by deadline + grace:
        the budget of a cron- or request-driven run ("process the queue for S seconds")."""
        cfg = self.config
        at_deadline = None
        if deadline is not None:
            at_deadline = asyncio.get_running_loop().call_at(deadline, self.request_stop)
        completer = self._completer = Completer(
            self.store,
            self.clock,
            self._on_done,
            max_batch=cfg.completer_batch,
            probes=self.probes,
            claimer=self,
        )
        heartbeat = self._heartbeat = Heartbeat(
            self.store,
            self.clock,
            self.worker_id,
            self._held,
            queues=cfg.queues,
            concurrency=cfg.concurrency,
            lease_seconds=cfg.lease_seconds,
            on_lost=self._on_lost,
            on_paused=self._on_paused,
            probes=self.probes,
        )
        try:
            await heartbeat.beat()  # also learns the paused queues before the first claim
        except Exception as exc:  # keep going: the loops below retry until the database is back
            log.warning("could not register worker %s (will retry): %s", self.worker_id, exc)
        if any(not spec.is_async for spec in self.registry.tasks.values()):
            # Sync handlers get a thread per slot: on the loop's default pool (min(32, CPUs + 4) threads)
            # the rest of a full claim would wait under their leases, their timeouts running.
            self._executor.threads = ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="ingestq-job")
        completer_task = asyncio.create_task(completer.run(), name="ingestq-completer")
        stop_background = asyncio.Event()
        background = [asyncio.create_task(heartbeat.run(stop_background), name="ingestq-heartbeat")]
        background += await self._start_maintenance(drain, stop_background)
        try:
            await self._fetch_loop(drain)
            await self._release_in_flight()
        finally:
            self._stopping = True
            if at_deadline is not None:
                at_deadline.cancel()
            for recheck in self._rechecks:
                recheck.cancel()
            for confirm in self._confirming:
                confirm.cancel()
            if self._executing:  # only after an unexpected error: the normal path released them above
                self._stop_all(StopReason.SHUTDOWN)
                tasks = [r.task for r in self._held.values() if r.task is not None and not r.task.done()]
                await asyncio.gather(*tasks, return_exceptions=True)
            await self._close_completer(completer, completer_task)
            stop_background.set()
            await asyncio.gather(*background, return_exceptions=True)
            try:
                await self.store.worker_deregister(self.worker_id)
            except Exception as exc:
                log.warning("could not deregister worker %s: %s", self.worker_id, exc)
            threads, self._executor.threads = self._executor.threads, None
            if threads is not None:
                # Threads of stopped sync handlers cannot be interrupted: do not wait for them.
                threads.shutdown(wait=not self.abandoned_threads, cancel_futures=True)

    # --- fetch loop ------------------------------------------------------------------------------------
    async def _fetch_loop(self, drain: bool) -> None:
        cfg = self.config
        request = self._request = self._claim_request()
        self._drain = drain
        slots = self._slots
        jobs_wait: asyncio.Task[None] | None = None
        assert self._completer is not None
        try:
            while not self._stopping:
                self._wake.clear()
                request = self._request or request  # a heartbeat may have changed the paused queues
                free = self._slots.free()
                if self._completer.will_claim and not self._claim_failed:
                    pass  # its write claims for the free slots (reserve below): one transaction, not two
                elif drain and not self._held and slots.unavailable and slots.size(request, 1) is None:
                    return  # a drain: nothing left that this machine can run now
                elif free > 0 and (self._maybe_more or drain) and slots.size(request, free) is not None:
                    # Cleared before the claim, so a wake-up that arrives while it runs is not lost.
                    self._maybe_more = False
                    found = await self._claim(request, free)
                    if found is None or found[1]:
                        # The store failed (_claim already paused), or the claim was full or cut short by a
                        # kind's cap: more may be due.
                        self._maybe_more = True
                        continue
                    claimed = found[0]
                    if claimed == 0:
                        self.probes.hit("idle")
                    if drain and claimed == 0 and self._executing == 0:
                        if self._completer.idle:
                            return
                        await self._completer.wait_idle()  # its retries may be due at once
                        self._maybe_more = True
                        continue
                if not drain and free > 0 and (jobs_wait is None or jobs_wait.done()):
                    jobs_wait = asyncio.create_task(self.store.wait_for_jobs(cfg.poll_interval))
                    jobs_wait.add_done_callback(self._jobs_may_be_available)
                await self._wake.wait()
        finally:
            if jobs_wait is not None and not jobs_wait.done():
                jobs_wait.cancel()

    def _claim_request(self) -> ClaimRequest:
        """The claim for every free slot, leaving out the paused queues: a worker of named queues
        claims only those not paused (a one-queue claim stays on that queue's index slice; none left,
        no claim), a worker of every queue excludes the paused ones (ClaimRequest.exclude_queues)."""
        cfg = self.config
        queues, exclude = cfg.queues, None
        if queues is None:
            exclude = tuple(sorted(self._paused)) or None
        elif self._paused:
            queues = tuple(q for q in queues if q not in self._paused)
        return ClaimRequest(
            worker_id=self.worker_id,
            limit=cfg.concurrency,
            lease_seconds=cfg.lease_seconds,
            queues=queues,
            kinds=self.registry.kinds(),
            exclude_queues=exclude,
        )

    def _on_paused(self, paused: frozenset[str]) -> None:
        """A heartbeat's paused queues: the fetch loop's and the completer's next claims follow them
        (both build theirs from `self._request`). A resumed queue may have jobs due: claim at once.
        Jobs already claimed from a queue that is paused now run to their end."""
        if paused == self._paused:
            return
        self._paused = paused
        if self._request is not None:
            self._request = self._claim_request()
        self._maybe_more = True
        self._wake.set()

    def _jobs_may_be_available(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("waiting for jobs failed: %s", task.exception())
        self._maybe_more = True
        self._wake.set()

    async def _claim(self, request: ClaimRequest, free: int) -> tuple[int, bool] | None:
        """(jobs claimed, whether more may be due); None if the store failed."""
        req = self._slots.size(request, free)
        if req is None:
            return 0, False
        self._slots.reserve(req)
        try:
            jobs = await self.store.job_claim(req, self.clock.now())
        except Exception as exc:
            log.warning("claiming jobs failed (retrying in %.1fs): %s", self.config.poll_interval, exc)
            self._claim_failed = True
            await self._pause(self.config.poll_interval)
            return None
        finally:
            self._slots.unreserve(req)
        # Held before the orphan scan below: the jobs this claim returned are leased to us and not yet in
        # `_held`, so the scan took them for orphans, released them and ran them anyway (run twice under
        # one attempt after a database outage: found by the fault suite, docs/reliability.md).
        self._start_all(jobs)
        if self._claim_failed and not self._slots.reserved:
            # (With a claim of the completer in flight, its jobs would look orphaned: look next time.)
            self._scanning = True
            try:
                self._claim_failed = not await self._release_orphans()
            finally:
                self._scanning = False
        return len(jobs), self._slots.maybe_more(req, jobs)

    # --- Claimer: the completer claims with its writes -------------------------------------------------
    def reserve(self, finishing: Sequence[Outcome] = ()) -> ClaimRequest | None:
        # The `finishing` outcomes commit in the same transaction as this claim: their jobs' slots are
        # free for it (those still held for that attempt; a lost job's slot is already free).
        held = self._held
        freed = 0
        for outcome in finishing:
            run = held.get(outcome.job_id)
            if run is not None and run.job.attempt == outcome.attempt:
                freed += 1
        free = self._slots.free(freed)
        if self._stopping or self._scanning or self._request is None or free <= 0:
            return None
        if not (self._maybe_more or self._drain):
            return None
        req = self._slots.size(self._request, free)
        if req is None:
            return None
        self._maybe_more = False  # as in the fetch loop: a wake-up during the write is not lost
        self._slots.reserve(req)
        return req

    def claimed(self, request: ClaimRequest, jobs: list[Job] | None) -> None:
        self._slots.unreserve(request)
        self._wake.set()
        if jobs is None:
            # Maybe claimed after all (the reply was lost): the fetch loop claims next and looks.
            self._claim_failed = True
            self._maybe_more = True
            return
        if self._slots.maybe_more(request, jobs):
            self._maybe_more = True
        if not jobs:
            self.probes.hit("idle")
            return
        if self._stopping:
            # Claimed while the worker began to stop: give them back at once, unrun.
            assert self._completer is not None
            for job in jobs:
                self._hold(Running(job, JobContext(job)))
                self._completer.add(Outcome(job.id, self.worker_id, job.attempt, OutcomeKind.RELEASED))
            return
        self._start_all(jobs)

    async def _release_orphans(self) -> bool:
        """After a failed claim: find jobs the store gave us although the reply never arrived (the
        connection broke after the commit) and give them back at once, instead of leaving them running
        until their lease expires. Returns False if the store could not be asked (try again later)."""
        try:
            orphans = await orphaned_claims(self.store, self.worker_id, self._held)
        except Exception as exc:
            log.warning("could not look for orphaned claims: %s", exc)
            return False
        if orphans and self._completer is not None:
            log.warning("releasing %d jobs claimed while the connection failed", len(orphans))
            for job in orphans:
                self._hold(Running(job, JobContext(job)))  # held until the release is written
                self._completer.add(Outcome(job.id, self.worker_id, job.attempt, OutcomeKind.RELEASED))
        return True

    async def _pause(self, seconds: float) -> None:
        self._wake.clear()
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass

    # --- one job ---------------------------------------------------------------------------------------
    def _start_all(self, jobs: list[Job]) -> None:
        # A claim is stamped with this worker's time when it is sent, and its leases run from then. One
        # that reached the database late (it waited for a connection, or hung on a connection cut by a
        # partition) can return leases already past: a rescuer would requeue those jobs while they run
        # here (seen in `bench.chaos multi-host`). They start only once a heartbeat has extended their
        # leases (fenced by owner; if they were rescued meanwhile it reports them lost instead).
        now = self.clock.now()
        late = [j for j in jobs if j.lease_expires_at is not None and j.lease_expires_at <= now]
        for job in jobs:
            if not late or job not in late:
                self._start(job)
        if late:
            self._confirm_late(late)
        if jobs and self.probes.armed("claimed"):  # the ids cost a list per batch: only when watched
            self.probes.hit("claimed", [job.id for job in jobs])

    def _confirm_late(self, late: list[Job]) -> None:
        log.warning("%d jobs claimed with leases already past: confirming them by a heartbeat", len(late))
        for job in late:
            self._hold(Running(job, JobContext(job)))
            self._executing += 1  # as if running: a drain or a stop waits for them
        task = asyncio.get_running_loop().create_task(self._start_confirmed(late))
        self._confirming.add(task)
        task.add_done_callback(self._confirming.discard)

    async def _start_confirmed(self, late: list[Job]) -> None:
        confirmed = False
        try:
            if self._heartbeat is not None:
                await self._heartbeat.beat()  # a lost job is unheld by _on_lost
                confirmed = True
        except Exception as exc:
            log.warning("could not confirm %d late-claimed jobs (giving them back): %s", len(late), exc)
        finally:
            self._executing -= len(late)
            self._wake.set()
        for job in late:
            run = self._held.get(job.id)
            if run is None or run.task is not None or run.job.attempt != job.attempt:
                continue  # lost to a rescuer: not ours to run
            if confirmed and not self._stopping:
                self._start(job)
            elif self._completer is not None:
                self._completer.add(Outcome(job.id, self.worker_id, job.attempt, OutcomeKind.RELEASED))

    def _start(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        run = Running(job, JobContext(job, self._progress.sink(job.id), loop))
        self._hold(run)
        self._executing += 1
        if self.metrics is not None:
            self.metrics.job_started(job, time.time())
        run.task = loop.create_task(self._execute(run))

    def _hold(self, run: Running) -> None:
        previous = self._held.get(run.job.id)
        self._held[run.job.id] = run
        if previous is None:  # one slot per job, however often it is held
            self._slots.take(run.job.kind)

    def _unhold(self, job_id: int) -> Running | None:
        """Free the job's slot (its outcome is committed, or it is lost to another worker)."""
        run = self._held.pop(job_id, None)
        if run is not None:
            self._slots.give_back(run.job.kind)
        return run

    async def _execute(self, run: Running) -> None:
        self.probes.hit("job_started", run.job.id)
        outcome: Outcome | None = None
        try:
            outcome = await self._executor.execute(run)
        except asyncio.CancelledError:
            # Cancelled from outside (the worker's own task is being torn down): give the job back.
            outcome = Outcome(run.job.id, self.worker_id, run.job.attempt, OutcomeKind.RELEASED)
        except BaseException as exc:  # the executor catches everything a handler raises; belt and braces
            log.exception("job %s: executor crashed: %s", run.job.id, exc)
            outcome = Outcome(run.job.id, self.worker_id, run.job.attempt, OutcomeKind.RELEASED)
        finally:
            self._executing -= 1
            self._wake.set()
            if self.metrics is not None:
                self.metrics.job_finished(run.job, outcome)
        if run.stop_reason is not None and (outcome is None or outcome.kind is OutcomeKind.RELEASED):
            spec = self.registry.tasks.get(run.job.kind)
            if spec is not None and not spec.is_async:
                # A thread cannot be cancelled: the sync handler runs on, its job already given back.
                self.abandoned_threads += 1
        if outcome is None:
            self._unhold(run.job.id)
            return
        self.probes.hit("job_finished", outcome)
        assert self._completer is not None
        self._completer.add(outcome, run.ctx.finalizer)

    def _on_done(self, outcomes: list[Outcome], applied: set[int]) -> None:
        counts: dict[OutcomeKind, int] = {}
        held = self._held
        for outcome in outcomes:
            run = held.get(outcome.job_id)
            if run is not None and run.job.attempt == outcome.attempt:
                self._unhold(outcome.job_id)
            if outcome.job_id in applied:
                kind = outcome.kind
                counts[kind] = counts.get(kind, 0) + 1
                if kind is OutcomeKind.RETRY or kind is OutcomeKind.RELEASED:
                    self._maybe_more = True
            else:
                log.warning(
                    "job %s: outcome %s not recorded, another worker holds the job now",
                    outcome.job_id,
                    outcome.kind,
                )
        self.counts.update(counts)
        self._wake.set()

    def _on_lost(self, job_id: int) -> None:
        run = self._unhold(job_id)
        if run is None:
            return
        if run.task is not None and not run.task.done():
            run.stop(StopReason.LOST)
        elif self._completer is not None:
            self._completer.drop(job_id)
        if self.metrics is not None:
            self.metrics.lease_lost()
        self.probes.hit("lost", job_id)

    # --- kinds this machine cannot serve now -----------------------------------------------------------
    def _on_unavailable(self, job: Job, error: Unavailable) -> None:
        """A handler raised Unavailable: its job is being given back (the executor's outcome)."""
        kind = job.kind
        if kind in self._slots.unavailable:
            return
        log.warning("not claiming %s until this machine can run it again: %s", kind, error.reason)
        self._slots.unavailable[kind] = error.reason
        self._show_unavailable()
        loop = asyncio.get_running_loop()
        # On the next turn: a job claimed in this batch whose task has not started yet would be cancelled
        # before its first line, and never report back (asyncio runs the tasks already scheduled first).
        loop.call_soon(self._give_back, kind)
        recheck = loop.create_task(self._recheck(kind, error))
        self._rechecks.add(recheck)
        recheck.add_done_callback(self._rechecks.discard)

    def _give_back(self, kind: str) -> None:
        """Stop the held jobs of `kind`: each is released with its attempt, as at shutdown."""
        if kind not in self._slots.unavailable:
            return
        for run in list(self._held.values()):
            if run.job.kind == kind and run.task is not None and not run.task.done():
                run.stop(StopReason.SHUTDOWN)

    async def _recheck(self, kind: str, error: Unavailable) -> None:
        delay = RECHECK_FIRST
        while not self._stopping:
            await asyncio.sleep(delay)  # cancelled when the run ends
            try:
                await error.recheck()
            except Exception as exc:
                reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                self._slots.unavailable[kind] = reason
                self._show_unavailable()
                delay = min(delay * 2, RECHECK_MAX)
                log.warning("%s still unavailable (next check in %.0fs): %s", kind, delay, reason)
                continue
            log.info("%s available again: claiming it", kind)
            del self._slots.unavailable[kind]
            self._show_unavailable()
            self._maybe_more = True
            self._wake.set()
            return

    def _show_unavailable(self) -> None:
        if self._heartbeat is not None:
            reasons = sorted(self._slots.unavailable.items())
            self._heartbeat.unavailable = "; ".join(f"{kind}: {why}" for kind, why in reasons) or None

    @property
    def unavailable(self) -> dict[str, str]:
        """Kinds this worker does not claim now, with the reason (a copy)."""
        return dict(self._slots.unavailable)

    # --- shutdown --------------------------------------------------------------------------------------
    async def _release_in_flight(self) -> None:
        """Give in-flight jobs `shutdown_grace` seconds to finish, then release the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace
        while self._executing and not self._hard:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._wake.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wake.wait()
            except TimeoutError:
                break
        if self._executing:
            log.warning("releasing %d in-flight jobs back to the queue", self._executing)
        self._stop_all(StopReason.SHUTDOWN)
        tasks = [run.task for run in self._held.values() if run.task is not None and not run.task.done()]
        await asyncio.gather(*tasks, return_exceptions=True)

    def _stop_all(self, reason: StopReason) -> None:
        for run in list(self._held.values()):
            if run.task is not None and not run.task.done():
                run.stop(reason)

    async def _close_completer(self, completer: Completer, task: asyncio.Task[Any]) -> None:
        completer.close()
        done, _ = await asyncio.wait({task}, timeout=max(5.0, self.config.lease_seconds))
        if not done:
            completer.close(give_up_on_errors=True)
            await asyncio.gather(task, return_exceptions=True)

    # --- maintenance -----------------------------------------------------------------------------------
    async def _start_maintenance(self, drain: bool, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        cfg = self.config
        if not cfg.maintenance:
            return []
        rescuer = Rescuer(self.store, self.clock, self.probes)
        scheduler = (
            PeriodicScheduler(self.store, self.clock, self.periodic, self.probes) if self.periodic else None
        )
        if drain:
            # One pass up front so `--once` also picks up jobs stranded by a dead worker.
            try:
                await rescuer.run_once()
                if scheduler is not None:
                    await scheduler.tick()
            except Exception as exc:
                log.warning("maintenance pass failed: %s", exc)
            return []
        cleaner = Cleaner(
            self.store,
            self.clock,
            cfg.retention,
            probes=self.probes,
            embed_cache_retention=cfg.embed_cache_retention,
        )

        async def rescue() -> None:
            # Beat first: the leases of this worker's own jobs are fresh when the rescuer looks, so it
            # never takes a live job of ours for a dead worker's, however late the heartbeat task runs.
            if self._heartbeat is not None:
                await self._heartbeat.beat()
            await rescuer.run_once()

        tasks = [
            asyncio.create_task(every(cfg.rescue_every, rescue, stop), name="ingestq-rescuer"),
            asyncio.create_task(every(cfg.prune_interval, cleaner.run_once, stop), name="ingestq-cleaner"),
        ]
        if scheduler is not None:
            tasks.append(asyncio.create_task(scheduler.run(stop), name="ingestq-periodic"))
        return tasks
