"""PostgresStore: the Store protocol on PostgreSQL (psycopg 3, an async pool, SKIP LOCKED, LISTEN/NOTIFY).

Each operation is one statement or one short transaction, and batches travel as arrays (unnest), so
the round trips per batch stay constant whatever its size. Statements inside a transaction are sent in
pipeline mode: the client does not wait for one result before sending the next statement.

This module holds the protocol methods; beside it: pool.py (the pool and its error map), statements.py
(the statements, and the claim and finish assembled from them), insert.py (the insert and dedupe
protocol), index.py (the IndexStore half), rows.py (row to Job), migrator.py, listener.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ingestq.errors import InvalidJobState, JobNotFound, StoreError
from ingestq.model.job import (
    ERROR_HISTORY_LIMIT,
    FINISHED_STATES,
    ClaimRequest,
    FinishedBucket,
    HeartbeatReply,
    Job,
    JobFilter,
    JobState,
    NewJob,
    Outcome,
    OutcomeKind,
    Progress,
    QueueConfig,
    QueueStats,
    Retention,
    WorkerBeat,
    WorkerInfo,
)
from ingestq.settings import Settings
from ingestq.store.common import CANCELLED_BEFORE_INDEXED, LEASE_LOST, claim_order_key
from ingestq.store.postgres import insert, migrator
from ingestq.store.postgres.index import PostgresIndex
from ingestq.store.postgres.listener import Listener, ListenerWaiter
from ingestq.store.postgres.pool import POOL_TIMEOUT_S, Conn
from ingestq.store.postgres.rows import job_from_row, progress_to_json
from ingestq.store.postgres.statements import FINISH_AND_CLAIM, Q, claim_statement, finish_params
from ingestq.store.postgres.webhooks import PostgresWebhooks

_REQUEUING = (OutcomeKind.RETRY, OutcomeKind.RELEASED)


class PostgresStore(PostgresWebhooks, PostgresIndex):
    backend = "postgresql"

    def __init__(self, url: str, pool_max_size: int = 10, pool_timeout: float = POOL_TIMEOUT_S) -> None:
        super().__init__(url, pool_max_size, pool_timeout)
        self._listener = Listener(self._url, self._kwargs)

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresStore:
        return cls(settings.database_url, pool_max_size=settings.pg_pool_max_size)

    async def close(self) -> None:
        await self._listener.close()
        await super().close()

    # --- schema ----------------------------------------------------------------------------------------
    async def migrate(self) -> list[int]:
        async with self._connection() as conn:
            return await migrator.migrate(conn, Q)

    async def schema_version(self) -> tuple[int, int]:
        async with self._connection() as conn:
            return await migrator.schema_version(conn, Q)

    async def queue_schema_missing(self) -> list[int]:
        async with self._connection() as conn:
            return await migrator.queue_schema_missing(conn, Q)

    # --- jobs ------------------------------------------------------------------------------------------
    async def job_insert_many(self, jobs: Sequence[NewJob], now: datetime) -> list[Job]:
        if not jobs:
            return []
        # One statement, autocommitted, when it is atomic by itself: a single job, or a batch without
        # dedupe keys (whose conflicts need follow-up statements that must share the transaction).
        if len(jobs) == 1 or all(j.dedupe_key is None for j in jobs):
            async with self._connection() as conn:
                done = await insert.insert_now(conn, jobs, now)
            if done is not None:
                return done
        async with self._connection() as conn, conn.transaction():
            return await insert.insert(conn, jobs, now)

    async def job_insert_bulk(self, template: NewJob, payloads: Sequence[str], now: datetime) -> list[int]:
        if not payloads:
            return []
        if template.dedupe_key is not None:
            raise ValueError("job_insert_bulk takes no dedupe_key (use job_insert_many)")
        params: dict[str, Any] = {
            "queue": template.queue,
            "kind": template.kind,
            "priority": template.priority,
            "run_at": template.run_at or now,
            "max_attempts": template.max_attempts,
            "document_id": template.document_id,
            "now": now,
            "payloads": f"[{','.join(payloads)}]",
            "locked": False,
        }
        async with self._connection() as conn:
            cur = await conn.execute(Q["job_insert_bulk"], params)
            row = await cur.fetchone()
        assert row is not None
        ids, limited, _ = row
        if not limited:
            return sorted(ids)  # identity values grow in input order
        # a bounded queue: insert under its row lock, then count (see queue_lock_limited)
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(Q["queue_lock_limited"], {"queues": [template.queue]})
            limits: dict[str, int] = dict(await cur.fetchall())
            cur = await conn.execute(Q["job_insert_bulk"], {**params, "locked": True})
            row = await cur.fetchone()
            assert row is not None
            await insert.check_depths(conn, limits)
        return sorted(row[0])

    async def job_get(self, job_id: int) -> Job | None:
        row = await self._fetchone(Q["job_get"], {"id": job_id})
        return job_from_row(row) if row else None

    async def job_list(self, flt: JobFilter) -> list[Job]:
        params = {
            "states": [s.value for s in flt.states] if flt.states is not None else None,
            "queues": list(flt.queues) if flt.queues is not None else None,
            "kinds": list(flt.kinds) if flt.kinds is not None else None,
            "document_id": flt.document_id,
            "before_id": flt.before_id,
            "limit": max(flt.limit, 0),
        }
        async with self._connection() as conn:
            async with conn.pipeline(), conn.transaction():
                await conn.execute(Q["planner_defaults"])
                cur = await conn.execute(Q["job_list"], params)
            return [job_from_row(r) for r in await cur.fetchall()]

    async def job_claim(self, req: ClaimRequest, now: datetime) -> list[Job]:
        if req.limit <= 0 or req.queues == () or req.kinds == ():
            return []
        rows = await self._fetchall(*claim_statement(req, now))
        return sorted((job_from_row(r) for r in rows), key=claim_order_key)

    async def job_finish_and_claim(
        self, outcomes: Sequence[Outcome], claim: ClaimRequest | None, now: datetime
    ) -> tuple[set[int], list[Job]]:
        if claim is None or claim.limit <= 0 or claim.queues == () or claim.kinds == ():
            return await self.job_finish_many(outcomes, now), []
        if not outcomes:
            return set(), await self.job_claim(claim, now)
        claim_query, params = claim_statement(claim, now)
        params.update(finish_params(outcomes, now))
        if not any(o.kind in _REQUEUING for o in outcomes):
            # The common case (jobs succeeded or failed for good): one prepared statement.
            rows = await self._fetchall(FINISH_AND_CLAIM[claim_query], params)
            applied = {r[0] for r in rows if r[1] is None}
            return applied, sorted((job_from_row(r) for r in rows if r[1] is not None), key=claim_order_key)
        queries = [claim_query, Q["job_finish_many"], Q["jobs_notify"]]  # notified at commit
        # One simple query holding several statements runs as one implicit transaction, in one round
        # trip (client-side binding): measurably cheaper on a busy server than a pipelined BEGIN ..
        # COMMIT. The claim goes first so it cannot pick a job this call re-queues.
        async with self._connection() as conn:
            cur = psycopg.AsyncClientCursor(conn)
            await cur.execute(";\n".join(queries), params)
            rows = await cur.fetchall()
            cur.nextset()
            applied = {r[0] for r in await cur.fetchall()}
        return applied, sorted((job_from_row(r) for r in rows), key=claim_order_key)

    async def job_finish_many(self, outcomes: Sequence[Outcome], now: datetime) -> set[int]:
        if not outcomes:
            return set()
        params = finish_params(outcomes, now)
        if not any(o.kind in _REQUEUING for o in outcomes):
            return {r[0] for r in await self._fetchall(Q["job_finish_many"], params)}
        async with self._connection() as conn, conn.pipeline():
            cur = await conn.execute(Q["job_finish_many"], params)
            # a separate autocommit statement after the update: the update commits first
            await conn.execute(Q["jobs_notify"])
            return {r[0] for r in await cur.fetchall()}

    async def job_progress(
        self, job_id: int, lease_owner: str, attempt: int, progress: Progress, now: datetime
    ) -> bool:
        params = {
            "id": job_id,
            "lease_owner": lease_owner,
            "attempt": attempt,
            "progress": progress_to_json(progress),
        }
        async with self._connection() as conn:
            cur = await conn.execute(Q["job_progress"], params)
            return cur.rowcount == 1

    async def job_cancel(self, job_id: int, now: datetime) -> Job:
        async with self._connection() as conn, conn.transaction():
            row = await (await conn.execute(Q["job_cancel"], {"id": job_id, "now": now})).fetchone()
            if row is not None:
                cancelled = job_from_row(row)
                if cancelled.state is JobState.CANCELLED and cancelled.document_id is not None:
                    await self._settle_documents(conn, [cancelled.id], now)
                return cancelled
        job = await self.job_get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def job_retry(self, job_id: int, now: datetime) -> Job:
        try:
            async with self._connection() as conn, conn.transaction():
                row = await (await conn.execute(Q["job_retry"], {"id": job_id, "now": now})).fetchone()
                retried = None if row is None else job_from_row(row)
                if retried is not None and retried.document_id is not None:
                    await self._document_pending_again(conn, job_id, now)
        except pg_errors.UniqueViolation:
            raise InvalidJobState(
                f"job {job_id} cannot be retried: another unfinished job holds its dedupe key"
            ) from None
        if retried is not None:
            await self._notify()
            return retried
        job = await self.job_get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        raise InvalidJobState(
            f"job {job_id} is {job.state.value}: only failed or cancelled jobs can be retried"
        )

    async def job_rescue_stale(self, now: datetime) -> list[int]:
        params = {"now": now, "message": LEASE_LOST, "history": ERROR_HISTORY_LIMIT}
        async with self._connection() as conn, conn.transaction():
            moved = await (await conn.execute(Q["job_rescue_stale"], params)).fetchall()
            ended = [job_id for job_id, state in moved if state != JobState.QUEUED.value]
            if ended:
                await self._settle_documents(conn, ended, now)
        if any(state == JobState.QUEUED.value for _, state in moved):
            await self._notify()
        return sorted(job_id for job_id, _ in moved)

    async def _settle_documents(self, conn: Conn, job_ids: Sequence[int], now: datetime) -> None:
        """Documents of jobs that just ended without their finalizer leave `pending`, in the caller's
        transaction (see documents_settle_after_job)."""
        params = {"ids": list(job_ids), "cancelled": CANCELLED_BEFORE_INDEXED, "now": now}
        await _without_index_schema_ok(conn, Q["documents_settle_after_job"], params)

    async def _document_pending_again(self, conn: Conn, job_id: int, now: datetime) -> None:
        await _without_index_schema_ok(conn, Q["document_pending_after_retry"], {"id": job_id, "now": now})

    async def job_position(self, job_id: int, now: datetime) -> int | None:
        row = await self._fetchone(Q["job_position"], {"id": job_id, "now": now})
        return int(row[0]) if row else None

    async def job_purge(
        self, states: Sequence[JobState], queue: str | None, finished_before: datetime | None
    ) -> int:
        bad = [JobState(s).value for s in states if JobState(s) not in FINISHED_STATES]
        if bad:
            raise InvalidJobState(
                f"cannot purge {', '.join(bad)} jobs: only succeeded, failed and cancelled jobs are purged"
            )
        if not states:
            return 0
        params = {
            "states": [JobState(s).value for s in states],
            "queue": queue,
            "finished_before": finished_before,
        }
        async with self._connection() as conn:
            cur = await conn.execute(Q["job_purge"], params)
            return cur.rowcount

    async def job_purge_count(
        self, states: Sequence[JobState], queue: str | None, finished_before: datetime | None
    ) -> int:
        if not states:
            return 0
        params = {
            "states": [JobState(s).value for s in states],
            "queue": queue,
            "finished_before": finished_before,
        }
        row = await self._fetchone(Q["job_purge_count"], params)
        return int(row[0]) if row is not None else 0

    async def job_finished_buckets(self, since: datetime, width: float) -> list[FinishedBucket]:
        rows = await self._fetchall(Q["job_finished_buckets"], {"since": since, "width": float(width)})
        return [FinishedBucket(int(index), JobState(state), int(n)) for index, state, n in rows]

    async def job_prune(self, retention: Retention, now: datetime, limit: int = 10_000) -> int:
        def cutoff(seconds: float | None) -> datetime | None:
            # None or <= 0: keep that state forever (Settings documents 0 as "forever")
            return None if seconds is None or seconds <= 0 else now - timedelta(seconds=seconds)

        params = {
            "succeeded_before": cutoff(retention.succeeded),
            "failed_before": cutoff(retention.failed),
            "cancelled_before": cutoff(retention.cancelled),
            "limit": limit,
        }
        async with self._connection() as conn, conn.pipeline() as pipeline:
            cur = await conn.execute(Q["job_prune"], params)
            # pruning runs periodically: a good time to fold the finished-counts log
            await conn.execute(Q["finished_counts_compact"])
            await pipeline.sync()
            return cur.rowcount

    async def stats(self, now: datetime) -> list[QueueStats]:
        async with self._connection() as conn, conn.pipeline():
            unfinished_cur = await conn.execute(Q["stats_unfinished"])
            finished_cur = await conn.execute(Q["stats_finished"])
            oldest_cur = await conn.execute(Q["stats_oldest_due"], {"now": now})
            running_cur = await conn.execute(Q["stats_running_by_worker"])
            counts_rows = await unfinished_cur.fetchall() + await finished_cur.fetchall()
            oldest_rows = await oldest_cur.fetchall()
            running_rows = await running_cur.fetchall()
        names = {r[0] for r in counts_rows}
        counts: dict[str, dict[JobState, int]] = {n: dict.fromkeys(JobState, 0) for n in names}
        for queue, state, n in counts_rows:
            counts[queue][JobState(state)] = int(n)
        oldest = {queue: max((now - run_at).total_seconds(), 0.0) for queue, run_at in oldest_rows}
        running: dict[str, dict[str, int]] = {n: {} for n in names}
        for queue, owner, n in running_rows:
            running[queue][owner] = int(n)
        return [
            QueueStats(
                queue=n, counts=counts[n], oldest_queued_age=oldest.get(n), running_by_worker=running[n]
            )
            for n in sorted(names)
        ]

    # --- queues, workers, periodic jobs ---------------------------------------------------------------
    async def queue_configure(self, config: QueueConfig) -> QueueConfig:
        (row,) = await self._fetchall(
            Q["queue_configure"], {"name": config.name, "max_depth": config.max_depth}
        )
        return QueueConfig(*row)

    async def queue_pause(self, name: str, paused: bool, now: datetime) -> QueueConfig:
        (row,) = await self._fetchall(Q["queue_pause"], {"name": name, "paused_at": now if paused else None})
        return QueueConfig(*row)

    async def queue_list(self) -> list[QueueConfig]:
        return [QueueConfig(*row) for row in await self._fetchall(Q["queue_list"], {})]

    async def worker_heartbeat(self, beat: WorkerBeat, now: datetime) -> HeartbeatReply:
        params = {
            "worker_id": beat.worker_id,
            "hostname": beat.hostname,
            "pid": beat.pid,
            "queues": list(beat.queues) if beat.queues is not None else None,
            "concurrency": beat.concurrency,
            "lease_seconds": beat.lease_seconds,
            "now": now,
            "unavailable": beat.unavailable,
            "ids": list(beat.job_ids),
            "lease_expires_at": now + timedelta(seconds=beat.lease_seconds),
        }
        async with self._urgent_connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute(Q["worker_upsert"], params)
            held_cur = await conn.execute(Q["job_extend_leases"], params)
            await conn.execute(Q["worker_delete_silent"], params)
            paused_cur = await conn.execute(Q["queue_paused"])
            held = await held_cur.fetchall()
            paused = frozenset(name for (name,) in await paused_cur.fetchall())
        owned = {job_id for job_id, _ in held}
        return HeartbeatReply(
            lost=frozenset(set(beat.job_ids) - owned),
            cancel_requested=frozenset(job_id for job_id, flag in held if flag),
            paused_queues=paused,
        )

    async def worker_deregister(self, worker_id: str) -> None:
        async with self._connection() as conn:
            await conn.execute(Q["worker_deregister"], {"worker_id": worker_id})

    async def worker_list(self, now: datetime) -> list[WorkerInfo]:
        rows = await self._fetchall(Q["worker_list"], {})
        return [
            WorkerInfo(
                worker_id=worker_id,
                hostname=hostname,
                pid=pid,
                queues=tuple(queues) if queues is not None else None,
                concurrency=concurrency,
                started_at=started_at,
                heartbeat_at=heartbeat_at,
                running=int(running),
                unavailable=unavailable,
                lease_seconds=lease_seconds,
            )
            for (
                worker_id,
                hostname,
                pid,
                queues,
                concurrency,
                started_at,
                heartbeat_at,
                running,
                unavailable,
                lease_seconds,
            ) in rows
        ]

    async def periodic_enqueue(self, name: str, slot: datetime, job: NewJob, now: datetime) -> Job | None:
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(Q["periodic_claim_slot"], {"name": name, "slot": slot})
            if await cur.fetchone() is None:
                return None
            (inserted,) = await insert.insert(conn, [job], now)
            await conn.execute(Q["periodic_set_job"], {"name": name, "job_id": inserted.id})
            return inserted

    # --- wake-ups --------------------------------------------------------------------------------------
    async def wait_for_jobs(self, max_wait: float) -> None:
        self._check_open()
        await self._listener.wait(max_wait)

    async def job_watch(self, after_id: int, finished_since: datetime, limit: int) -> list[Job]:
        params = {"after_id": after_id, "finished_since": finished_since, "limit": max(limit, 0)}
        return [job_from_row(r) for r in await self._fetchall(Q["job_watch"], params)]

    def change_waiter(self) -> ListenerWaiter:
        return ListenerWaiter(Listener(self._url, self._kwargs))

    async def start_listening(self, max_wait: float = 10.0) -> None:
        """Start the LISTEN connection now and wait until it listens (wait_for_jobs starts it lazily), so
        that no notification can fall between this call and a claim that follows it. Outside the Store
        protocol: tests use it to listen before they enqueue."""
        if not await self._listener.wait_ready(max_wait):
            raise StoreError(f"cannot LISTEN on PostgreSQL at {self._where} within {max_wait:g}s")

    @property
    def listener(self) -> Listener:
        return self._listener


async def _without_index_schema_ok(conn: Conn, sql: str, params: dict[str, Any]) -> None:
    """Run a documents statement from a queue operation. Without pgvector the documents table does not
    exist and there is nothing to update; the savepoint keeps the queue operation's transaction usable."""
    try:
        async with conn.transaction():
            await conn.execute(sql, params)
    except pg_errors.UndefinedTable:
        pass
