"""The one API over the queue: enqueue, inspect and steer jobs. Library, CLI, HTTP and dashboard all use it.

The client knows jobs, not SQL: every operation is one call on the `Store` protocol, with "now" taken
from the injected clock so that tests can move time by hand.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Coroutine, Generator, Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, overload

from ingestq.builtin import builtin_registry
from ingestq.clock import SYSTEM_CLOCK, Clock
from ingestq.errors import ConfigError, FeatureUnavailable, InvalidPayload, JobNotFound, SchemaError
from ingestq.model.job import (
    FINISHED_STATES,
    Job,
    JobFilter,
    JobState,
    JsonDict,
    NewJob,
    QueueConfig,
    QueueStats,
    WorkerInfo,
)
from ingestq.settings import Settings
from ingestq.store import open_store
from ingestq.tasks.registry import Registry, default_registry
from ingestq.tasks.task import TaskSpec

if TYPE_CHECKING:
    from ingestq.store import Store

TaskOrKind = TaskSpec[Any, Any] | str

# `list` is a method name below; these aliases keep the builtin usable in annotations inside the class.
_Jobs = list[Job]
_Ints = list[int]
_Stats = list[QueueStats]
_Workers = list[WorkerInfo]
_Queues = list[QueueConfig]


# json.dumps(..., allow_nan=False) builds a new encoder on every call; bulk enqueue validates tens of
# thousands of payloads per second, so keep one.
_ENCODER = json.JSONEncoder(allow_nan=False)


def validate_payload(payload: Any) -> JsonDict:
    """A payload is a JSON object: a dict with string keys whose values JSON can encode (no NaN)."""
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise InvalidPayload(f"payload must be a JSON object (dict), got {type(payload).__name__}")
    try:
        # Round-trip so that what the handler later receives is exactly what the store will hold.
        decoded = json.loads(_ENCODER.encode(payload))
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"payload is not JSON-serialisable: {exc}") from None
    if not isinstance(decoded, dict) or decoded.keys() != payload.keys():
        raise InvalidPayload("payload keys must be strings")
    return decoded


def encode_payload(payload: Any) -> str:
    """The checks of `validate_payload`, returning the payload's JSON text instead of a decoded copy:
    the bulk path hands the text to the store, so each payload is encoded once and never decoded."""
    if payload is None:
        return "{}"
    if not isinstance(payload, dict):
        raise InvalidPayload(f"payload must be a JSON object (dict), got {type(payload).__name__}")
    try:
        text: str = _ENCODER.encode(payload)
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"payload is not JSON-serialisable: {exc}") from None
    for key in payload:
        if type(key) is not str:
            raise InvalidPayload("payload keys must be strings")
    return text


class Connecting:
    """What `Client.connect` returns: await it for a client, or use it as `async with` to close on exit."""

    def __init__(self, opening: Coroutine[Any, Any, Client]) -> None:
        self._opening = opening
        self._client: Client | None = None

    def __await__(self) -> Generator[Any, None, Client]:
        return self._opening.__await__()

    async def __aenter__(self) -> Client:
        self._client = await self._opening
        return self._client

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.close()


class Client:
    """Async client. `async with await Client.connect(settings) as client:` or `Client(store)`."""

    def __init__(
        self,
        store: Store,
        registry: Registry | None = None,
        clock: Clock = SYSTEM_CLOCK,
        *,
        owns_store: bool = False,
    ) -> None:
        self.store = store
        self.registry = builtin_registry.merge(registry if registry is not None else default_registry)
        self.clock = clock
        self._owns_store = owns_store

    @classmethod
    def connect(
        cls,
        settings: Settings | None = None,
        *,
        registry: Registry | None = None,
        clock: Clock = SYSTEM_CLOCK,
        check_schema: bool = True,
    ) -> Connecting:
        """Open the store of `settings` (migrating it when `settings.auto_migrate`). Use it either way:
        `async with Client.connect(s) as client:` or `client = await Client.connect(s)` (then `close()`).

        `check_schema=False` skips the schema check, for commands that inspect or migrate the schema."""
        return Connecting(cls._open(settings or Settings(), registry, clock, check_schema))

    @classmethod
    async def _open(
        cls, settings: Settings, registry: Registry | None, clock: Clock, check_schema: bool
    ) -> Client:
        store = open_store(settings)
        await store.open()
        try:
            version: tuple[int, int] | None = None
            if settings.auto_migrate:
                # Read the version first: an up-to-date schema (every start of every worker) then costs
                # one short read instead of migrate()'s lock and checks per migration.
                version = await store.schema_version()
                if version[0] < version[1]:
                    version = None
                    with contextlib.suppress(FeatureUnavailable):
                        # e.g. PostgreSQL without pgvector: the queue schema is in place; documents and
                        # search are refused with a one-line message when used.
                        await store.migrate()
            if check_schema and (version is None or version[0] < version[1]):
                # Without the queue's migrations job and worker statements fail on a missing column
                # (a worker's first heartbeat, say). A missing index migration only affects documents
                # and search, which say so when used.
                missing = await store.queue_schema_missing()
                if missing:
                    applied, latest = await store.schema_version()
                    raise SchemaError(
                        f"database schema is at version {applied} and lacks migration(s) "
                        f"{', '.join(map(str, missing))} that this code ({latest}) needs: "
                        "run `ingestq db migrate`"
                    )
        except BaseException:
            await store.close()
            raise
        return cls(store, registry, clock, owns_store=True)

    async def close(self) -> None:
        if self._owns_store:
            await self.store.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- schema --------------------------------------------------------------------------------------
    async def migrate(self) -> _Ints:
        return await self.store.migrate()

    async def schema_version(self) -> tuple[int, int]:
        return await self.store.schema_version()

    # --- enqueue -------------------------------------------------------------------------------------
    def new_job(
        self,
        task_or_kind: TaskOrKind,
        payload: JsonDict | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        dedupe_key: str | None = None,
        document_id: str | None = None,
    ) -> NewJob:
        """Build and validate a job without inserting it. A kind given by name takes the defaults it
        was registered with when this client's registry knows it (a remote worker may know others)."""
        if isinstance(task_or_kind, TaskSpec):
            spec: TaskSpec[Any, Any] | None = task_or_kind
            kind = task_or_kind.kind
        elif isinstance(task_or_kind, str) and task_or_kind:
            kind = task_or_kind
            spec = self.registry.tasks.get(kind)
        else:
            raise ConfigError(f"job kind must be a task or a non-empty name, got {task_or_kind!r}")
        data = validate_payload(payload)
        if max_attempts is not None and max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
        if queue is not None and not queue:
            raise ConfigError("queue name must not be empty")
        when = self._run_at(delay, run_at)
        if spec is not None:
            return spec.new_job(
                data,
                queue=queue,
                priority=priority,
                run_at=when,
                max_attempts=max_attempts,
                dedupe_key=dedupe_key,
                document_id=document_id,
            )
        defaults = NewJob(kind=kind)
        return NewJob(
            kind=kind,
            payload=data,
            queue=queue or defaults.queue,
            priority=defaults.priority if priority is None else priority,
            run_at=when,
            max_attempts=max_attempts or defaults.max_attempts,
            dedupe_key=dedupe_key,
            document_id=document_id,
        )

    def _run_at(self, delay: float | None, run_at: datetime | None) -> datetime | None:
        if delay is not None and run_at is not None:
            raise ConfigError("give either delay or run_at, not both")
        if run_at is not None:
            if run_at.tzinfo is None:
                raise ConfigError("run_at must be timezone-aware (UTC)")
            return run_at
        if delay is not None:
            if not math.isfinite(delay) or delay < 0:
                raise ConfigError(f"delay must be a non-negative number of seconds, got {delay}")
            return self.clock.now() + timedelta(seconds=delay) if delay else None
        return None

    async def enqueue(
        self,
        task_or_kind: TaskOrKind,
        payload: JsonDict | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        dedupe_key: str | None = None,
        document_id: str | None = None,
    ) -> Job:
        """Insert one job durably and return it (or the unfinished job with the same dedupe_key).
        Raises QueueFull when the queue is at its max depth."""
        new = self.new_job(
            task_or_kind,
            payload,
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            max_attempts=max_attempts,
            dedupe_key=dedupe_key,
            document_id=document_id,
        )
        (job,) = await self.store.job_insert_many([new], self.clock.now())
        return job

    @overload
    async def enqueue_many(
        self,
        task_or_kind: TaskOrKind,
        payloads: Iterable[JsonDict | None],
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        return_jobs: Literal[True] = True,
    ) -> _Jobs: ...

    @overload
    async def enqueue_many(
        self,
        task_or_kind: TaskOrKind,
        payloads: Iterable[JsonDict | None],
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        return_jobs: Literal[False],
    ) -> _Ints: ...

    async def enqueue_many(
        self,
        task_or_kind: TaskOrKind,
        payloads: Iterable[JsonDict | None],
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        return_jobs: bool = True,
    ) -> _Jobs | _Ints:
        """Insert one job per payload in one transaction (all or nothing), in order, and return the jobs;
        with `return_jobs=False`, only their ids (the bulk path: each payload is encoded once and no Job
        object is built, several times cheaper per job)."""
        # Resolve the kind, defaults and run_at once; per job only the payload differs (a hot path:
        # bulk enqueue is measured in tens of thousands of jobs per second).
        template = self.new_job(
            task_or_kind,
            None,
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            max_attempts=max_attempts,
        )
        if not return_jobs:
            encoded = [encode_payload(p) for p in payloads]
            if not encoded:
                return []
            return await self.store.job_insert_bulk(template, encoded, self.clock.now())
        t = template  # NewJob(...) directly: dataclasses.replace is several times slower per job
        jobs = [
            NewJob(
                kind=t.kind,
                payload=validate_payload(p),
                queue=t.queue,
                priority=t.priority,
                run_at=t.run_at,
                max_attempts=t.max_attempts,
            )
            for p in payloads
        ]
        if not jobs:
            return []
        return await self.store.job_insert_many(jobs, self.clock.now())

    async def insert_many(self, jobs: Sequence[NewJob]) -> _Jobs:
        """Insert prepared jobs (see `new_job`), possibly of different kinds, in one transaction."""
        if not jobs:
            return []
        for job in jobs:
            validate_payload(job.payload)
        return await self.store.job_insert_many(list(jobs), self.clock.now())

    # --- inspect -------------------------------------------------------------------------------------
    async def get(self, job_id: int) -> Job:
        """The job with this id. Raises JobNotFound."""
        job = await self.store.job_get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def list(self, flt: JobFilter | None = None) -> _Jobs:
        """Newest first; pass the last id seen as `JobFilter(before_id=...)` for the next page."""
        flt = flt or JobFilter()
        if flt.limit < 1:
            raise ConfigError(f"limit must be at least 1, got {flt.limit}")
        return await self.store.job_list(flt)

    async def position(self, job_id: int) -> int | None:
        """1-based place among the due queued jobs of its queue; None once it is no longer queued."""
        return await self.store.job_position(job_id, self.clock.now())

    async def stats(self) -> _Stats:
        return await self.store.stats(self.clock.now())

    async def workers(self) -> _Workers:
        return await self.store.worker_list(self.clock.now())

    async def queues(self) -> _Queues:
        return await self.store.queue_list()

    # --- steer ---------------------------------------------------------------------------------------
    async def cancel(self, job_id: int) -> Job:
        """Queued → cancelled now; running → asked to stop at its next stage boundary."""
        return await self.store.job_cancel(job_id, self.clock.now())

    async def retry(self, job_id: int) -> Job:
        """Re-queue a failed or cancelled job now. Raises InvalidJobState for other states."""
        return await self.store.job_retry(job_id, self.clock.now())

    async def purge(
        self,
        states: Sequence[JobState] | None = None,
        *,
        queue: str | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete finished jobs (default: every finished state), optionally only those of `queue` that
        finished more than `older_than` seconds ago. Returns how many were deleted."""
        chosen = tuple(states) if states else tuple(sorted(FINISHED_STATES))
        unfinished = [s.value for s in chosen if s not in FINISHED_STATES]
        if unfinished:
            raise ConfigError(f"only finished jobs can be purged, not {', '.join(unfinished)}")
        before = None
        if older_than is not None:
            if not math.isfinite(older_than) or older_than < 0:
                raise ConfigError(f"older_than must be a non-negative number of seconds, got {older_than}")
            before = self.clock.now() - timedelta(seconds=older_than)
        return await self.store.job_purge(chosen, queue, before)

    async def configure_queue(self, name: str, max_depth: int | None) -> QueueConfig:
        """Set (or with None, remove) a queue's maximum number of unfinished jobs. A paused queue stays
        paused. Returns the queue's settings."""
        if not name:
            raise ConfigError("queue name must not be empty")
        if max_depth is not None and max_depth < 0:
            raise ConfigError(f"max_depth must be zero or more, got {max_depth}")
        return await self.store.queue_configure(QueueConfig(name=name, max_depth=max_depth))

    async def pause_queue(self, name: str) -> QueueConfig:
        """Stop workers claiming the queue's jobs, from their next heartbeat (within lease/3). The queue
        still accepts jobs (up to its max_depth); jobs already running run on. Pausing a paused queue
        keeps its first paused_at. Returns the queue's settings."""
        return await self._pause(name, True)

    async def resume_queue(self, name: str) -> QueueConfig:
        """Let workers claim the queue's jobs again (from their next heartbeat)."""
        return await self._pause(name, False)

    async def _pause(self, name: str, paused: bool) -> QueueConfig:
        if not name:
            raise ConfigError("queue name must not be empty")
        return await self.store.queue_pause(name, paused, self.clock.now())
