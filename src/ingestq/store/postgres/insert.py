"""The insert and dedupe protocol of PostgresStore (no class: functions on the caller's connection).

A batch goes in as one statement (job_insert_many). A dedupe_key that an unfinished job holds is skipped
by the partial unique index; the caller then reads that job, and if it finished meanwhile (the key is
free again) inserts once more, for a few rounds (resolve_dedupes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ingestq.errors import QueueFull, StoreError
from ingestq.model.job import Job, NewJob
from ingestq.store.common import queued_job
from ingestq.store.postgres.pool import Conn
from ingestq.store.postgres.rows import job_from_row
from ingestq.store.postgres.statements import Q, dump_json

_DEDUPE_ROUNDS = 3


def _insert_params(jobs: Sequence[NewJob], now: datetime) -> dict[str, Any]:
    """The batch as one JSON document (see job_insert_many); keys left out are NULL in SQL."""
    rows: list[dict[str, Any]] = []
    for j in jobs:
        row: dict[str, Any] = {
            "queue": j.queue,
            "kind": j.kind,
            "payload": j.payload,
            "max_attempts": j.max_attempts,
        }
        if j.priority:
            row["priority"] = j.priority
        if j.run_at is not None:
            if j.run_at.tzinfo is None:
                raise ValueError(f"run_at of job kind {j.kind!r} must be timezone-aware (UTC)")
            row["run_at"] = j.run_at.isoformat()
        if j.dedupe_key is not None:
            row["dedupe_key"] = j.dedupe_key
        if j.document_id is not None:
            row["document_id"] = j.document_id
        rows.append(row)
    return {"jobs": dump_json(rows, "payload"), "now": now}


async def insert(conn: Conn, jobs: Sequence[NewJob], now: datetime) -> list[Job]:
    """Insert inside the caller's transaction: backpressure lock, the batch insert and the notification
    go out together (pipeline), so a batch without dedupe conflicts costs one round trip plus COMMIT."""
    queues = sorted({j.queue for j in jobs})
    params = _insert_params(jobs, now)
    async with conn.pipeline():
        lock_cur = await conn.execute(Q["queue_lock_limited"], {"queues": queues})
        insert_cur = await conn.execute(Q["job_insert_many"], params)
        await conn.execute(Q["jobs_notify"])
        limited = await lock_cur.fetchall()
        inserted = await insert_cur.fetchall()

    plain_ids = sorted(job_id for job_id, key in inserted if key is None)
    by_key = {key: job_id for job_id, key in inserted if key is not None}
    results: list[Job | None] = [None] * len(jobs)
    plain = iter(plain_ids)
    pending: list[int] = []
    for i, j in enumerate(jobs):
        if j.dedupe_key is None:
            results[i] = queued_job(next(plain), j, j.run_at or now, now)
        elif j.dedupe_key in by_key:
            results[i] = queued_job(by_key[j.dedupe_key], j, j.run_at or now, now)
        else:
            pending.append(i)
    # inputs met an unfinished job holding their key (or an earlier input of this batch did)
    await resolve_dedupes(conn, jobs, pending, results, now)

    if limited:
        await check_depths(conn, dict(limited))
    return [job for job in results if job is not None]


async def check_depths(conn: Conn, limits: dict[str, int]) -> None:
    """Raise QueueFull (the caller's transaction rolls back) if a queue is over its max_depth; `limits`
    as read by queue_lock_limited, whose row locks the caller holds."""
    if not limits:
        return
    cur = await conn.execute(Q["queue_depth"], {"queues": list(limits)})
    depth: dict[str, int] = {name: n for name, n in await cur.fetchall()}
    for name, max_depth in limits.items():
        if depth[name] > max_depth:
            raise QueueFull(name, max_depth)


async def insert_now(conn: Conn, jobs: Sequence[NewJob], now: datetime) -> list[Job] | None:
    """job_insert_many_now on an autocommit connection: the jobs, or None when a queue of the batch
    has a max_depth (nothing was inserted; the caller takes the locked path)."""
    params = _insert_params(jobs, now)
    params["queues"] = sorted({j.queue for j in jobs})
    cur = await conn.execute(Q["job_insert_many_now"], params)
    row = await cur.fetchone()
    assert row is not None
    ids, limited, _ = row
    if limited:
        return None
    if len(ids) == len(jobs):  # no dedupe conflict: sorted ids are in input order
        return [
            queued_job(job_id, j, j.run_at or now, now) for job_id, j in zip(sorted(ids), jobs, strict=True)
        ]
    # A dedupe key met an unfinished job. Only a single job gets here (see job_insert_many), and its
    # key's holder may finish before we read it: resolve like insert, in a transaction of its own.
    async with conn.transaction():
        results: list[Job | None] = [None]
        await resolve_dedupes(conn, jobs, [0], results, now)
        await conn.execute(Q["jobs_notify"])
    return [job for job in results if job is not None]


async def resolve_dedupes(
    conn: Conn, jobs: Sequence[NewJob], pending: list[int], results: list[Job | None], now: datetime
) -> None:
    """Fill results[i], for each input i in `pending` whose dedupe key an unfinished job held at insert:
    that job, or the one inserted once the holder has finished. Raises StoreError if the key keeps
    changing hands."""
    for _ in range(_DEDUPE_ROUNDS):
        if not pending:
            return
        pending = await _dedupe_round(conn, jobs, pending, results, now)
    if pending:
        raise StoreError("enqueue kept racing with jobs finishing under the same dedupe keys; try again")


async def _dedupe_round(
    conn: Conn, jobs: Sequence[NewJob], pending: list[int], results: list[Job | None], now: datetime
) -> list[int]:
    keys = sorted({key for i in pending if (key := jobs[i].dedupe_key) is not None})
    cur = await conn.execute(Q["job_get_unfinished_by_dedupe_key"], {"keys": keys})
    existing = {job.dedupe_key: job for job in map(job_from_row, await cur.fetchall())}
    missing = [i for i in pending if jobs[i].dedupe_key not in existing]
    for i in pending:
        if jobs[i].dedupe_key in existing:
            results[i] = existing[jobs[i].dedupe_key]
    if not missing:
        return []
    # the holder finished between our insert and the read: the key is free now, insert again
    retry = [jobs[i] for i in missing]
    params = _insert_params(retry, now)
    cur = await conn.execute(Q["job_insert_many"], params)
    by_key = {key: job_id for job_id, key in await cur.fetchall()}
    still: list[int] = []
    for i in missing:
        key = jobs[i].dedupe_key
        if key in by_key:
            results[i] = queued_job(by_key[key], jobs[i], jobs[i].run_at or now, now)
        else:
            still.append(i)
    return still
