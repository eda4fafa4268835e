"""Job kinds every worker runs, whatever `--app` says: `ingestq.probe`, for demos, benchmarks and tests.

Payload of `ingestq.probe` (all optional):
- `seconds`: sleep that long (asyncio, so a cancel request or a shutdown stops it at once);
- `fail_times`: raise a RetryableError on attempts 1..N, succeed after;
- `marker`: a plain file name (test-only, see below); the probe appends `start <job id> <attempt>` to
  that file when it starts and `done <job id> <attempt>` when it finishes successfully (one O_APPEND
  write per line, so lines from concurrent workers on one machine never interleave).
An empty payload does nothing: a no-op job, for measuring the queue itself.

Why markers are off by default: every production worker registers this kind, and anyone who can enqueue
a job (later: any client of the HTTP API) chooses its payload. A `marker` that is a path would let them
append to any file the worker can write (a crontab, a shell profile, the SQLite database itself). So
writing markers is a test facility that a worker turns on explicitly, with `probe_marker_dir`
(`INGESTQ_PROBE_MARKER_DIR`, a directory; `WorkerConfig.probe_marker_dir` in-process). Even then the
payload only names a file *inside* that directory: no path separators, not `.` or `..`, and the last
component is not followed if it is a symlink. Without the setting, a payload with a `marker` fails at
once (PermanentError, no retry) and no file is touched; `seconds` and `fail_times` work as always.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ingestq.errors import JobCancelled, PermanentError, RetryableError
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext, TaskSpec

PROBE_KIND = "ingestq.probe"

# Short backoff: probes stand in for real work in tests and demos, where waiting minutes helps nobody.
_PROBE_OPTIONS: dict[str, Any] = {"name": PROBE_KIND, "backoff_base": 0.1, "backoff_max": 5.0}

_Probe = Callable[..., Awaitable[None]]


def _mark(path: Path, line: str) -> None:
    # O_NOFOLLOW: a symlink planted in the marker directory must not redirect the write elsewhere
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise PermanentError(f"probe marker {path.name!r}: cannot write ({exc.strerror or exc})") from None
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def marker_path(marker_dir: str | None, marker: str) -> Path:
    """Where a payload's `marker` is written, or PermanentError (one line) if it may not be."""
    if marker_dir is None:
        raise PermanentError(
            "probe markers are off on this worker (set INGESTQ_PROBE_MARKER_DIR to a directory to allow them)"
        )
    separators = {"/", os.sep, os.altsep or "/", "\0"}
    if marker in (".", "..") or any(sep in marker for sep in separators):
        raise PermanentError(f"probe marker {marker!r} must be a plain file name (no path, not . or ..)")
    return Path(marker_dir) / marker


def _make_probe(marker_dir: str | None) -> _Probe:
    async def probe(
        ctx: JobContext, seconds: float | None = None, fail_times: int = 0, marker: str | None = None
    ) -> None:
        job = ctx.job
        # checked before anything happens: a refused marker fails the job without side effects
        path = marker_path(marker_dir, marker) if marker else None  # "" meant "no marker" and still does
        if path is not None:
            _mark(path, f"start {job.id} {job.attempt}")
        if job.attempt <= fail_times:
            raise RetryableError(f"probe failure on attempt {job.attempt} of {fail_times} planned")
        if seconds:
            try:
                await asyncio.wait_for(ctx.wait_cancelled(), timeout=seconds)
            except TimeoutError:
                pass
            else:
                raise JobCancelled(f"job {job.id} cancelled")
        if path is not None:
            _mark(path, f"done {job.id} {job.attempt}")

    return probe


probe = _make_probe(None)
"""The probe every worker runs by default: markers refused."""

builtin_registry = Registry()
probe_task: TaskSpec[..., Any] = builtin_registry.task(probe, **_PROBE_OPTIONS)


@functools.cache
def builtin_kinds(marker_dir: str | None = None) -> Registry:
    """The built-in kinds, with probe markers written under `marker_dir` (None: refused). A worker takes
    these for its `probe_marker_dir`; a Client needs only `builtin_registry` (same kinds, same payloads)."""
    if marker_dir is None:
        return builtin_registry
    registry = Registry()
    registry.task(_make_probe(str(marker_dir)), **_PROBE_OPTIONS)
    return registry
