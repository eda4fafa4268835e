"""Run one claimed job and turn whatever happens into an Outcome.

The executor is the wall between user code and the worker: every exception a handler raises becomes an
Outcome (succeeded, retry at a time, failed, cancelled, released), so a broken handler can never take the
worker down. It does no I/O of its own; the completer persists what it returns.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ingestq.clock import Clock
from ingestq.errors import JobCancelled, Unavailable, UnknownJobKind
from ingestq.model.job import Job, Outcome, OutcomeKind, Progress
from ingestq.tasks.registry import Registry
from ingestq.tasks.retry import BadPayload, ExponentialBackoff, RetryPolicy, error_message
from ingestq.tasks.task import JobContext, TaskSpec

log = logging.getLogger("ingestq.worker")

_SUCCEEDED = OutcomeKind.SUCCEEDED  # read once: an enum member read off its class costs ~0.4 us
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # an escaped NUL, not a literal backslash + "u0000"


class StopReason(enum.Enum):
    LOST = "lost"  # another worker owns the job now: drop the outcome
    SHUTDOWN = "shutdown"  # the worker is stopping: give the job back without burning the attempt


@dataclass(eq=False, slots=True)
class Running:
    """A job this worker holds, from claim until its outcome is persisted (or the job is lost)."""

    job: Job
    ctx: JobContext
    task: asyncio.Task[Any] | None = None
    stop_reason: StopReason | None = None
    progress_written_at: float = float("-inf")  # monotonic time of the last progress write
    progress_pending: Progress | None = field(default=None)

    def stop(self, reason: StopReason) -> None:
        """Ask the handler to stop (cooperatively first, then by cancelling its task)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.ctx.request_cancel()
        if self.task is not None and not self.task.done():
            self.task.cancel()


class Executor:
    def __init__(
        self, registry: Registry, clock: Clock, worker_id: str, retry_policy: RetryPolicy | None = None
    ) -> None:
        self._registry = registry
        self._worker_id = worker_id
        self._clock = clock
        self._retry_policy = retry_policy
        self._policies: dict[str, RetryPolicy] = {}
        self.threads: ThreadPoolExecutor | None = None  # where sync handlers run (the worker's pool)
        self.on_unavailable: Callable[[Job, Unavailable], None] | None = None

    def policy_for(self, spec: TaskSpec[Any, Any] | None) -> RetryPolicy:
        if self._retry_policy is not None:
            return self._retry_policy
        key = spec.kind if spec is not None else ""
        policy = self._policies.get(key)
        if policy is None:
            policy = (
                ExponentialBackoff(base=spec.backoff_base, max=spec.backoff_max)
                if spec is not None
                else ExponentialBackoff()
            )
            self._policies[key] = policy
        return policy

    async def execute(self, run: Running) -> Outcome | None:
        """The job's outcome; None when the job was lost (another worker holds it now)."""
        job = run.job
        spec = self._registry.tasks.get(job.kind)
        try:
            if spec is None:
                raise UnknownJobKind(job.kind)
            if spec.timeout is None:
                result = await spec.invoke(run.ctx, self.threads)
            else:
                result = await self._invoke_within(spec, run.ctx, spec.timeout)
        except asyncio.CancelledError:
            if run.stop_reason is None:
                raise  # not ours to swallow: the worker itself is being torn down
            return self._stopped(run)
        except (Exception, SystemExit) as exc:
            if run.stop_reason is not None:
                return self._stopped(run)
            if isinstance(exc, Unavailable):
                # The machine's fault, not the job's: give it back with its attempt.
                if self.on_unavailable is not None:
                    self.on_unavailable(job, exc)
                return self._outcome(job, OutcomeKind.RELEASED, error=exc.reason)
            if isinstance(exc, JobCancelled) or run.ctx.cancel_requested:
                # A person asked to cancel: even if the handler stopped with some other error, honour
                # the request rather than scheduling a retry nobody wants.
                return self._outcome(job, OutcomeKind.CANCELLED, error=error_message(exc))
            return self._failure(job, spec, self._classify(spec, job, exc))
        if run.stop_reason is StopReason.LOST:
            return None
        if result is None:  # the usual success, built without the checks a result needs
            return Outcome(job.id, self._worker_id, job.attempt, _SUCCEEDED)
        return self._success(job, result)

    def _stopped(self, run: Running) -> Outcome | None:
        """The worker stopped this job itself: lost to another worker (no outcome), or shutting down
        (released, the attempt given back)."""
        return None if run.stop_reason is StopReason.LOST else self._outcome(run.job, OutcomeKind.RELEASED)

    async def _invoke_within(self, spec: TaskSpec[Any, Any], ctx: JobContext, seconds: float) -> Any:
        try:
            async with asyncio.timeout(seconds):
                return await spec.invoke(ctx, self.threads)
        except TimeoutError as exc:
            raise TimeoutError(f"job exceeded its timeout of {seconds:g}s") from exc

    def _classify(self, spec: TaskSpec[Any, Any] | None, job: Job, exc: BaseException) -> BaseException:
        """A TypeError raised while binding the payload to the handler's parameters is bad input, not a
        transient failure. Checked only after a TypeError, so the hot path never pays for `bind`."""
        if isinstance(exc, TypeError) and spec is not None:
            kwargs = dict(job.payload)
            if spec.wants_ctx:
                kwargs["ctx"] = None
            try:
                inspect.signature(spec.fn).bind(**kwargs)
            except TypeError as bind_error:
                return BadPayload(f"payload does not fit {job.kind}: {bind_error}")
        return exc

    def _failure(self, job: Job, spec: TaskSpec[Any, Any] | None, exc: BaseException) -> Outcome:
        now = self._clock.now()
        message = error_message(exc)
        retry_at = self.policy_for(spec).next_attempt(job, exc, now)
        if retry_at is None:
            log.info("job %s (%s) failed on attempt %d: %s", job.id, job.kind, job.attempt, message)
            return self._outcome(job, OutcomeKind.FAILED, error=message)
        return self._outcome(job, OutcomeKind.RETRY, error=message, run_at=retry_at)

    def _success(self, job: Job, result: Any) -> Outcome:
        if result is not None:
            # A result the store cannot encode would fail the whole completion batch: fail this job alone.
            try:
                encoded = json.dumps(result, allow_nan=False)
            except (TypeError, ValueError) as exc:
                message = f"TypeError: result of {job.kind} is not JSON-serialisable ({exc})"
                return self._outcome(job, OutcomeKind.FAILED, error=message)
            if _JSON_NUL.search(encoded):  # JSON allows it, PostgreSQL's jsonb does not: one rule everywhere
                message = f"ValueError: result of {job.kind} contains a NUL character"
                return self._outcome(job, OutcomeKind.FAILED, error=message)
        return self._outcome(job, OutcomeKind.SUCCEEDED, result=result)

    def _outcome(self, job: Job, kind: OutcomeKind, **fields: Any) -> Outcome:
        return Outcome(job_id=job.id, lease_owner=self._worker_id, attempt=job.attempt, kind=kind, **fields)
