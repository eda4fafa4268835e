"""The executor alone: every way a handler can end, mapped to an Outcome, with no database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from factories import T0, make_job
from ingestq.clock import ManualClock
from ingestq.errors import PermanentError, RetryableError
from ingestq.model.job import Job, OutcomeKind
from ingestq.tasks.registry import Registry
from ingestq.tasks.retry import ExponentialBackoff
from ingestq.tasks.task import JobContext
from ingestq.worker.executor import Executor, Running, StopReason

registry = Registry()


@registry.task(name="ok")
async def ok(x: int = 1) -> dict[str, int]:
    return {"x": x}


@registry.task(name="sync_ok")
def sync_ok(x: int) -> int:
    return x * 2


@registry.task(name="boom", backoff_base=2.0)
async def boom() -> None:
    raise ValueError("boom\nsecond line")


@registry.task(name="bad_input")
async def bad_input() -> None:
    raise PermanentError("file is not a PDF")


@registry.task(name="later")
async def later() -> None:
    raise RetryableError("rate limited", retry_after=42)


@registry.task(name="inner_type_error")
async def inner_type_error() -> None:
    raise TypeError("unsupported operand")


@registry.task(name="slow", timeout=0.05)
async def slow() -> None:
    await asyncio.sleep(10)


@registry.task(name="cooperative")
async def cooperative(ctx: JobContext) -> None:
    await ctx.wait_cancelled()
    ctx.raise_if_cancelled()


@registry.task(name="unserialisable")
async def unserialisable() -> object:
    return object()


@registry.task(name="exits")
def exits() -> None:
    raise SystemExit(3)


def _executor() -> Executor:
    return Executor(registry, ManualClock(T0), "w1", ExponentialBackoff(jitter=0.0))


async def _run(job: Job) -> Any:
    run = Running(job, JobContext(job))
    return await _executor().execute(run)


async def test_success_carries_the_result() -> None:
    outcome = await _run(make_job(kind="ok", payload={"x": 3}))
    assert outcome.kind is OutcomeKind.SUCCEEDED
    assert outcome.result == {"x": 3}
    assert outcome.lease_owner == "w1"


async def test_sync_handler_runs_in_a_thread() -> None:
    outcome = await _run(make_job(kind="sync_ok", payload={"x": 4}))
    assert (outcome.kind, outcome.result) == (OutcomeKind.SUCCEEDED, 8)


async def test_error_is_retried_with_the_kind_backoff_and_a_one_line_message() -> None:
    outcome = await _run(make_job(kind="boom", attempt=2))
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.error == "ValueError: boom second line"
    # Worker-level policy given: base 1 s, attempt 2 -> 2 s.
    assert outcome.run_at == T0 + timedelta(seconds=2)


async def test_per_kind_backoff_without_a_worker_policy() -> None:
    executor = Executor(registry, ManualClock(T0), "w1")
    job = make_job(kind="boom", attempt=1)
    outcome = await executor.execute(Running(job, JobContext(job)))
    assert outcome is not None
    assert outcome.run_at is not None
    assert timedelta(seconds=1.8) <= outcome.run_at - T0 <= timedelta(seconds=2.2)  # base 2 s ± jitter


async def test_last_attempt_fails() -> None:
    outcome = await _run(make_job(kind="boom", attempt=5, max_attempts=5))
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.error == "ValueError: boom second line"


async def test_permanent_error_fails_at_once() -> None:
    outcome = await _run(make_job(kind="bad_input"))
    assert (outcome.kind, outcome.error) == (OutcomeKind.FAILED, "PermanentError: file is not a PDF")


async def test_retry_after_overrides_backoff() -> None:
    outcome = await _run(make_job(kind="later"))
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.run_at == T0 + timedelta(seconds=42)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [({"x": 1, "y": 1}, "unexpected keyword argument 'y'"), ({}, "missing a required argument: 'x'")],
)
async def test_payload_that_does_not_fit_fails_at_once(payload: dict[str, Any], fragment: str) -> None:
    outcome = await _run(make_job(kind="sync_ok", payload=payload))
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.error.startswith("BadPayload: payload does not fit sync_ok:")
    assert fragment in outcome.error


async def test_type_error_inside_the_handler_is_retried() -> None:
    outcome = await _run(make_job(kind="inner_type_error"))
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.error == "TypeError: unsupported operand"


async def test_unknown_kind_fails_at_once() -> None:
    outcome = await _run(make_job(kind="nobody.knows"))
    assert outcome.kind is OutcomeKind.FAILED
    assert "unknown job kind 'nobody.knows'" in outcome.error


async def test_timeout_is_a_retryable_failure() -> None:
    outcome = await _run(make_job(kind="slow"))
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.error == "TimeoutError: job exceeded its timeout of 0.05s"


async def test_unserialisable_result_fails_the_job_alone() -> None:
    outcome = await _run(make_job(kind="unserialisable"))
    assert outcome.kind is OutcomeKind.FAILED
    assert "not JSON-serialisable" in outcome.error


async def test_system_exit_in_a_handler_does_not_escape() -> None:
    outcome = await _run(make_job(kind="exits"))
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.error == "SystemExit: 3"


async def _start(kind: str) -> tuple[Running, asyncio.Task[Any]]:
    job = make_job(kind=kind)
    run = Running(job, JobContext(job))
    task = asyncio.create_task(_executor().execute(run))
    run.task = task
    await asyncio.sleep(0)  # let the handler start
    return run, task


async def test_cooperative_cancel_gives_cancelled() -> None:
    run, task = await _start("cooperative")
    run.ctx.request_cancel()
    outcome = await task
    assert outcome.kind is OutcomeKind.CANCELLED


async def test_shutdown_releases() -> None:
    run, task = await _start("slow")
    run.stop(StopReason.SHUTDOWN)
    outcome = await task
    assert outcome.kind is OutcomeKind.RELEASED
    assert outcome.attempt == run.job.attempt


async def test_lost_job_has_no_outcome() -> None:
    run, task = await _start("cooperative")
    run.stop(StopReason.LOST)
    assert await task is None


@registry.task(name="fails_when_cancelled")
async def fails_when_cancelled(ctx: JobContext) -> None:
    await ctx.wait_cancelled()
    raise ConnectionError("aborted mid-upload")


async def test_an_error_after_a_cancel_request_cancels_instead_of_retrying() -> None:
    run, task = await _start("fails_when_cancelled")
    run.ctx.request_cancel()
    outcome = await task
    assert (outcome.kind, outcome.error) == (OutcomeKind.CANCELLED, "ConnectionError: aborted mid-upload")


async def test_an_error_during_shutdown_still_releases() -> None:
    run, task = await _start("fails_when_cancelled")
    run.stop_reason = StopReason.SHUTDOWN
    run.ctx.request_cancel()  # what the worker does first: ask politely, the handler then errors out
    outcome = await task
    assert outcome.kind is OutcomeKind.RELEASED


def test_a_kind_concurrency_must_be_positive() -> None:
    registry = Registry()
    with pytest.raises(ValueError, match="at least 1"):
        registry.task(name="k", concurrency=0)(lambda: None)
    assert registry.task(name="k", concurrency=3)(lambda: None).concurrency == 3
