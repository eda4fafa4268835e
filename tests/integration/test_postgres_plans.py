"""Guarantee 10 on PostgreSQL, checked structurally: with a large finished history, the hot queries walk
the partial indexes of unfinished rows and never scan the table. Plans, not timings: EXPLAIN output is
deterministic where a stopwatch is not.

The connection uses the store's own session settings (connect_kwargs), as the store's pool does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ingestq.store.postgres.connect import connect_kwargs
from ingestq.store.postgres.statements import FINISH_AND_CLAIM, Q

NOW = datetime(2030, 1, 1, tzinfo=UTC)
FINISHED = 20_000
QUEUED = 300

T = "'2030-01-01T00:00:00Z'::timestamptz"
HISTORY = f"""
INSERT INTO ingestq_jobs (queue, kind, payload, state, run_at, max_attempts, created_at, finished_at)
SELECT 'q' || (g % 3), 'k', '{{}}', 'succeeded', {T}, 5, {T}, {T} FROM generate_series(1, {FINISHED}) AS g;
INSERT INTO ingestq_jobs (queue, kind, payload, priority, run_at, max_attempts, created_at)
SELECT 'q' || (g % 3), 'k', '{{}}', g % 5, {T}, 5, {T} FROM generate_series(1, {QUEUED}) AS g;
"""


def _plan(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> dict[str, Any]:
    with conn.transaction(force_rollback=True):
        row = conn.execute("EXPLAIN (FORMAT JSON) " + Q[name], params).fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def _table_scans(plan: dict[str, Any]) -> list[str]:
    """Scans of ingestq_jobs other than through an index: what would grow with the history."""
    return [
        n["Node Type"]
        for n in _nodes(plan)
        if n.get("Relation Name") == "ingestq_jobs" and n["Node Type"] in ("Seq Scan", "Bitmap Heap Scan")
    ]


def _indexes(plan: dict[str, Any]) -> set[str]:
    return {n["Index Name"] for n in _nodes(plan) if "Index Name" in n}


@pytest.fixture(scope="module", params=["stale statistics", "vacuumed and analysed"])
def conn(request: pytest.FixtureRequest, embedded_pg: Any) -> Iterator[psycopg.Connection[Any]]:
    """One database per module and statistics state: the tests only EXPLAIN, inside rolled-back
    transactions, so they can share it."""
    name = embedded_pg.create_db()
    url = embedded_pg.url_for(name)
    try:
        with psycopg.connect(url, autocommit=True, **connect_kwargs(url)) as c:
            with c.transaction():
                c.execute(HISTORY)
            if request.param != "stale statistics":
                c.execute("VACUUM ANALYZE ingestq_jobs")
            yield c
    finally:
        embedded_pg.drop_db(name)


def test_claim_walks_the_claim_index_in_order(conn: psycopg.Connection[Any]) -> None:
    params = {"now": NOW, "limit": 10, "worker_id": "w", "lease_expires_at": NOW, "kinds": None}
    params["caps"] = params["paused"] = None
    plan = _plan(conn, "job_claim", params)
    assert _table_scans(plan) == []
    assert "ingestq_jobs_claim" in _indexes(plan)
    assert not [n for n in _nodes(plan) if n["Node Type"] == "Sort"], json.dumps(plan)
    one = _plan(conn, "job_claim_queue", {**params, "queue": "q1"})
    assert _table_scans(one) == []
    # either claim index serves a one-queue claim in order; which is cheaper depends on the statistics
    assert _indexes(one) & {"ingestq_jobs_claim", "ingestq_jobs_queue_claim"}
    assert not [n for n in _nodes(one) if n["Node Type"] == "Sort"], json.dumps(one)
    capped = _plan(conn, "job_claim", {**params, "caps": json.dumps({"k": 2})})  # a kind's own cap
    assert _table_scans(capped) == []
    assert "ingestq_jobs_claim" in _indexes(capped)
    assert not [n for n in _nodes(capped) if n["Node Type"] == "Sort"], json.dumps(capped)
    # a worker that leaves paused queues out still walks the claim index, in order
    for name, extra in (("job_claim", {}), ("job_claim_queues", {"queues": ["q0", "q1"]})):
        paused = _plan(conn, name, {**params, **extra, "paused": ["q2"]})
        assert _table_scans(paused) == []
        assert "ingestq_jobs_claim" in _indexes(paused)
        assert not [n for n in _nodes(paused) if n["Node Type"] == "Sort"], json.dumps(paused)


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("job_position", {"id": FINISHED + 5, "now": NOW}),
        ("stats_unfinished", {}),
        ("stats_finished", {}),
        ("stats_oldest_due", {"now": NOW}),
        ("stats_running_by_worker", {}),
        ("queue_depth", {"queues": ["q1"]}),
        ("job_rescue_stale", {"now": NOW, "message": "m", "history": 10}),
        ("job_get_unfinished_by_dedupe_key", {"keys": ["a"]}),
        ("job_extend_leases", {"ids": [1, 2], "worker_id": "w", "lease_expires_at": NOW}),
        ("worker_list", {}),
    ],
)
def test_hot_queries_never_scan_the_history(
    conn: psycopg.Connection[Any], query: str, params: dict[str, Any]
) -> None:
    assert _table_scans(_plan(conn, query, params)) == []


@pytest.mark.parametrize("name", ["job_insert_many", "job_insert_many_now", "job_insert_bulk"])
def test_enqueue_statements_stay_cheap_enough_to_skip_jit(conn: psycopg.Connection[Any], name: str) -> None:
    """Under the session's enable_sort=off a sort node costs 1e10; an enqueue statement with one would
    cross jit_above_cost and be JIT-compiled on every call (~0.3 s instead of well under 1 ms)."""
    jobs = json.dumps(
        [{"queue": "q0", "kind": "k", "payload": {"i": i}, "max_attempts": 3} for i in range(1000)]
    )
    params: dict[str, Any] = {
        "jobs": jobs,
        "now": NOW,
        "queues": ["q0"],
        "queue": "q0",
        "kind": "k",
        "priority": 0,
        "run_at": NOW,
        "max_attempts": 3,
        "document_id": None,
        "payloads": "[" + ",".join(['{"i": 1}'] * 1000) + "]",
        "locked": False,
    }
    jit_above_cost = float(conn.execute("SHOW jit_above_cost").fetchone()[0])  # type: ignore[index]
    plan = _plan(conn, name, params)
    assert plan["Total Cost"] < jit_above_cost
    assert "Sort" not in {n["Node Type"] for n in _nodes(plan)}


def test_store_sessions_never_jit_compile(conn: psycopg.Connection[Any]) -> None:
    """A statement that still sorts under enable_sort=off is costed past jit_above_cost; the store's
    sessions turn JIT off so such a statement costs milliseconds, not a compilation per call."""
    assert conn.execute("SHOW jit").fetchone() == ("off",)
    assert conn.execute("SHOW enable_sort").fetchone() == ("off",)


def test_finish_and_claim_generic_plan_walks_the_indexes(conn: psycopg.Connection[Any]) -> None:
    """The worker's finish+claim statement runs prepared, so after a few executions the server uses its
    generic plan (no parameter values): that plan must also claim through the claim index, in order."""
    from psycopg._queries import PostgresQuery  # the store's own %(name)s -> $n conversion

    outcomes = json.dumps([{"id": 1, "lease_owner": "w", "attempt": 1, "kind": "succeeded"}])
    params = {"now": NOW, "limit": 10, "worker_id": "w", "lease_expires_at": NOW, "kinds": None, "caps": None}
    params |= {"outcomes": outcomes, "history": 10, "paused": None}
    for claim in ("job_claim", "job_claim_queue"):
        query = PostgresQuery(psycopg.adapt.Transformer(conn))
        query.convert(FINISH_AND_CLAIM[Q[claim]], {**params, "queue": "q1"})
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            conn.execute(b"PREPARE fc AS " + query.query)
            values = ", ".join(["NULL"] * len(query.params or ()))
            row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE fc({values})").fetchone()
            conn.execute("DEALLOCATE fc")
        assert row is not None
        plan: dict[str, Any] = row[0][0]["Plan"]
        assert _table_scans(plan) == [], json.dumps(plan)
        assert _indexes(plan) & {"ingestq_jobs_claim", "ingestq_jobs_queue_claim"}, json.dumps(plan)
        assert not [n for n in _nodes(plan) if n["Node Type"] == "Sort"], json.dumps(plan)
