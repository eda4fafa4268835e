"""The dashboard's history-sized queries, measured: the overview's throughput (`job_finished_buckets`
over the last hour) and the purge dry run (`job_purge_count` of a narrow age band) cost the same with a
small or a 1,000,000-row finished history older than the window. Side by side in the same run: the same
calls before and after the history is added, so the figure is a ratio, not an absolute time.

    python -m bench.dashboard_flat [--rows 1000000] [--backend sqlite|pg|both]

The history is made in bulk by SQL (bench.flat's fill), then moved two days into the past so that it is
history and not the last hour; 200 jobs finish inside the window through the Store API."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import apsw
import psycopg

from bench import flat, pgserver
from ingestq.errors import FeatureUnavailable
from ingestq.model.job import ClaimRequest, JobState, NewJob, Outcome, OutcomeKind
from ingestq.settings import Settings
from ingestq.store import Store, open_store

WINDOW_JOBS = 200
AGE = "finished_at - 172800"  # two days, in the SQLite store's epoch seconds


async def _window(store: Store) -> None:
    """WINDOW_JOBS jobs finished within the last hour, half failed."""
    jobs = await store.job_insert_many(
        [NewJob(kind="bench.dash", payload={"k": k}, queue="dash") for k in range(WINDOW_JOBS)], flat.now()
    )
    claimed = await store.job_claim(ClaimRequest("bench-dash", len(jobs), 600.0, ("dash",)), flat.now())
    kinds = (OutcomeKind.SUCCEEDED, OutcomeKind.FAILED)
    outcomes = [
        Outcome(j.id, "bench-dash", j.attempt, kinds[i % 2], error="e") for i, j in enumerate(claimed)
    ]
    await store.job_finish_many(outcomes, flat.now())


async def measure(store: Store) -> dict[str, dict[str, float]]:
    since = flat.now() - timedelta(hours=1)
    band = flat.now() - timedelta(days=3)  # older than everything: the count walks nothing
    return {
        "throughput": await flat._timed(50, lambda k: store.job_finished_buckets(since, 60.0)),
        "purge_count": await flat._timed(
            50, lambda k: store.job_purge_count([JobState.SUCCEEDED], None, band)
        ),
    }


def _age_sqlite(path: str) -> None:
    conn = apsw.Connection(path)
    conn.execute("PRAGMA busy_timeout = 60000")
    conn.execute(
        f"UPDATE ingestq_jobs SET finished_at = {AGE} WHERE kind <> 'bench.dash' AND finished_at IS NOT NULL"
    )
    conn.execute("ANALYZE")
    conn.close()


def _age_pg(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingestq_jobs SET finished_at = finished_at - interval '2 days' "
            "WHERE kind <> 'bench.dash' AND finished_at IS NOT NULL"
        )
        conn.execute("VACUUM ANALYZE ingestq_jobs")


async def run(database_url: str, rows: int, sqlite_path: str | None) -> dict[str, Any]:
    store = open_store(Settings(database_url=database_url))
    await store.open()
    try:
        with contextlib.suppress(FeatureUnavailable):
            await store.migrate()
        await store.job_insert_many([NewJob(kind="bench.flat", payload={})], flat.now())  # fill's template
        await _window(store)
        before = await measure(store)
        t0 = time.perf_counter()
        if sqlite_path:
            await asyncio.to_thread(flat.add_finished_sqlite, sqlite_path, rows)
            await asyncio.to_thread(_age_sqlite, sqlite_path)
        else:
            await asyncio.to_thread(flat.add_finished_pg, database_url, rows)
            await asyncio.to_thread(_age_pg, database_url)
        fill = time.perf_counter() - t0
        after = await measure(store)
        found = await store.job_finished_buckets(flat.now() - timedelta(hours=1), 60.0)
    finally:
        await store.close()
    ratios = {name: after[name]["median_ms"] / max(before[name]["median_ms"], 1e-6) for name in before}
    return {
        "rows": rows,
        "window_jobs_seen": sum(b.count for b in found),
        "fill_seconds": round(fill, 1),
        "before": before,
        "after": after,
        "median_ratio_after_before": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="ingestq-dash-") as tmp:
            path = str(Path(tmp) / "dash.db")
            out["sqlite"] = asyncio.run(run(f"sqlite:///{path}", args.rows, path))
    if args.backend in ("pg", "both"):
        choice, note = pgserver.choose("auto")
        if choice is None:
            out["pg"] = {"skipped": note}
        else:
            name = f"ingestq_dash_{int(time.time())}"
            admin = choice.url
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            try:
                url = admin.rsplit("/", 1)[0] + "/" + name
                out["pg"] = {"server": choice.description, **asyncio.run(run(url, args.rows, None))}
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                choice.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
