"""`make demo`: a few thousand `ingestq.probe` jobs drained by two real worker processes.

Some jobs fail a couple of times and succeed on retry (short backoff), a few fail for good and land in
the dead-letter state. A progress bar follows `Client.stats()`; when every job is finished the workers
get SIGTERM (graceful shutdown) and the final stats table is printed. The demo uses its own database,
`.ingestq/demo.db`, recreated on each run, and exits non-zero if the outcome is not the expected one.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingestq.builtin import PROBE_KIND
from ingestq.cli.render import stats_table
from ingestq.core.client import Client
from ingestq.core.job import JobState, NewJob, QueueStats
from ingestq.settings import Settings

JOBS = 3000
FLAKY = 300  # fail once or twice, then succeed
DOOMED = 12  # fail on every attempt: dead letter after max_attempts
SLOW = 300  # sleep a little, so several jobs are in flight at once
WORKERS = 2
CONCURRENCY = 25
DEADLINE = 120.0  # seconds; the demo normally takes a few

console = Console(highlight=False)


def _fresh_database(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _jobs(client: Client) -> list[NewJob]:
    rng = random.Random(7)
    jobs = [client.new_job(PROBE_KIND, {}, queue="default") for _ in range(JOBS - FLAKY - DOOMED - SLOW)]
    jobs += [
        client.new_job(PROBE_KIND, {"fail_times": rng.choice((1, 2))}, queue="flaky") for _ in range(FLAKY)
    ]
    jobs += [client.new_job(PROBE_KIND, {"seconds": 0.02}, queue="slow", priority=1) for _ in range(SLOW)]
    jobs += [
        client.new_job(PROBE_KIND, {"fail_times": 99}, queue="flaky", max_attempts=3) for _ in range(DOOMED)
    ]
    rng.shuffle(jobs)
    return jobs


def _count(stats: list[QueueStats], *states: JobState) -> int:
    return sum(row.counts.get(state, 0) for row in stats for state in states)


def _start_workers(url: str, logs: Path) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "ingestq.cli.main", "--db", url, "worker"]
    options = ["--concurrency", str(CONCURRENCY), "--poll-interval", "0.2", "--grace", "5"]
    procs = []
    for n in range(WORKERS):
        log = (logs / f"demo-worker-{n + 1}.log").open("wb")
        procs.append(subprocess.Popen([*command, *options], stdout=log, stderr=subprocess.STDOUT))
        log.close()  # the child holds its own descriptor
    return procs


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    return [proc.wait(timeout=30) for proc in procs]


async def _follow(client: Client, procs: list[subprocess.Popen[bytes]]) -> list[QueueStats]:
    """Drive the progress bar from the queue's own stats until every job is finished."""
    columns = (
        TextColumn("[bold]draining"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("jobs", total=JOBS, detail="")
        while True:
            stats = await client.stats()
            done = _count(stats, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
            detail = (
                f"queued {_count(stats, JobState.QUEUED)}  running {_count(stats, JobState.RUNNING)}  "
                f"failed {_count(stats, JobState.FAILED)}"
            )
            bar.update(task, completed=done, detail=detail)
            if done >= JOBS:
                return stats
            if all(proc.poll() is not None for proc in procs):
                raise RuntimeError("every worker exited before the queue was drained; see .ingestq/*.log")
            if time.monotonic() - started > DEADLINE:
                raise RuntimeError(f"the queue was not drained within {DEADLINE:.0f}s")
            await asyncio.sleep(0.1)


async def run(folder: Path = Path(".ingestq")) -> int:
    path = _fresh_database(folder)
    settings = Settings(database_url=f"sqlite:///{path}")
    async with Client.connect(settings) as client:
        started = time.monotonic()
        await client.insert_many(_jobs(client))
        console.print(
            f"enqueued {JOBS} {PROBE_KIND} jobs in {time.monotonic() - started:.2f}s "
            f"({FLAKY} flaky, {DOOMED} doomed, {SLOW} slow) into {path}"
        )
        console.print(f"starting {WORKERS} `ingestq worker` processes (concurrency {CONCURRENCY} each)")
        procs = _start_workers(settings.database_url, folder)
        started = time.monotonic()
        try:
            stats = await _follow(client, procs)
        finally:
            codes = _stop_workers(procs)
        elapsed = time.monotonic() - started
        console.print(stats_table(stats))
        failed = _count(stats, JobState.FAILED)
        console.print(
            f"drained {JOBS} jobs in {elapsed:.1f}s ({JOBS / elapsed:.0f} jobs/s); "
            f"{failed} dead-lettered (expected {DOOMED}); workers exited with {codes} after SIGTERM"
        )
        console.print(f"inspect: ingestq --db sqlite:///{path} jobs list --state failed")
    return 0 if failed == DOOMED and codes == [0] * WORKERS else 1


def main() -> None:
    raise SystemExit(asyncio.run(run()))


if __name__ == "__main__":
    main()
