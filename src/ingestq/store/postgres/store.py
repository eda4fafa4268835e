"""PostgresStore: the Store protocol on PostgreSQL (psycopg 3, an async pool, SKIP LOCKED, LISTEN/NOTIFY).

Each operation is one statement or one short transaction, and batches travel as arrays (unnest), so
the round trips per batch stay constant whatever its size. Statements inside a transaction are sent in
pipeline mode: the client does not wait for one result before sending the next statement.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingestq.errors import (
    FeatureUnavailable,
    InvalidJobState,
    JobNotFound,
    QueueFull,
    SchemaError,
    StoreError,
)
from ingestq.model.job import (
    ERROR_HISTORY_LIMIT,
    FINISHED_STATES,
    ClaimRequest,
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
from ingestq.model.kinds import INGEST_JOB_KIND
from ingestq.settings import Settings
from ingestq.store.postgres import migrator
from ingestq.store.postgres.connect import (
    check_idle_connection,
    connect_kwargs,
    first_line,
    normalise_url,
    store_error,
    where,
)
from ingestq.store.postgres.index import PostgresIndexMixin
from ingestq.store.postgres.listener import Listener
from ingestq.store.postgres.rows import claim_order_key, job_from_row, progress_to_json
from ingestq.store.queries import load_queries

Q = load_queries("ingestq.store.postgres")

Conn = psycopg.AsyncConnection[tuple[Any, ...]]

POOL_TIMEOUT_S = 15.0
"""How long an operation waits for a pooled connection (e.g. while the server restarts) before it
raises StoreError; the worker treats that as a transient failure and tries again."""
RECONNECT_TIMEOUT_S = 5.0
RESCUE_MESSAGE = "lease expired: worker lost"
_DEDUPE_ROUNDS = 3
_REQUEUING = (OutcomeKind.RETRY, OutcomeKind.RELEASED)
NOT_INITIALISED = "database is not initialised: run `ingestq db migrate`"
# Tables of migration 2, which needs pgvector: on a server without it the queue works and these are
# missing, which deserves a better message than "not initialised".
INDEX_TABLES = frozenset(
    {
        "ingestq_collections",
        "ingestq_blobs",
        "ingestq_documents",
        "ingestq_chunks",
        "ingestq_embed_cache",
        "ingestq_rate_buckets",
    }
)
NO_INDEX_SCHEMA = (
    "documents and search are not set up in this database: it needs the pgvector extension "
    "(install it on the server, then run `ingestq db migrate`); the queue works without it"
)


class PostgresStore(PostgresIndexMixin):
    backend = "postgresql"

    def __init__(self, url: str, pool_max_size: int = 10, pool_timeout: float = POOL_TIMEOUT_S) -> None:
        self._url = normalise_url(url)
        self._pool_timeout = pool_timeout
        self._kwargs = connect_kwargs(self._url)
        self._where = where(self._url)
        self._pool_max_size = pool_max_size
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._listener = Listener(self._url, self._kwargs)

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresStore:
        return cls(settings.database_url, pool_max_size=settings.pg_pool_max_size)

    # --- lifecycle and schema ------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        # One direct connection first: it fails fast with libpq's own reason, which a pool would only
        # log while retrying until its timeout.
        try:
            probe = await psycopg.AsyncConnection.connect(self._url, autocommit=True, **self._kwargs)
        except (psycopg.Error, OSError) as exc:
            raise store_error(self._url, exc) from None
        await probe.close()
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._url,
            min_size=1,
            max_size=self._pool_max_size,
            kwargs={"autocommit": True, **self._kwargs},
            # Connections broken by a server restart or pg_terminate_backend are replaced at checkout
            # instead of failing a call (see check_idle_connection: no round trip while healthy).
            check=check_idle_connection,
            timeout=self._pool_timeout,
            # psycopg_pool retries a failed connect with a doubling delay until reconnect_timeout (5
            # minutes by default), so after a long outage its next attempt could come minutes after the
            # server is back. Giving up after a few seconds resets the backoff: the next checkout starts
            # a fresh attempt at once, so a worker recovers within seconds of a restart.
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            open=False,
            name="ingestq",
        )
        try:
            await pool.open(wait=True, timeout=self._pool_timeout)
        except PoolTimeout as exc:
            await pool.close()
            raise store_error(self._url, exc) from None
        self._pool = pool

    async def close(self) -> None:
        await self._listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        if self._pool is None:
            raise StoreError("the PostgreSQL store is not open (call `await store.open()` first)")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise StoreError(
                f"PostgreSQL at {self._where} is unavailable: no connection within {self._pool_timeout:g}s"
            ) from None
        except pg_errors.UndefinedTable as exc:
            missing = re.search(r'relation "(\w+)"', exc.diag.message_primary or "")
            if missing and missing.group(1) in INDEX_TABLES:
                raise FeatureUnavailable(NO_INDEX_SCHEMA) from None
            raise SchemaError(NOT_INITIALISED) from None
        except psycopg.DataError as exc:
            # a value PostgreSQL cannot store (an integer out of range, a NUL character in text)
            raise ValueError(f"PostgreSQL refused a value: {first_line(str(exc))}") from None
        except psycopg.OperationalError as exc:
            raise StoreError(f"PostgreSQL at {self._where}: {first_line(str(exc))}") from exc

    async def _fetchall(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def _fetchone(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        async with self._connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def migrate(self) -> list[int]:
        async with self._connection() as conn:
            return await migrator.migrate(conn, Q)

    async def schema_version(self) -> tuple[int, int]:
        async with self._connection() as conn:
            return await migrator.schema_version(conn, Q)

    # --- jobs ------------------------------------------------------------------------------------------
    async def job_insert_many(self, jobs: Sequence[NewJob], now: datetime) -> list[Job]:
        if not jobs:
            return []
        # One statement, autocommitted, when it is atomic by itself: a single job, or a batch without
        # dedupe keys (whose conflicts need follow-up statements that must share the transaction).
        if len(jobs) == 1 or all(j.dedupe_key is None for j in jobs):
            async with self._connection() as conn:
                done = await _insert_now(conn, jobs, now)
            if done is not None:
                return done
        async with self._connection() as conn, conn.transaction():
            return await _insert(conn, jobs, now)

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
            await _check_depths(conn, limits)
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
                if cancelled.state is JobState.CANCELLED and cancelled.kind == INGEST_JOB_KIND:
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
                if row is not None and row[2] == INGEST_JOB_KIND:
                    await self._document_pending_again(conn, job_id, now)
        except pg_errors.UniqueViolation:
            raise InvalidJobState(
                f"job {job_id} cannot be retried: another unfinished job holds its dedupe key"
            ) from None
        if row is not None:
            await self._notify()
            return job_from_row(row)
        job = await self.job_get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        raise InvalidJobState(
            f"job {job_id} is {job.state.value}: only failed or cancelled jobs can be retried"
        )

    async def job_rescue_stale(self, now: datetime) -> list[int]:
        params = {"now": now, "message": RESCUE_MESSAGE, "history": ERROR_HISTORY_LIMIT}
        async with self._connection() as conn, conn.transaction():
            moved = await (await conn.execute(Q["job_rescue_stale"], params)).fetchall()
            ended = [job_id for job_id, state in moved if state != JobState.QUEUED.value]
            if ended:
                await self._settle_documents(conn, ended, now)
        if any(state == JobState.QUEUED.value for _, state in moved):
            await self._notify()
        return sorted(job_id for job_id, _ in moved)

    async def _notify(self) -> None:
        async with self._connection() as conn:
            await conn.execute(Q["jobs_notify"])

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
    async def queue_configure(self, config: QueueConfig) -> None:
        async with self._connection() as conn:
            await conn.execute(Q["queue_configure"], {"name": config.name, "max_depth": config.max_depth})

    async def queue_list(self) -> list[QueueConfig]:
        rows = await self._fetchall(Q["queue_list"], {})
        return [QueueConfig(name=name, max_depth=max_depth) for name, max_depth in rows]

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
        async with self._connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute(Q["worker_upsert"], params)
            held_cur = await conn.execute(Q["job_extend_leases"], params)
            await conn.execute(Q["worker_delete_silent"], params)
            held = await held_cur.fetchall()
        owned = {job_id for job_id, _ in held}
        return HeartbeatReply(
            lost=frozenset(set(beat.job_ids) - owned),
            cancel_requested=frozenset(job_id for job_id, flag in held if flag),
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
            ) in rows
        ]

    async def periodic_enqueue(self, name: str, slot: datetime, job: NewJob, now: datetime) -> Job | None:
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(Q["periodic_claim_slot"], {"name": name, "slot": slot})
            if await cur.fetchone() is None:
                return None
            (inserted,) = await _insert(conn, [job], now)
            await conn.execute(Q["periodic_set_job"], {"name": name, "job_id": inserted.id})
            return inserted

    # --- wake-ups --------------------------------------------------------------------------------------
    async def wait_for_jobs(self, max_wait: float) -> None:
        if self._pool is None:
            raise StoreError("the PostgreSQL store is not open (call `await store.open()` first)")
        await self._listener.wait(max_wait)

    async def start_listening(self, max_wait: float = 10.0) -> None:
        """Start the LISTEN connection now and wait until it listens (wait_for_jobs starts it lazily).
        A worker calls this before its first claim, so no notification can fall between the two."""
        if not await self._listener.wait_ready(max_wait):
            raise StoreError(f"cannot LISTEN on PostgreSQL at {self._where} within {max_wait:g}s")

    @property
    def listener(self) -> Listener:
        return self._listener


def claim_statement(req: ClaimRequest, now: datetime) -> tuple[str, dict[str, Any]]:
    """The claim query for `req` (the one that walks the right index) and its parameters."""
    params: dict[str, Any] = {
        "now": now,
        "limit": req.limit,
        "worker_id": req.worker_id,
        "lease_expires_at": now + timedelta(seconds=req.lease_seconds),
        "kinds": list(req.kinds) if req.kinds is not None else None,
        "caps": json.dumps(dict(req.kind_limits)) if req.kind_limits else None,
    }
    if req.queues is None:
        return Q["job_claim"], params
    if len(req.queues) == 1:
        params["queue"] = req.queues[0]
        return Q["job_claim_queue"], params
    params["queues"] = list(req.queues)
    return Q["job_claim_queues"], params


FINISH_AND_CLAIM = {
    Q[name]: Q["job_finish_and_claim"].replace("{finish}", Q["job_finish_many"]).replace("{claim}", Q[name])
    for name in ("job_claim", "job_claim_queue", "job_claim_queues")
}


def finish_params(outcomes: Sequence[Outcome], now: datetime) -> dict[str, Any]:
    """Parameters of job_finish_many (also run by the index store inside its commit transaction): the
    outcomes as one JSON document, keys left out being NULL in SQL."""
    rows: list[dict[str, Any]] = []
    for o in outcomes:
        row: dict[str, Any] = {
            "id": o.job_id,
            "lease_owner": o.lease_owner,
            "attempt": o.attempt,
            "kind": o.kind.value,
        }
        if o.kind is OutcomeKind.SUCCEEDED and o.result is not None:
            row["result"] = o.result
        if o.error is not None:
            row["error"] = o.error
        if o.run_at is not None:
            row["run_at"] = o.run_at.isoformat()
        rows.append(row)
    return {"outcomes": _dump_json(rows, "result"), "now": now, "history": ERROR_HISTORY_LIMIT}


# --- insert ---------------------------------------------------------------------------------------------


def _dump_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job {what} is not JSON-serialisable: {exc}") from None


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
    return {"jobs": _dump_json(rows, "payload"), "now": now}


def _new_job(job_id: int, new: NewJob, now: datetime) -> Job:
    # positional, in Job's field order: built once per enqueued job, and keywords cost a third more
    return Job(
        job_id,
        new.queue,
        new.kind,
        new.payload,
        new.priority,
        JobState.QUEUED,
        new.run_at or now,
        0,  # attempt
        new.max_attempts,
        new.dedupe_key,
        None,  # lease_owner
        None,  # lease_expires_at
        False,  # cancel_requested
        None,  # progress
        None,  # result
        None,  # last_error
        (),  # errors
        new.document_id,
        now,  # created_at
        None,  # started_at
        None,  # finished_at
    )


async def _insert(conn: Conn, jobs: Sequence[NewJob], now: datetime) -> list[Job]:
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
            results[i] = _new_job(next(plain), j, now)
        elif j.dedupe_key in by_key:
            results[i] = _new_job(by_key[j.dedupe_key], j, now)
        else:
            pending.append(i)
    # inputs met an unfinished job holding their key (or an earlier input of this batch did)
    for _ in range(_DEDUPE_ROUNDS):
        if not pending:
            break
        pending = await _resolve_dedupes(conn, jobs, pending, results, now)
    if pending:
        raise StoreError("enqueue kept racing with jobs finishing under the same dedupe keys; try again")

    if limited:
        await _check_depths(conn, dict(limited))
    return [job for job in results if job is not None]


async def _check_depths(conn: Conn, limits: dict[str, int]) -> None:
    """Raise QueueFull (the caller's transaction rolls back) if a queue is over its max_depth; `limits`
    as read by queue_lock_limited, whose row locks the caller holds."""
    if not limits:
        return
    cur = await conn.execute(Q["queue_depth_many"], {"queues": list(limits)})
    depth: dict[str, int] = {name: n for name, n in await cur.fetchall()}
    for name, max_depth in limits.items():
        if depth[name] > max_depth:
            raise QueueFull(name, max_depth)


async def _insert_now(conn: Conn, jobs: Sequence[NewJob], now: datetime) -> list[Job] | None:
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
        return [_new_job(job_id, j, now) for job_id, j in zip(sorted(ids), jobs, strict=True)]
    # A dedupe key met an unfinished job. Only a single job gets here (see job_insert_many), and its
    # key's holder may finish before we read it: resolve like _insert, in a transaction of its own.
    async with conn.transaction():
        results: list[Job | None] = [None]
        pending = [0]
        for _ in range(_DEDUPE_ROUNDS):
            if not pending:
                break
            pending = await _resolve_dedupes(conn, jobs, pending, results, now)
        if pending:
            raise StoreError("enqueue kept racing with jobs finishing under the same dedupe keys; try again")
        await conn.execute(Q["jobs_notify"])
    return [job for job in results if job is not None]


async def _resolve_dedupes(
    conn: Conn, jobs: Sequence[NewJob], pending: list[int], results: list[Job | None], now: datetime
) -> list[int]:
    keys = sorted({key for i in pending if (key := jobs[i].dedupe_key) is not None})
    cur = await conn.execute(Q["job_get_by_dedupe_keys"], {"keys": keys})
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
            results[i] = _new_job(by_key[key], jobs[i], now)
        else:
            still.append(i)
    return still
