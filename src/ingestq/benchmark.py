"""`ingestq bench queue`: how fast *this* setup moves jobs, measured on the user's own database.

No-op `ingestq.probe` jobs are enqueued in bulk into a queue of their own (`ingestq.bench`), then N
`ingestq worker --once` processes drain it; the clock runs from their launch to their exit, start-up
included. The finished bench jobs are purged afterwards, so the database is left as it was found. The
figures are for comparing setups (machine, backend, concurrency); `make bench` in the repository compares
ingestq with other queues on one fixed workload.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

from ingestq.builtin import PROBE_KIND
from ingestq.client.client import Client
from ingestq.errors import ConfigError, IngestqError
from ingestq.model.job import JobState
from ingestq.settings import Settings

BENCH_QUEUE = "ingestq.bench"
ENQUEUE_CHUNK = 1_000


class BenchError(IngestqError):
    """The benchmark could not run to the end (a worker failed, or the jobs did not all succeed)."""


@dataclass(frozen=True, slots=True)
class QueueBenchResult:
    backend: str
    jobs: int
    workers: int
    concurrency: int
    enqueue_seconds: float
    run_seconds: float
    succeeded: int

    @property
    def enqueue_per_second(self) -> float:
        return self.jobs / self.enqueue_seconds if self.enqueue_seconds > 0 else 0.0

    @property
    def run_per_second(self) -> float:
        return self.succeeded / self.run_seconds if self.run_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "enqueue_per_second": self.enqueue_per_second,
            "run_per_second": self.run_per_second,
        }


async def _bench_counts(client: Client) -> dict[JobState, int]:
    for queue in await client.stats():
        if queue.queue == BENCH_QUEUE:
            return dict(queue.counts)
    return {}


async def _enqueue(client: Client, jobs: int) -> float:
    started = time.perf_counter()
    for first in range(0, jobs, ENQUEUE_CHUNK):
        count = min(ENQUEUE_CHUNK, jobs - first)
        await client.enqueue_many(PROBE_KIND, [{}] * count, queue=BENCH_QUEUE)
    return time.perf_counter() - started


def worker_argv(database_url: str, concurrency: int) -> list[str]:
    """One draining worker serving only the bench queue, with this interpreter (so this install)."""
    return [
        sys.executable,
        "-m",
        "ingestq.cli.main",
        "--db",
        database_url,
        "--no-migrate",
        "worker",
        "--once",
        "--queues",
        BENCH_QUEUE,
        "--concurrency",
        str(concurrency),
    ]


async def _run_workers(database_url: str, workers: int, concurrency: int) -> float:
    argv = worker_argv(database_url, concurrency)
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        procs = [await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log) for _ in range(workers)]
        codes = [await proc.wait() for proc in procs]
        elapsed = time.perf_counter() - started
        if any(codes):
            log.seek(0)
            lines = [ln for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
            last = lines[-1] if lines else "no output"
            raise BenchError(f"a worker exited with status {max(codes)}: {last}")
    return elapsed


async def run_queue_bench(settings: Settings, jobs: int, workers: int, concurrency: int) -> QueueBenchResult:
    """Enqueue `jobs` probes, drain them with `workers` processes of `concurrency` each, clean up."""
    if jobs < 1 or workers < 1 or concurrency < 1:
        raise ConfigError("jobs, workers and concurrency must each be at least 1")
    client = await Client.connect(settings)
    async with client:
        before = await _bench_counts(client)
        leftover = before.get(JobState.QUEUED, 0) + before.get(JobState.RUNNING, 0)
        if leftover:
            raise ConfigError(
                f"queue {BENCH_QUEUE!r} still has {leftover} unfinished jobs from an earlier run: "
                f"drain it with `ingestq worker --once --queues {BENCH_QUEUE}` first"
            )
        enqueue_seconds = await _enqueue(client, jobs)
        try:
            run_seconds = await _run_workers(settings.database_url, workers, concurrency)
        finally:
            after = await _bench_counts(client)
            await client.purge([JobState.SUCCEEDED], queue=BENCH_QUEUE)
        succeeded = after.get(JobState.SUCCEEDED, 0) - before.get(JobState.SUCCEEDED, 0)
        if succeeded != jobs:
            raise BenchError(
                f"{succeeded} of {jobs} bench jobs succeeded; the rest are left in {BENCH_QUEUE!r}"
            )
        return QueueBenchResult(
            backend=client.store.backend,
            jobs=jobs,
            workers=workers,
            concurrency=concurrency,
            enqueue_seconds=enqueue_seconds,
            run_seconds=run_seconds,
            succeeded=succeeded,
        )
