"""The job model: what a job is, the states it moves through, and the values passed across the Store seam.

State machine (tests/migration checks these values against every backend's schema)::

    queued ──claim──▶ running ──ok──────────────▶ succeeded
      ▲  ▲              │ ├──error, attempts left──▶ queued (run_at = now + backoff, attempt > 0)
      │  │              │ ├──permanent error / attempts exhausted──▶ failed
      │  │              │ ├──cancel requested, handler stopped──▶ cancelled
      │  └──release─────┘ └──lease expired (worker lost): rescuer──▶ queued, or failed if exhausted
      │        (graceful shutdown: back to queued, attempt not burned)
      └──retry by a person── failed | cancelled
    queued ──cancel──▶ cancelled
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JsonDict = dict[str, Any]

DEFAULT_QUEUE = "default"
DEFAULT_MAX_ATTEMPTS = 5
ERROR_HISTORY_LIMIT = 10


class JobState(enum.StrEnum):
    QUEUED = "queued"
    """Waiting for a worker. Left by a claim (→ running) or a cancel (→ cancelled). A job waiting for a
    retry is queued with `run_at` in the future and `attempt > 0`."""

    RUNNING = "running"
    """Held by one worker under a lease. Left when that worker records an outcome (succeeded, queued for
    retry, failed, cancelled), releases it on shutdown (→ queued, attempt given back), or when the lease
    expires and the rescuer moves it (→ queued, or failed if attempts are exhausted)."""

    SUCCEEDED = "succeeded"
    """Finished. Terminal; removed by retention pruning."""

    FAILED = "failed"
    """Dead letter: attempts exhausted or a permanent error. Left only by a person's retry (→ queued)."""

    CANCELLED = "cancelled"
    """Cancelled by a person. Left only by a person's retry (→ queued)."""

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
UNFINISHED_STATES = frozenset({JobState.QUEUED, JobState.RUNNING})


@dataclass(frozen=True, slots=True)
class Progress:
    stage: str
    done: int = 0
    total: int | None = None


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    attempt: int
    at: datetime
    message: str


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert. `run_at=None` means now (the store's clock)."""

    kind: str
    payload: JsonDict = field(default_factory=dict)
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    run_at: datetime | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    dedupe_key: str | None = None
    document_id: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    queue: str
    kind: str
    payload: JsonDict
    priority: int
    state: JobState
    run_at: datetime
    attempt: int
    max_attempts: int
    dedupe_key: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    progress: Progress | None
    result: Any
    last_error: str | None
    errors: tuple[ErrorRecord, ...]
    document_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class OutcomeKind(enum.StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"  # back to queued at `run_at`, attempt kept
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"  # graceful shutdown: back to queued now, the attempt is given back


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a worker reports for a job it holds. Applied only if (id, lease_owner, attempt) still match
    a running row: that condition is the fence that stops a stale worker from overwriting a job that
    was rescued and claimed by another worker."""

    job_id: int
    lease_owner: str
    attempt: int
    kind: OutcomeKind
    result: Any = None
    error: str | None = None
    run_at: datetime | None = None  # for RETRY


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    worker_id: str
    limit: int
    lease_seconds: float
    queues: tuple[str, ...] | None = None  # None: every queue
    kinds: tuple[str, ...] | None = None  # None: every kind
    # kind -> most jobs of that kind this claim may return (the worker's room under TaskSpec.concurrency)
    kind_limits: Mapping[str, int] | None = None
    # queues left out of the claim (paused ones; None: none). The worker keeps it up to date from its
    # heartbeat replies (HeartbeatReply.paused_queues).
    exclude_queues: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Keyset-paginated listing, newest first: pass the last id you saw as `before_id`."""

    states: tuple[JobState, ...] | None = None
    queues: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    document_id: str | None = None
    before_id: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    counts: dict[JobState, int]
    oldest_queued_age: float | None  # seconds since the oldest due queued job became due
    running_by_worker: dict[str, int]


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    max_depth: int | None = None  # unfinished jobs (queued + running) allowed; None: unbounded
    # when the queue was paused (its jobs are kept, workers stop claiming them); None: not paused
    paused_at: datetime | None = None

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """A worker's heartbeat: registers the worker, extends the leases of the jobs it holds."""

    worker_id: str
    hostname: str
    pid: int
    queues: tuple[str, ...] | None
    concurrency: int
    job_ids: tuple[int, ...]
    lease_seconds: float
    unavailable: str | None = None
    """Why the worker stopped claiming some kinds (`ingestq.errors.Unavailable.reason`), else None."""


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    lost: frozenset[int]  # held jobs this worker no longer owns (rescued and reclaimed, or gone)
    cancel_requested: frozenset[int]  # held jobs a person asked to cancel
    paused_queues: frozenset[str] = frozenset()  # every paused queue: the worker claims from none of them


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    worker_id: str
    hostname: str
    pid: int
    queues: tuple[str, ...] | None
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    running: int
    unavailable: str | None = None
    """Why the worker stopped claiming some kinds (a parser process that cannot start...), else None."""
    lease_seconds: float | None = None
    """The lease its heartbeats extend: silent for longer than that, its jobs are up for rescue."""

    def silent_for(self, now: datetime) -> float:
        return (now - self.heartbeat_at).total_seconds()

    def alive(self, now: datetime) -> bool:
        """Heard from within one lease (it beats every third of one); else dead or stuck. Without a known
        lease (an old row) it counts as alive, as before the distinction existed."""
        return self.lease_seconds is None or self.silent_for(now) <= self.lease_seconds


@dataclass(frozen=True, slots=True)
class FinishedBucket:
    """Jobs that finished in one time bucket: bucket `index` covers [since + index * width, + width)."""

    index: int
    state: JobState
    count: int


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished jobs are kept, per state, in seconds (None: forever)."""

    succeeded: float | None = 24 * 3600
    failed: float | None = 7 * 24 * 3600
    cancelled: float | None = 24 * 3600
