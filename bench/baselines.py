"""What the hardware allows, with no queue code at all: the ceilings our figures should be read against.

- PostgreSQL: single-row INSERT commits per second from one connection (autocommit, stock config).
- SQLite (WAL): claim one row and commit, then mark it done and commit (the two commits a durable queue
  makes per job when it does not batch), from one connection, with synchronous NORMAL and FULL.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psycopg


def pg_insert_commits(url: str, n: int = 2_000) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_rows (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload jsonb)"
        )
        t0 = time.perf_counter()
        for i in range(n):
            conn.execute("INSERT INTO bench_rows (payload) VALUES (%s)", (f'{{"i": {i}}}',))
        elapsed = time.perf_counter() - t0
    return {"commits_per_s": n / elapsed, "n": n}


def sqlite_claim_commit(path: Path, synchronous: str, n: int = 5_000) -> dict[str, float]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, state INTEGER NOT NULL, payload TEXT)")
        conn.execute("CREATE INDEX q_queued ON q (id) WHERE state = 0")
        conn.executemany(
            "INSERT INTO q (state, payload) VALUES (0, ?)", ((f'{{"i": {i}}}',) for i in range(n))
        )
        t0 = time.perf_counter()
        for _ in range(n):
            conn.execute("BEGIN IMMEDIATE")
            (job_id,) = conn.execute(
                "UPDATE q SET state = 1 WHERE id = (SELECT id FROM q WHERE state = 0 ORDER BY id LIMIT 1) "
                "RETURNING id"
            ).fetchone()
            conn.execute("COMMIT")
            conn.execute("UPDATE q SET state = 2 WHERE id = ?", (job_id,))  # autocommit: its own commit
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return {"jobs_per_s": n / elapsed, "commits_per_s": 2 * n / elapsed, "n": n}
