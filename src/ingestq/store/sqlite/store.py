"""SqliteStore: the embedded backend of the `Store` protocol (one SQLite file, WAL mode, via apsw).

apsw is synchronous, so the statements of a store run on one dedicated thread (`Engine` on one
connection); the async methods only hand work to it, except for the worker's hot path, which runs on the
loop's own thread when that cannot stall it (dispatch.py). Wake-ups combine an in-process event
(this store inserted or re-queued jobs) with `ChangeWatcher`, which notices commits by other processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, ParamSpec, TypeVar

from ingestq.errors import StoreError
from ingestq.model.job import (
    ClaimRequest,
    FinishedBucket,
    HeartbeatReply,
    Job,
    JobFilter,
    JobState,
    NewJob,
    Outcome,
    OutcomeKind,
    Progress,
    QueueConfig,
    QueueStats,
    Retention,
    WorkerBeat,
    WorkerInfo,
)
from ingestq.settings import Settings
from ingestq.store.sqlite import admin, migrator
from ingestq.store.sqlite.connection import parse_sqlite_url
from ingestq.store.sqlite.index import SqliteIndex
from ingestq.store.sqlite.wakeup import ChangeWatcher, WatcherWaiter
from ingestq.store.sqlite.webhooks import SqliteWebhooks

if TYPE_CHECKING:  # the documents model is not loaded by a worker that only runs queue jobs
    from ingestq.model.document import Document, DocumentRef

P = ParamSpec("P")
R = TypeVar("R")

# How often a waiting store checks for commits by other processes (seconds): an idle worker sees a
# job enqueued elsewhere within about this long, for about 1% of a core while it waits.
CHANGE_CHECK_INTERVAL = 0.008


class SqliteStore(SqliteWebhooks, SqliteIndex):
    backend = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = 10_000,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        change_check_interval: float = CHANGE_CHECK_INTERVAL,
    ) -> None:
        super().__init__(path, busy_timeout_ms, synchronous)
        self._change_check_interval = change_check_interval
        self._watcher: ChangeWatcher | None = None
        self._wakeup = asyncio.Event()

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteStore:
        return cls(
            parse_sqlite_url(settings.database_url),
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            synchronous=settings.sqlite_synchronous,
        )

    # --- lifecycle and schema ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._dispatch is not None:
            return
        await self._open_engine()
        self._wakeup = asyncio.Event()
        self._watcher = ChangeWatcher(self._connect, self._change_check_interval)
        await asyncio.to_thread(self._watcher.start, asyncio.get_running_loop(), self._wakeup.set)

    async def close(self) -> None:
        if self._dispatch is None:
            return
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.stop)
            self._watcher = None
        self._wakeup.set()  # a task still waiting for jobs returns now rather than at its timeout
        await self._close_engine()

    async def migrate(self) -> list[int]:
        return await self._run(migrator.migrate, self._e)

    async def schema_version(self) -> tuple[int, int]:
        return await self._run(migrator.schema_version, self._e)

    async def queue_schema_missing(self) -> list[int]:
        applied, latest = await self.schema_version()
        return list(range(applied + 1, latest + 1))  # applied in order here: every later one is missing

    # --- jobs -------------------------------------------------------------------------------------------
    async def job_insert_many(self, jobs: Sequence[NewJob], now: datetime) -> list[Job]:
        inserted = await self._run(self._e.job_insert_many, jobs, now)
        if inserted:
            self._wakeup.set()
        return inserted

    async def document_enqueue(
        self, refs: Sequence[DocumentRef], jobs: Sequence[NewJob], now: datetime
    ) -> list[tuple[Document, Job]]:
        pairs = await self._ix_run(lambda ix: ix.document_enqueue(refs, jobs, now))
        if pairs:
            self._wakeup.set()
        return pairs

    async def job_insert_bulk(self, template: NewJob, payloads: Sequence[str], now: datetime) -> list[int]:
        ids = await self._run(self._e.job_insert_bulk, template, payloads, now)
        if ids:
            self._wakeup.set()
        return ids

    async def job_get(self, job_id: int) -> Job | None:
        return await self._point(lambda e: e.job_get(job_id))

    async def job_list(self, flt: JobFilter) -> list[Job]:
        if flt.document_id is not None and flt.limit <= 100:  # one document's jobs, by its index
            return await self._point(lambda e: e.job_list(flt))
        return await self._run(self._e.job_list, flt)

    # The worker's hot path (claims and outcomes) runs on the loop's thread when it can: see dispatch.py.
    async def job_claim(self, req: ClaimRequest, now: datetime) -> list[Job]:
        return await self._d.run_hot(self._e.job_claim, req, now)

    async def job_finish_many(self, outcomes: Sequence[Outcome], now: datetime) -> set[int]:
        if not outcomes:
            return set()
        applied = await self._d.run_hot(self._e.job_finish_many, outcomes, now)
        if any(o.kind in (OutcomeKind.RETRY, OutcomeKind.RELEASED) for o in outcomes):
            self._wakeup.set()
        return applied

    async def job_finish_and_claim(
        self, outcomes: Sequence[Outcome], claim: ClaimRequest | None, now: datetime
    ) -> tuple[set[int], list[Job]]:
        applied, claimed = await self._d.run_hot(self._e.job_finish_and_claim, outcomes, claim, now)
        if any(o.kind in (OutcomeKind.RETRY, OutcomeKind.RELEASED) for o in outcomes):
            self._wakeup.set()
        return applied, claimed

    async def job_progress(
        self, job_id: int, lease_owner: str, attempt: int, progress: Progress, now: datetime
    ) -> bool:
        return await self._run(self._e.job_progress, job_id, lease_owner, attempt, progress)

    async def job_cancel(self, job_id: int, now: datetime) -> Job:
        return await self._run(admin.job_cancel, self._e, job_id, now)

    async def job_retry(self, job_id: int, now: datetime) -> Job:
        job = await self._run(admin.job_retry, self._e, job_id, now)
        self._wakeup.set()
        return job

    async def job_rescue_stale(self, now: datetime) -> list[int]:
        moved, requeued = await self._run(self._e.job_rescue_stale, now)
        if requeued:
            self._wakeup.set()
        return moved

    async def job_position(self, job_id: int, now: datetime) -> int | None:
        return await self._run(admin.job_position, self._e, job_id, now)

    async def job_purge(
        self, states: Sequence[JobState], queue: str | None, finished_before: datetime | None
    ) -> int:
        return await self._run(admin.job_purge, self._e, states, queue, finished_before)

    async def job_purge_count(
        self, states: Sequence[JobState], queue: str | None, finished_before: datetime | None
    ) -> int:
        return await self._run(admin.job_purge_count, self._e, states, queue, finished_before)

    async def job_finished_buckets(self, since: datetime, width: float) -> list[FinishedBucket]:
        return await self._run(admin.job_finished_buckets, self._e, since, width)

    async def job_prune(self, retention: Retention, now: datetime, limit: int = 10_000) -> int:
        return await self._run(admin.job_prune, self._e, retention, now, limit)

    async def stats(self, now: datetime) -> list[QueueStats]:
        return await self._run(admin.stats, self._e, now)

    # --- queues, workers, periodic jobs -----------------------------------------------------------------
    async def queue_configure(self, config: QueueConfig) -> QueueConfig:
        return await self._run(admin.queue_configure, self._e, config)

    async def queue_pause(self, name: str, paused: bool, now: datetime) -> QueueConfig:
        return await self._run(admin.queue_pause, self._e, name, paused, now)

    async def queue_list(self) -> list[QueueConfig]:
        return await self._run(admin.queue_list, self._e)

    async def worker_heartbeat(self, beat: WorkerBeat, now: datetime) -> HeartbeatReply:
        # ahead of the writes waiting on the store's thread: the beat keeps the worker's leases
        return await self._run_urgent(self._e.worker_heartbeat, beat, now)

    async def worker_deregister(self, worker_id: str) -> None:
        await self._run(admin.worker_deregister, self._e, worker_id)

    async def worker_list(self, now: datetime) -> list[WorkerInfo]:
        return await self._run(admin.worker_list, self._e)

    async def periodic_enqueue(self, name: str, slot: datetime, job: NewJob, now: datetime) -> Job | None:
        inserted = await self._run(self._e.periodic_enqueue, name, slot, job, now)
        if inserted is not None:
            self._wakeup.set()
        return inserted

    # --- change feed ------------------------------------------------------------------------------------
    async def job_watch(self, after_id: int, finished_since: datetime, limit: int) -> list[Job]:
        return await self._run(self._e.job_watch, after_id, finished_since, limit)

    def change_waiter(self) -> WatcherWaiter:
        return WatcherWaiter(self._connect)

    # --- wake-ups ---------------------------------------------------------------------------------------
    def _jobs_changed(self) -> None:
        self._wakeup.set()

    async def wait_for_jobs(self, max_wait: float) -> None:
        if self._wakeup.is_set():
            self._wakeup.clear()
            return
        watcher = self._watcher
        if watcher is None:
            raise StoreError(f"{self!r} is not open: await store.open() first")
        watcher.acquire()
        try:
            async with asyncio.timeout(max(0.0, max_wait)):
                await self._wakeup.wait()
        except TimeoutError:
            pass
        finally:
            watcher.release()
            self._wakeup.clear()
