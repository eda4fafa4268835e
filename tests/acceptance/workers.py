"""Helpers for acceptance tests: real `ingestq worker` processes against a real database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ingestq.model.job import Job, NewJob
from ingestq.settings import Settings
from ingestq.store import open_store

INGESTQ = str(Path(sys.executable).parent / "ingestq")


def start_worker(
    url: str, *args: str, cwd: Path | None = None, log: Path | None = None, marker_dir: Path | None = None
) -> subprocess.Popen[bytes]:
    """`ingestq --db URL worker ARGS`, stderr (its log) to `log` so a failure can show it. `marker_dir`
    lets its `ingestq.probe` jobs write marker files there (they are refused otherwise)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if marker_dir is not None:
        env["INGESTQ_PROBE_MARKER_DIR"] = str(marker_dir)
    if log is None:
        return subprocess.Popen(
            [INGESTQ, "--db", url, "worker", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
        )
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [INGESTQ, "--db", url, "worker", *args], stdout=out, stderr=out, cwd=cwd, env=env
        )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout)


def run_store(url: str, action: str, *args: object) -> object:
    """Call one Store method in a fresh event loop (the test itself is synchronous)."""

    async def go() -> object:
        store = open_store(Settings(database_url=url, auto_migrate=False))
        await store.open()
        try:
            return await getattr(store, action)(*args)
        finally:
            await store.close()

    return asyncio.run(go())


def insert(url: str, jobs: Sequence[NewJob]) -> list[Job]:
    from datetime import UTC, datetime

    result = run_store(url, "job_insert_many", list(jobs), datetime.now(UTC))
    assert isinstance(result, list)
    return result


def get(url: str, job_id: int) -> Job:
    job = run_store(url, "job_get", job_id)
    assert isinstance(job, Job)
    return job


def marker_lines(path: Path) -> list[tuple[str, int, int]]:
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        event, job_id, attempt = line.split()
        lines.append((event, int(job_id), int(attempt)))
    return lines


def wait_for_line(
    path: Path, line: tuple[str, int, int], timeout: float = 60, procs: Sequence[subprocess.Popen[bytes]] = ()
) -> None:
    """Wait until the marker file holds `line` (polls the file; fails fast if the workers died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in marker_lines(path):
            return
        if procs and all(p.poll() is not None for p in procs):
            raise AssertionError(f"workers exited before {line} appeared")
        time.sleep(0.02)
    raise AssertionError(f"{line} not in {path} after {timeout}s: {marker_lines(path)[-5:]}")


def wait_for_text(
    path: Path, text: str, timeout: float = 60, procs: Sequence[subprocess.Popen[bytes]] = ()
) -> None:
    """Wait until a worker's log mentions `text`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if procs and all(p.poll() is not None for p in procs):
            raise AssertionError(f"workers exited before {text!r} appeared in {path.name}")
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in {path} after {timeout}s")


def count_events(path: Path) -> Counter[tuple[str, int]]:
    return Counter((event, job_id) for event, job_id, _ in marker_lines(path))
