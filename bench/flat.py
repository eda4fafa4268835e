"""Guarantee 10, measured: claim, job_get, position and stats cost the same with 0 or 1,000,000 finished
jobs in the table.

The finished history is made in bulk by SQL here (a bench fixture, not the product): one queued row made
through the store is copied N times, then one UPDATE moves the copies to `succeeded` so that the
finished-count triggers see them as a real completion would. The timed calls go through the Store API.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import apsw
import psycopg

from ingestq.errors import FeatureUnavailable
from ingestq.model.job import ClaimRequest, NewJob
from ingestq.settings import Settings
from ingestq.store import Store, open_store

TABLE = "ingestq_jobs"
QUEUED_FOR_CLAIMS = 200


def now() -> datetime:
    return datetime.now(UTC)


async def _timed(calls: int, fn: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    samples = []
    for k in range(calls):
        t0 = time.perf_counter()
        await fn(k)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {
        "median_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(0.99 * len(samples)))],
    }


async def measure(store: Store) -> dict[str, dict[str, float]]:
    jobs = await store.job_insert_many(
        [NewJob(kind="bench.flat", payload={"k": k}) for k in range(QUEUED_FOR_CLAIMS)], now()
    )
    ids = [j.id for j in jobs]
    req = ClaimRequest(worker_id="bench-flat", limit=1, lease_seconds=600)
    last = ids[-1]
    out = {
        "position": await _timed(50, lambda k: store.job_position(last, now())),
        "stats": await _timed(50, lambda k: store.stats(now())),
        "claim": await _timed(QUEUED_FOR_CLAIMS // 2, lambda k: store.job_claim(req, now())),
        "job_get": await _timed(200, lambda k: store.job_get(ids[k % len(ids)])),
    }
    return out


def _columns_sqlite(conn: apsw.Connection) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})") if row[1] != "id"]


def add_finished_sqlite(path: str, rows: int) -> None:
    conn = apsw.Connection(path)
    conn.execute("PRAGMA busy_timeout = 60000")
    cols = ", ".join(_columns_sqlite(conn))
    conn.execute("BEGIN IMMEDIATE")
    template = conn.execute(f"SELECT max(id) FROM {TABLE} WHERE state = 'queued'").fetchall()[0][0]
    conn.execute(
        f"WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
        f"INSERT INTO {TABLE} ({cols}) SELECT {cols} FROM {TABLE}, n WHERE id = ?",
        (rows, template),
    )
    conn.execute(
        f"UPDATE {TABLE} SET state = 'succeeded', attempt = 1, started_at = run_at, finished_at = run_at "
        f"WHERE id > ? AND state = 'queued'",
        (template,),
    )
    # Without triggers on the jobs table, the SQLite store keeps its finished counts itself when it
    # finishes jobs; do the same for the copies so that stats sees the history as it would live.
    triggers = conn.execute(
        f"SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{TABLE}'"
    ).fetchall()[0][0]
    if not triggers:
        (queue,) = conn.execute(f"SELECT queue FROM {TABLE} WHERE id = ?", (template,)).fetchall()[0]
        conn.execute(
            "INSERT INTO ingestq_finished_counts (queue, state, n) VALUES (?, 'succeeded', ?) "
            "ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n",
            (queue, rows),
        )
    conn.execute("COMMIT")
    conn.close()


def add_finished_pg(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        cols = ", ".join(
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = %s AND column_name <> 'id' ORDER BY ordinal_position",
                (TABLE,),
            )
        )
        with conn.transaction():
            row = conn.execute(f"SELECT max(id) FROM {TABLE} WHERE state = 'queued'").fetchone()
            assert row is not None
            template = row[0]
            conn.execute(
                f"INSERT INTO {TABLE} ({cols}) SELECT {cols} FROM {TABLE}, generate_series(1, %s) "
                f"WHERE id = %s",
                (rows, template),
            )
            conn.execute(
                f"UPDATE {TABLE} SET state = 'succeeded', attempt = 1, started_at = run_at, "
                f"finished_at = run_at WHERE id > %s AND state = 'queued'",
                (template,),
            )
        # what autovacuum would do on a live system after such a burst
        conn.execute(f"VACUUM ANALYZE {TABLE}")


async def flat(database_url: str, rows: int, sqlite_path: str | None) -> dict[str, Any]:
    settings = Settings(database_url=database_url)
    store = open_store(settings)
    await store.open()
    try:
        with contextlib.suppress(FeatureUnavailable):  # a server without pgvector: the queue is enough
            await store.migrate()
        before = await measure(store)
        t0 = time.perf_counter()
        if sqlite_path:
            await asyncio.to_thread(add_finished_sqlite, sqlite_path, rows)
        else:
            await asyncio.to_thread(add_finished_pg, database_url, rows)
        fill_s = time.perf_counter() - t0
        after = await measure(store)
        stats = await store.stats(now())
    finally:
        await store.close()
    finished = sum(int(n) for s in stats for st, n in s.counts.items() if st.finished)
    return {
        "rows": rows,
        "finished_counted": finished,
        "fill_seconds": fill_s,
        "before": before,
        "after": after,
    }
