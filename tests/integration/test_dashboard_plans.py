"""The dashboard's throughput query reads only the last hour, on both backends: with a large finished
history (all older than the window), the plan is a range of the finished-by-age index per state, never a
scan of the jobs table. Plans, not timings (EXPLAIN output is deterministic where a stopwatch is not).
The purge dry-run count walks the same index (its cost is what it counts, like the purge itself)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apsw
import psycopg
import pytest

from ingestq.store.postgres.connect import connect_kwargs
from ingestq.store.postgres.statements import Q as PG
from ingestq.store.sqlite.engine import Q as LITE
from ingestq.store.sqlite.store import SqliteStore

HISTORY_AT = datetime(2030, 1, 1, tzinfo=UTC)
SINCE = HISTORY_AT + timedelta(days=2)  # the last hour starts long after the whole history
FINISHED = 20_000
# a purge of the oldest 5 %: counting (or deleting) most of the table may rightly scan it
OLDEST = HISTORY_AT - timedelta(seconds=FINISHED * 0.95)
PG_HISTORY = f"""
INSERT INTO ingestq_jobs (queue, kind, payload, state, run_at, max_attempts, created_at, finished_at)
SELECT 'q' || (g % 3), 'k', '{{}}',
       (CASE WHEN g % 4 = 0 THEN 'failed' ELSE 'succeeded' END)::ingestq_job_state,
       t, 5, t, t - make_interval(secs => g)
FROM generate_series(1, {FINISHED}) AS g, (SELECT '2030-01-01T00:00:00Z'::timestamptz AS t) AS c
"""


def _pg_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _pg_nodes(child)
    return found


@pytest.fixture(scope="module", params=["stale statistics", "vacuumed and analysed"])
def pg(request: pytest.FixtureRequest, embedded_pg: Any) -> Iterator[psycopg.Connection[Any]]:
    name = embedded_pg.create_db()
    url = embedded_pg.url_for(name)
    try:
        with psycopg.connect(url, autocommit=True, **connect_kwargs(url)) as c:
            with c.transaction():
                c.execute(PG_HISTORY)
            if request.param != "stale statistics":
                c.execute("VACUUM ANALYZE ingestq_jobs")
            yield c
    finally:
        embedded_pg.drop_db(name)


def _pg_plan(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> dict[str, Any]:
    with conn.transaction(force_rollback=True):
        row = conn.execute("EXPLAIN (FORMAT JSON) " + PG[name], params).fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]["Plan"]
    return plan


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("job_finished_buckets", {"since": SINCE, "width": 60.0}),
        ("job_purge_count", {"states": ["succeeded"], "queue": None, "finished_before": OLDEST}),
        ("job_purge_count", {"states": ["failed"], "queue": "q1", "finished_before": OLDEST}),
    ],
)
def test_postgres_reads_the_window_through_the_finished_index(
    pg: psycopg.Connection[Any], name: str, params: dict[str, Any]
) -> None:
    plan = _pg_plan(pg, name, params)
    nodes = _pg_nodes(plan)
    jobs = [n for n in nodes if n.get("Relation Name") == "ingestq_jobs"]
    assert jobs, json.dumps(plan)
    assert not [n for n in jobs if n["Node Type"] == "Seq Scan"], json.dumps(plan)
    assert {n.get("Index Name") for n in nodes} & {"ingestq_jobs_finished"}, json.dumps(plan)
    conds = " ".join(str(n.get("Index Cond", "")) for n in nodes)
    assert "finished_at" in conds, json.dumps(plan)  # a range on the age, not a filter after a walk


def test_postgres_throughput_plan_cost_does_not_follow_the_history(pg: psycopg.Connection[Any]) -> None:
    """The planner's own row estimate for the window stays tiny next to the history it skips."""
    plan = _pg_plan(pg, "job_finished_buckets", {"since": SINCE, "width": 60.0})
    scans = [n for n in _pg_nodes(plan) if n.get("Relation Name") == "ingestq_jobs"]
    assert all(n["Plan Rows"] < FINISHED / 10 for n in scans), json.dumps(plan)


async def test_sqlite_reads_the_window_through_the_finished_index(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = SqliteStore(path)
    await store.open()
    await store.migrate()
    await store.close()
    conn = apsw.Connection(str(path))
    try:
        at = HISTORY_AT.timestamp()
        with conn:
            conn.execute(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?) "
                "INSERT INTO ingestq_jobs (queue, kind, payload, state, run_at, max_attempts, created_at, "
                "finished_at) SELECT 'q' || (n % 3), 'k', '{}', "
                "CASE WHEN n % 4 = 0 THEN 'failed' ELSE 'succeeded' END, ?, 5, ?, ? - n FROM g",
                (FINISHED, at, at, at),
            )
        conn.execute("ANALYZE")
        cases: dict[str, dict[str, Any]] = {
            "job_finished_buckets": {"since": SINCE.timestamp(), "width": 60.0, "buckets": 60},
            "job_purge_count": {"state": "succeeded", "queue": None, "finished_before": OLDEST.timestamp()},
        }
        for name, params in cases.items():
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {LITE[name]}", params)]
            jobs = [step for step in plan if "ingestq_jobs" in step]
            assert jobs, plan
            assert all("INDEX ingestq_jobs_finished" in step and "finished_at" in step for step in jobs), plan
        # the newest finish of a state: the end of its range of the index (SQLite's max() shortcut)
        plan = [
            row[3]
            for row in conn.execute(f"EXPLAIN QUERY PLAN {LITE['job_finished_last']}", {"state": "failed"})
        ]
        assert plan == ["SEARCH ingestq_jobs USING COVERING INDEX ingestq_jobs_finished (state=?)"], plan
    finally:
        conn.close()
