"""Job kinds every worker runs, whatever `--app` says: `ingestq.probe`, for demos, benchmarks and tests.

Payload of `ingestq.probe` (all optional):
- `seconds`: sleep that long (asyncio, so a cancel request or a shutdown stops it at once);
- `fail_times`: raise a RetryableError on attempts 1..N, succeed after;
- `marker`: a file path; the probe appends `start <job id> <attempt>` when it starts and
  `done <job id> <attempt>` when it finishes successfully (one O_APPEND write per line, so lines from
  concurrent workers on one machine never interleave).
An empty payload does nothing: a no-op job, for measuring the queue itself.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ingestq.errors import JobCancelled, RetryableError
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext, TaskSpec

PROBE_KIND = "ingestq.probe"

builtin_registry = Registry()


def _mark(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


async def probe(
    ctx: JobContext, seconds: float | None = None, fail_times: int = 0, marker: str | None = None
) -> None:
    job = ctx.job
    if marker:
        _mark(marker, f"start {job.id} {job.attempt}")
    if job.attempt <= fail_times:
        raise RetryableError(f"probe failure on attempt {job.attempt} of {fail_times} planned")
    if seconds:
        try:
            await asyncio.wait_for(ctx.wait_cancelled(), timeout=seconds)
        except TimeoutError:
            pass
        else:
            raise JobCancelled(f"job {job.id} cancelled")
    if marker:
        _mark(marker, f"done {job.id} {job.attempt}")


# Short backoff: probes stand in for real work in tests and demos, where waiting minutes helps nobody.
probe_task: TaskSpec[..., Any] = builtin_registry.task(
    probe, name=PROBE_KIND, backoff_base=0.1, backoff_max=5.0
)
