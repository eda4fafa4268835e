"""The request and response bodies of the HTTP API, as pydantic models, so OpenAPI documents each of them.

A `Job` (the library's dataclass) becomes JSON in one place: `JobOut.of(job)` (pydantic reads the
dataclass's attributes; `tests/api/test_schemas.py` checks that every field of `Job` is shown). Bounds on
inputs live here too: a client's mistake is refused with a 422 before it reaches the database, never
turned into a 5xx by a value the database cannot hold.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from ingestq.api.webhook_schemas import Callbacks
from ingestq.model.job import Job, JobFilter, JobState, QueueConfig, QueueStats, WorkerInfo

INT32 = 2**31 - 1  # PostgreSQL `integer` (priority, max_attempts, max_depth)
INT64 = 2**63 - 1  # job ids
MAX_NAME = 200  # queue, kind, dedupe key, document id
MAX_DELAY = 366 * 24 * 3600.0  # a year: later than that is a mistake, not a schedule
MAX_LIST_LIMIT = 500
MAX_BULK_IDS = 1000

MAX_JSON_DEPTH = 64  # nesting of a payload: deeper is refused (responses could not even show it)
EARLIEST, LATEST = 1970, 9998  # years a run_at may fall in (UTC)
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL, so neither backend takes it

JobId = Annotated[int, Field(ge=1, le=INT64)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=NO_NUL)]


def check_json(value: Any, what: str) -> None:
    """Refuse what a job cannot hold on every backend, or what a response could not show: nesting deeper
    than MAX_JSON_DEPTH, NUL characters. Iterative, so a hostile document cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError(f"{what} contains a NUL character, which cannot be stored")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        else:
            stack.extend((child, depth + 1) for child in item)


def name_error(values: list[str] | None, what: str) -> str | None:
    """Why a list of names from a query string is refused (None: it is fine)."""
    for value in values or ():
        if not value or len(value) > MAX_NAME or "\x00" in value:
            return f"{what}: each value must have 1 to {MAX_NAME} characters and no NUL"
    return None


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ProgressOut(_Out):
    stage: str
    done: int
    total: int | None


class ErrorOut(_Out):
    attempt: int
    at: datetime
    message: str


class JobOut(_Out):
    """A job as the API shows it: every field of the library's `Job`, plus `version`."""

    id: int
    queue: str
    kind: str
    payload: dict[str, Any]
    priority: int
    state: JobState
    run_at: datetime
    attempt: int
    max_attempts: int
    dedupe_key: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    progress: ProgressOut | None
    result: Any
    last_error: str | None
    errors: list[ErrorOut]
    document_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    version: str = Field(
        description="Changes whenever the state, attempt, progress or cancel request changes: pass it as "
        "`?since=` to long-poll for the next change."
    )

    @classmethod
    def of(cls, job: Job, **extra: Any) -> Self:
        """The one JSON shape of a job (`extra`: the fields a subclass adds, like `position`)."""
        fields = {name: getattr(job, name) for name in Job.__dataclass_fields__}
        return cls.model_validate({**fields, "version": job_version(job), **extra})


def job_version(job: Job) -> str:
    """What a long-poll compares: the job's visible progress, as a short opaque token."""
    progress = job.progress
    parts = (
        job.state.value,
        job.attempt,
        job.cancel_requested,
        job.run_at.timestamp(),
        progress.stage if progress else None,
        progress.done if progress else None,
        progress.total if progress else None,
    )
    return hashlib.blake2s(repr(parts).encode(), digest_size=8).hexdigest()


class JobDetail(JobOut):
    position: int | None = Field(
        description="1-based place in claim order among the queued jobs of its queue (a job not yet due "
        "comes after every due one); null unless queued"
    )


class EnqueuedJob(JobDetail):
    deduplicated: bool = Field(
        description="true: an unfinished job with this dedupe_key existed and is returned (HTTP 200), "
        "nothing was inserted; false: a new job (HTTP 201)"
    )


class EnqueueIn(BaseModel):
    """A job to enqueue. Only kinds the service's registry knows are accepted (see POST /v1/jobs)."""

    model_config = ConfigDict(extra="forbid")

    kind: Name
    payload: dict[str, Any] = Field(default_factory=dict)
    queue: Name | None = None
    priority: int | None = Field(default=None, ge=-INT32, le=INT32)
    delay_seconds: float | None = Field(default=None, ge=0, le=MAX_DELAY, allow_inf_nan=False)
    run_at: AwareDatetime | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    dedupe_key: Name | None = None
    document_id: Name | None = None
    callbacks: Callbacks = Field(default_factory=list)

    @field_validator("payload")
    @classmethod
    def _storable(cls, payload: dict[str, Any]) -> dict[str, Any]:
        check_json(payload, "payload")
        return payload

    @field_validator("run_at")
    @classmethod
    def _sane_time(cls, run_at: datetime | None) -> datetime | None:
        if run_at is None:
            return None
        try:
            utc = run_at.astimezone(UTC)
        except OverflowError:
            utc = None
        if utc is None or not EARLIEST <= utc.year <= LATEST:
            raise ValueError(f"run_at must fall between the years {EARLIEST} and {LATEST} (UTC)")
        return utc

    @model_validator(mode="after")
    def _one_schedule(self) -> Self:
        if self.delay_seconds is not None and self.run_at is not None:
            raise ValueError("give either delay_seconds or run_at, not both")
        return self


class JobPage(BaseModel):
    jobs: list[JobOut]
    next: int | None = Field(
        description="Pass as `before_id` for the next (older) page; null on the last page"
    )


