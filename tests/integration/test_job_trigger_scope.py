"""The job outbox trigger (webhooks, migrations 7 and 10) is part only of the statements that finish a
job, and runs its function only for jobs with callbacks. Migration 7 put it on `UPDATE OF state`, so
every claim compiled it in and ran its sub-program for each claimed row (SQLite claim 22.9 against 19.3
us per job, PostgreSQL finish 42.5 against 28.3: `python -m bench.webhook_trigger_cost`). Migration 10
moves it to `UPDATE OF finished_at`, which only a finish sets, with `WHEN NEW.has_callbacks`."""

from __future__ import annotations

import re
from pathlib import Path

import apsw
import psycopg
import pytest

from ingestq.store.sqlite.engine import Q

# The statements of a job's life that must not run the trigger, and those that finish a job and must.
NOT_FINISHING = [
    "job_claim",
    "job_claim_queue",
    "job_claim_queues_excluding_capped",
    "job_retry_later",
    "job_release",
    "job_progress",
    "job_cancel_running",
    "job_extend_leases",
]
FINISHING = ["job_succeed", "job_fail", "job_mark_cancelled", "job_rescue_stale", "job_cancel_queued"]


def _runs_a_trigger(conn: apsw.Connection, sql: str) -> bool:
    """Whether the compiled statement calls a trigger's sub-program (the `Program` opcode)."""
    unbound = dict.fromkeys(re.findall(r"(?<!:):(\w+)", sql))  # EXPLAIN compiles, runs nothing
    return any(row[1] == "Program" for row in conn.execute("EXPLAIN " + sql, unbound))


def test_on_sqlite_only_the_finishing_statements_run_the_job_trigger(index_database_url: str) -> None:
    if not index_database_url.startswith("sqlite:///"):
        pytest.skip("SQLite's compiled statements")
    conn = apsw.Connection(str(Path(index_database_url.removeprefix("sqlite:///"))))
    try:
        assert {name for name in NOT_FINISHING if _runs_a_trigger(conn, Q[name])} == set()
        assert {name for name in FINISHING if _runs_a_trigger(conn, Q[name])} == set(FINISHING)
    finally:
        conn.close()


def test_on_postgresql_the_job_trigger_fires_on_the_finish_time_only(index_database_url: str) -> None:
    if index_database_url.startswith("sqlite:///"):
        pytest.skip("PostgreSQL's trigger catalogue")
    with psycopg.connect(index_database_url) as conn:
        rows = conn.execute(
            "SELECT event_object_column FROM information_schema.triggered_update_columns "
            "WHERE trigger_name = 'ingestq_jobs_webhooks'"
        ).fetchall()
    assert rows == [("finished_at",)]


def test_on_postgresql_the_outbox_function_runs_only_for_jobs_with_callbacks(index_database_url: str) -> None:
    """PostgreSQL allows no subquery in a trigger's WHEN clause: before migration 10 the plpgsql
    function ran for every finished job (11 us each) to find it had no callbacks."""
    if index_database_url.startswith("sqlite:///"):
        pytest.skip("PostgreSQL's function statistics")
    with psycopg.connect(index_database_url) as conn:
        conn.execute("SET LOCAL track_functions = 'all'")  # counted in pg_stat_xact_user_functions
        ids = [
            row[0]
            for row in conn.execute(
                "INSERT INTO ingestq_jobs (queue, kind, state, run_at, attempt, max_attempts, lease_owner, "
                "lease_expires_at, created_at) "
                "SELECT 'q', 'k', 'running', now(), 1, 3, 'w', now() + interval '1 minute', now() "
                "FROM generate_series(1, 5) "
                "RETURNING id"
            ).fetchall()
        ]
        conn.execute(
            "INSERT INTO ingestq_job_callbacks (job_id, url, queue, max_attempts) "
            "VALUES (%s, 'https://a.example/hook', 'hooks', 3)",
            (ids[0],),
        )
        conn.execute(
            "UPDATE ingestq_jobs SET state = 'succeeded', finished_at = now(), lease_owner = NULL, "
            "lease_expires_at = NULL WHERE id = ANY(%s)",
            (ids,),
        )
        calls = conn.execute(
            "SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = 'ingestq_job_webhooks'"
        ).fetchone()
        announced = conn.execute(
            "SELECT subject_job_id FROM ingestq_webhook_deliveries WHERE event = 'job.succeeded'"
        ).fetchall()
        conn.rollback()
    assert calls == (1,)
    assert announced == [(ids[0],)]
