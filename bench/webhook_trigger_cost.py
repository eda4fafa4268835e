"""What the webhook outbox trigger costs SQLite's finish path, per job without callbacks.

    PYTHONPATH=src python -m bench.webhook_trigger_cost [ROUNDS]

Inserts and claims 10,000 jobs, then times job_finish_many in batches of 500, on a fresh database with
migration 7's `ingestq_jobs_webhooks` trigger and on one with it dropped, alternating in one process so
that both see the same machine load. Prints the median and every run, in microseconds per finished job.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import apsw

from ingestq.model.job import ClaimRequest, NewJob, Outcome, OutcomeKind
from ingestq.settings import Settings
from ingestq.store import open_store

JOBS, BATCH = 10_000, 500


async def one_run(path: Path, with_trigger: bool) -> float:
    store = open_store(Settings(database_url=f"sqlite:///{path}"))
    await store.open()
    try:
        await store.migrate()
        if not with_trigger:
            conn = apsw.Connection(str(path))
            conn.execute("DROP TRIGGER ingestq_jobs_webhooks")
            conn.close()
        now = datetime.now(UTC)
        await store.job_insert_many([NewJob(kind="k") for _ in range(JOBS)], now)
        jobs = await store.job_claim(ClaimRequest("w", JOBS, 600.0), now)
        spent = 0.0
        for i in range(0, JOBS, BATCH):
            outcomes = [Outcome(j.id, "w", j.attempt, OutcomeKind.SUCCEEDED) for j in jobs[i : i + BATCH]]
            started = time.perf_counter()
            await store.job_finish_many(outcomes, now)
            spent += time.perf_counter() - started
        return spent / JOBS * 1e6
    finally:
        await store.close()


async def main(rounds: int) -> None:
    runs: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for flag in (True, False) if r % 2 == 0 else (False, True):
            with tempfile.TemporaryDirectory() as folder:
                runs[flag].append(await one_run(Path(folder) / "q.db", flag))
    for flag, values in runs.items():
        values.sort()
        listed = ", ".join(f"{v:.2f}" for v in values)
        print(f"trigger {'on ' if flag else 'off'}: median {values[len(values) // 2]:.2f} us/job ({listed})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 6))