class JobFilterIn(BaseModel):
    """Which jobs a bulk action covers (every given field must match; lists match any of their values)."""

    model_config = ConfigDict(extra="forbid")

    states: list[JobState] | None = Field(default=None, min_length=1)
    queues: list[Name] | None = Field(default=None, min_length=1, max_length=100)
    kinds: list[Name] | None = Field(default=None, min_length=1, max_length=100)
    document_id: Name | None = None
    finished_before: AwareDatetime | None = Field(
        default=None,
        description="Purge only: jobs that finished before this moment (e.g. now minus 7 days); a fixed "
        "moment, so a dry run and the purge that follows it cover the same jobs",
    )

    def to_filter(self, states: tuple[JobState, ...], before_id: int | None, limit: int) -> JobFilter:
        return JobFilter(
            states=states,
            queues=tuple(self.queues) if self.queues else None,
            kinds=tuple(self.kinds) if self.kinds else None,
            document_id=self.document_id,
            before_id=before_id,
            limit=limit,
        )


class BulkIn(BaseModel):
    """Either `ids` or `filter`. With `dry_run`, only count what the action would cover."""

    model_config = ConfigDict(extra="forbid")

    ids: list[JobId] | None = Field(default=None, min_length=1, max_length=MAX_BULK_IDS)
    filter: JobFilterIn | None = None
    dry_run: bool = False

    @model_validator(mode="after")
    def _one_scope(self) -> Self:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter (exactly one)")
        return self


class BulkOut(BaseModel):
    action: Literal["retry", "cancel", "purge"]
    dry_run: bool
    matched: int = Field(
        description="Jobs in scope that the action applies to (e.g. failed or cancelled ones for retry)"
    )
    changed: int | None = Field(
        description="Jobs the action changed (null on a dry run); below `matched` when some changed "
        "state meanwhile"
    )
    more: bool = Field(
        description="The work (or the count) stopped at the per-request cap: call again for the rest"
    )


class QueueStatsOut(BaseModel):
    queue: str
    counts: dict[JobState, int]
    oldest_queued_age: float | None = Field(
        description="Seconds since the oldest due queued job became due; null when none is due"
    )
    running_by_worker: dict[str, int]

    @classmethod
    def of(cls, stats: QueueStats) -> Self:
        counts = {state: stats.counts.get(state, 0) for state in JobState}
        return cls(
            queue=stats.queue,
            counts=counts,
            oldest_queued_age=stats.oldest_queued_age,
            running_by_worker=dict(stats.running_by_worker),
        )


class StatsOut(BaseModel):
    queues: list[QueueStatsOut]
    totals: dict[JobState, int]


class WorkerOut(BaseModel):
    worker_id: str
    hostname: str
    pid: int
    queues: list[str] | None
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    running: int
    unavailable: str | None = Field(
        default=None, description="Why this worker cannot serve some kinds now (null: it can serve all)"
    )

    @classmethod
    def of(cls, info: WorkerInfo) -> Self:
        return cls(
            worker_id=info.worker_id,
            hostname=info.hostname,
            pid=info.pid,
            queues=list(info.queues) if info.queues is not None else None,
            concurrency=info.concurrency,
            started_at=info.started_at,
            heartbeat_at=info.heartbeat_at,
            running=info.running,
            unavailable=getattr(info, "unavailable", None),  # a field of newer WorkerInfo versions
        )


class QueueOut(BaseModel):
    name: str
    max_depth: int | None = Field(description="Most unfinished jobs the queue accepts; null: unbounded")
    paused: bool = Field(description="Workers do not claim its jobs (it still accepts them)")
    paused_at: datetime | None = Field(description="When it was paused; null: not paused")

    @classmethod
    def of(cls, config: QueueConfig) -> Self:
        return cls(
            name=config.name, max_depth=config.max_depth, paused=config.paused, paused_at=config.paused_at
        )


class QueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_depth: int | None = Field(ge=0, le=INT32, description="null removes the limit")


class ProcessOut(BaseModel):
    worker_id: str
    budget: float
    elapsed: float
    processed: int = Field(
        description="Jobs this call ran to an outcome (succeeded + failed + retried + cancelled)"
    )
    succeeded: int
    failed: int
    retried: int = Field(description="Jobs that failed an attempt and were queued again for later")
    cancelled: int
    released: int = Field(description="Jobs given back unrun or unfinished at the end of the budget")
    remaining: int = Field(description="Due queued jobs left after this call (any kind)")
    remaining_capped: bool = Field(description="`remaining` stopped counting at its cap")
    queued: int = Field(description="All queued jobs left, including those scheduled for later")


class ErrorDetail(BaseModel):
    status: int
    code: str = Field(
        description="Stable, e.g. not_found, unknown_kind, queue_full, conflict, invalid_request"
    )
    message: str
    details: list[dict[str, Any]] | None = Field(
        default=None, description="Validation errors: where and what"
    )


class ErrorBody(BaseModel):
    """Every error of the API, whatever its status (see ingestq.api.errors)."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, in the one error shape."""
    return {status: {"model": ErrorBody, "description": _ERROR_TEXT[status]} for status in statuses}


_ERROR_TEXT = {
    401: "No valid bearer token",
    403: "The token may only read",
    404: "No such job",
    409: "The job's state does not allow it",
    422: "Invalid request (body, path or query), unknown kind or invalid payload",
    429: "The queue is full: retry after the Retry-After header's seconds",
    503: "The database is unavailable: retry after the Retry-After header's seconds",
}
