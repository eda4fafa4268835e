"""A task: a handler and its options (`TaskSpec`), and the context a handler receives (`JobContext`).

A handler is a plain function (sync or async). Its keyword arguments come from the job payload; if it
declares a parameter named `ctx`, it also receives the `JobContext` (progress, cancellation, the job).
Sync handlers run in a thread so they never block the worker's event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, ParamSpec, TypeVar

from ingestq.errors import JobCancelled
from ingestq.model.job import DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, Job, JsonDict, NewJob, Outcome, Progress

P = ParamSpec("P")
R = TypeVar("R")

ProgressSink = Callable[[Progress], Awaitable[None]]
Finalizer = Callable[[Outcome], Awaitable[bool]]
"""Persists a job's outcome together with the handler's own writes, in one transaction, and returns
whether the outcome applied (the same fence as `Store.job_finish_many`)."""


class JobContext:
    """What a running handler can see and do. Built by the worker for each attempt."""

    def __init__(
        self,
        job: Job,
        progress_sink: ProgressSink | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.job = job
        self._progress_sink = progress_sink
        self._cancelled = False
        # Created only when someone waits on it: a context is built per job on the hot path, and an
        # Event per job was a quarter of the event loop's time when draining no-op jobs.
        self._cancel_event: asyncio.Event | None = None
        self._loop = loop or asyncio.get_running_loop()
        self.finalizer: Finalizer | None = None

    def finalize_with(self, finalizer: Finalizer | None) -> None:
        """Have the worker call `finalizer(outcome)` instead of its batched write for this job, whatever
        the outcome (success, retry, failure): for handlers whose results must commit atomically with
        the job's completion (a document's new chunks). The worker retries it if it raises."""
        self.finalizer = finalizer

    @property
    def cancel_requested(self) -> bool:
        return self._cancelled

    def request_cancel(self) -> None:
        """Called by the worker when a person cancels the job (or the worker is shutting down hard)."""
        self._cancelled = True
        if self._cancel_event is not None:
            self._cancel_event.set()

    async def wait_cancelled(self) -> None:
        if self._cancelled:
            return
        if self._cancel_event is None:
            self._cancel_event = asyncio.Event()
        await self._cancel_event.wait()

    def raise_if_cancelled(self) -> None:
        """Call at stage boundaries: stops the job here if cancellation was requested."""
        if self._cancelled:
            raise JobCancelled(f"job {self.job.id} cancelled")

    async def progress(self, stage: str, done: int = 0, total: int | None = None) -> None:
        if self._progress_sink is not None:
            await self._progress_sink(Progress(stage=stage, done=done, total=total))

    def progress_threadsafe(self, stage: str, done: int = 0, total: int | None = None) -> None:
        """For sync handlers running in a worker thread: schedules the write on the worker's loop."""
        asyncio.run_coroutine_threadsafe(self.progress(stage, done, total), self._loop)


@dataclass(frozen=True)
class TaskSpec(Generic[P, R]):
    """A registered job kind and its defaults. Calling it runs the function directly (no queue)."""

    kind: str
    fn: Callable[P, R]
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_base: float = 1.0  # seconds before the first retry; doubles each attempt (with jitter)
    backoff_max: float = 3600.0
    timeout: float | None = None  # seconds per attempt; None: no limit
    # Most jobs of this kind one worker runs at once (None: only the worker's concurrency bounds it).
    # For kinds that are heavy or wait on a scarce resource: a worker never claims more of them than
    # this, so the rest stay queued for other workers instead of waiting here under a lease.
    concurrency: int | None = None
    wants_ctx: bool = False
    is_async: bool = False

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def new_job(
        self,
        payload: JsonDict | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        dedupe_key: str | None = None,
        document_id: str | None = None,
    ) -> NewJob:
        return NewJob(
            kind=self.kind,
            payload=dict(payload or {}),
            queue=queue or self.queue,
            priority=self.priority if priority is None else priority,
            run_at=run_at,
            max_attempts=max_attempts or self.max_attempts,
            dedupe_key=dedupe_key,
            document_id=document_id,
        )

    def invoke(self, ctx: JobContext, threads: Executor | None = None) -> Awaitable[Any]:
        """Start the handler on this job's payload; await the result. Not a coroutine itself: for an async
        handler this returns the handler's own coroutine, one layer less on every job. A sync handler runs
        on `threads` (the worker's own pool), or the loop's default executor."""
        kwargs: dict[str, Any] = dict(ctx.job.payload)
        if self.wants_ctx:
            kwargs["ctx"] = ctx
        # The payload is only known at run time, so the call is checked against the signature then (a
        # mismatch raises TypeError, which the executor turns into a permanent failure).
        fn: Callable[..., Any] = self.fn
        if self.is_async:
            awaitable: Awaitable[Any] = fn(**kwargs)
            return awaitable
        # As asyncio.to_thread, on a pool of the caller's choosing: the handler sees the context variables.
        call = functools.partial(contextvars.copy_context().run, fn, **kwargs)
        return asyncio.get_running_loop().run_in_executor(threads, call)
