"""The storage seam: the queue operations the core needs, named after what they do, never SQL.

Both backends (store/sqlite, store/postgres) implement this protocol and pass the one contract suite in
tests/contract. Every method that depends on "now" takes it as an argument so that the caller (and a
test) owns the clock; the store never reads the system time for queue decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from ingestq.core.job import (
    ClaimRequest,
    HeartbeatReply,
    Job,
    JobFilter,
    JobState,
    NewJob,
    Outcome,
    Progress,
    QueueConfig,
    QueueStats,
    Retention,
    WorkerBeat,
    WorkerInfo,
)


@runtime_checkable
class Store(Protocol):
    backend: str  # "sqlite" | "postgresql"

    # --- lifecycle and schema ------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect. Raises StoreError with a one-line reason if the database cannot be used."""
        ...

    async def close(self) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply pending migrations in order; return the versions applied. Safe to run concurrently."""
        ...

    async def schema_version(self) -> tuple[int, int]:
        """(version applied in the database, latest version this code knows). Raises SchemaError when
        the database is newer than the code."""
        ...

    # --- jobs ------------------------------------------------------------------------------------------
    async def job_insert_many(self, jobs: Sequence[NewJob], now: datetime) -> list[Job]:
        """Insert in one transaction, returning one Job per input in input order. A job whose dedupe_key
        matches an unfinished job returns that job instead of inserting. Raises QueueFull (nothing
        inserted) if a queue with a max_depth would exceed it."""
        ...

    async def job_get(self, job_id: int) -> Job | None: ...

    async def job_list(self, flt: JobFilter) -> list[Job]:
        """Newest first (id descending), keyset-paginated by `before_id`."""
        ...

    async def job_claim(self, req: ClaimRequest, now: datetime) -> list[Job]:
        """Atomically move up to `limit` due queued jobs to running for `req.worker_id`: highest priority
        first, then oldest run_at, then id. Increments attempt, sets lease_expires_at = now + lease. One
        statement: two callers can never receive the same job."""
        ...

    async def job_finish_many(self, outcomes: Sequence[Outcome], now: datetime) -> set[int]:
        """Apply outcomes in one transaction. An outcome applies only if the job is running with the
        same lease_owner and attempt (fencing); returns the ids that applied. FAILED and RETRY append
        `error` to the bounded error history and set last_error."""
        ...

    async def job_progress(
        self, job_id: int, lease_owner: str, attempt: int, progress: Progress, now: datetime
    ) -> bool:
        """Record progress if the caller still holds the job; False if it does not (fenced)."""
        ...

    async def job_cancel(self, job_id: int, now: datetime) -> Job:
        """queued → cancelled at once; running → cancel_requested (the worker stops at the next stage
        boundary). Finished jobs are returned unchanged. Raises JobNotFound."""
        ...

    async def job_retry(self, job_id: int, now: datetime) -> Job:
        """A person's retry of a failed or cancelled job: queued, due now, at least one attempt left.
        Raises JobNotFound, or InvalidJobState for a queued/running/succeeded job."""
        ...

    async def job_rescue_stale(self, now: datetime) -> list[int]:
        """Running jobs whose lease expired (their worker died or hung): back to queued due now with the
        attempt counted, or failed if no attempt is left. Returns the ids moved."""
        ...

    async def job_position(self, job_id: int, now: datetime) -> int | None:
        """1-based position among due queued jobs of its queue in claim order; None if not queued."""
        ...

    async def job_purge(
        self, states: Sequence[JobState], queue: str | None, finished_before: datetime | None
    ) -> int:
        """Delete finished jobs (only states in FINISHED_STATES are accepted). Returns the count."""
        ...

    async def job_prune(self, retention: Retention, now: datetime, limit: int = 10_000) -> int:
        """Retention: delete up to `limit` finished jobs older than their state's retention."""
        ...

    async def stats(self, now: datetime) -> list[QueueStats]: ...

    # --- queues, workers, periodic jobs ---------------------------------------------------------------
    async def queue_configure(self, config: QueueConfig) -> None: ...

    async def queue_list(self) -> list[QueueConfig]: ...

    async def worker_heartbeat(self, beat: WorkerBeat, now: datetime) -> HeartbeatReply:
        """Upsert the worker row, extend the leases of `beat.job_ids` it still owns, report lost jobs and
        cancel requests. Also deletes worker rows silent for more than 10 leases."""
        ...

    async def worker_deregister(self, worker_id: str) -> None: ...

    async def worker_list(self, now: datetime) -> list[WorkerInfo]: ...

    async def periodic_enqueue(self, name: str, slot: datetime, job: NewJob, now: datetime) -> Job | None:
        """Insert `job` for the periodic schedule `name` at `slot` unless that slot (or a later one) was
        already enqueued, atomically: however many workers call this for one slot, one job results."""
        ...

    # --- wake-ups --------------------------------------------------------------------------------------
    async def wait_for_jobs(self, max_wait: float) -> None:
        """Return when new jobs may be available (a notification, or a cheap change check), or after
        `max_wait` seconds. Must not busy-wait."""
        ...
