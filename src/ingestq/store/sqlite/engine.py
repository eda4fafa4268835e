"""The synchronous half of the SQLite store: every statement, on one apsw connection.

`SqliteStore` runs each method of `Engine` on its own single thread, so the connection is never shared
and the event loop never blocks. Writes run in `BEGIN IMMEDIATE` transactions: taking the write lock up
front makes a busy database wait (busy_timeout) instead of failing on a read-to-write upgrade.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import apsw

from ingestq.errors import InvalidJobState, JobNotFound, QueueFull, SchemaError, StoreError, WriterBusy
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
from ingestq.model.kinds import CANCELLED_BEFORE_INDEXED, INGEST_JOB_KIND
from ingestq.store.queries import load_migrations, load_queries
from ingestq.store.sqlite import rows
from ingestq.store.sqlite.rows import claimed_job, dt, dumps, job_from_row, ts

PACKAGE = "ingestq.store.sqlite"


def _with_claims(queries: dict[str, str]) -> dict[str, str]:
    """The claim statements, spliced from their pieces in queries.sql (see the comment there)."""
    update = queries["claim_update"]
    for where in ("", "_queue", "_queues"):
        candidates = queries["claim_candidates" + where]
        capped = queries["claim_capped"].replace("{candidates}", candidates.replace("{columns}", _CAPPED))
        plain = candidates.replace("{columns}", "id")
        queries["job_claim" + where] = update.replace("{candidates}", plain)
        queries["job_claim" + where + "_capped"] = update.replace("{candidates}", capped)
    return queries


_CAPPED = "id, kind, priority, run_at"  # what claim_capped reads of each candidate
Q = _with_claims(load_queries(PACKAGE))
MIGRATIONS = load_migrations(PACKAGE)
LATEST_VERSION = MIGRATIONS[-1][0]
LEASE_LOST_ERROR = "lease expired: worker lost"
NOT_INITIALISED = "database is not initialised: run `ingestq db migrate`"

_OUTCOME_QUERY = {  # one statement per kind and batch, like job_succeed
    OutcomeKind.RETRY: "job_retry_later",
    OutcomeKind.FAILED: "job_fail",
    OutcomeKind.CANCELLED: "job_mark_cancelled",
    OutcomeKind.RELEASED: "job_release",
}
# Outcomes that finish a job, and the state they finish it in (for ingestq_finished_counts).
_FINISHING = {
    OutcomeKind.SUCCEEDED: JobState.SUCCEEDED.value,
    OutcomeKind.FAILED: JobState.FAILED.value,
    OutcomeKind.CANCELLED: JobState.CANCELLED.value,
}
_SUCCEEDED = OutcomeKind.SUCCEEDED  # a module constant: an enum member read off its class costs ~0.4 us
_SUCCEEDED_STATE = JobState.SUCCEEDED.value
_MISSING_TABLE = re.compile(r"no such table: (ingestq_\w+)")


def _json_list(values: Sequence[str] | None) -> str | None:
    return None if values is None else dumps(list(values))


def _claim_order(job: Job) -> tuple[int, datetime, int]:
    return (-job.priority, job.run_at, job.id)


class Engine:
    def __init__(self, conn: apsw.Connection, label: str) -> None:
        self.conn = conn
        self.label = label  # the file, for messages

    def close(self) -> None:
        self.conn.close()

    # --- plumbing ---------------------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[apsw.Cursor]:
        cur = self.conn.cursor()
        with self._errors():
            cur.execute("BEGIN IMMEDIATE")
        try:
            with self._errors():
                yield cur
        except BaseException:
            if not self.conn.in_transaction:
                raise
            self.conn.execute("ROLLBACK")
            raise
        with self._errors():
            cur.execute("COMMIT")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate apsw errors a user can cause into one-line ingestq errors."""
        try:
            yield
        except apsw.SQLError as exc:
            if _MISSING_TABLE.search(str(exc)):
                raise SchemaError(NOT_INITIALISED) from None
            raise
        except apsw.BusyError:
            raise WriterBusy(f"{self.label} stayed locked by another writer past the busy timeout") from None
        except apsw.NotADBError:
            raise StoreError(f"{self.label} is not a SQLite database") from None
        except (apsw.FullError, apsw.ReadOnlyError, apsw.IOError, apsw.CorruptError) as exc:
            raise StoreError(f"cannot use {self.label}: {str(exc).splitlines()[0]}") from None

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Several reads that must agree with each other: one read transaction."""
        with self._errors():
            self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def _read(self, sql: str, params: Any = None) -> list[Any]:
        with self._errors():
            return list(self.conn.execute(sql, params))

    def _read_jobs(self, sql: str, params: Any) -> list[Job]:
        with self._errors():
            return [job_from_row(r) for r in self.conn.execute(sql, params)]

    # --- schema -----------------------------------------------------------------------------------------
    def _applied_version(self) -> int:
        if not self._read(Q["migrations_table_exists"])[0][0]:
            return 0
        return int(self._read(Q["schema_version"])[0][0])

    def _check_not_newer(self, version: int) -> None:
        if version > LATEST_VERSION:
            raise SchemaError(
                f"database schema version {version} is newer than this ingestq ({LATEST_VERSION}); "
                "upgrade ingestq"
            )

    def schema_version(self) -> tuple[int, int]:
        version = self._applied_version()
        self._check_not_newer(version)
        return version, LATEST_VERSION

    def migrate(self) -> list[int]:
        applied: list[int] = []
        for version, name, sql in MIGRATIONS:
            # One transaction per migration; the version is re-read under the write lock so that two
            # processes migrating at once apply each migration exactly once.
            with self._write() as cur:
                cur.execute(Q["migrations_table"])
                found: list[Any] = cur.execute(Q["schema_version"]).fetchall()
                current = int(found[0][0])
                self._check_not_newer(current)
                if current >= version:
                    continue
                cur.execute(sql)
                cur.execute(
                    Q["migration_record"], {"version": version, "name": name, "applied_at": time.time()}
                )
                applied.append(version)
        if applied:
            with self._errors():
                self.conn.execute("ANALYZE sqlite_schema")  # reload the planner statistics just written
        else:
            self._check_not_newer(self._applied_version())
        return applied

    # --- jobs: insert and read --------------------------------------------------------------------------
    def job_insert_many(self, jobs: Sequence[NewJob], now: datetime) -> list[Job]:
        if not jobs:
            return []
        now_ts = ts(now)
        with self._write() as cur:
            if any(job.dedupe_key is not None for job in jobs):
                out: list[Job] = []
                grown: set[str] = set()
                for job in jobs:
                    inserted, fresh = self._insert_one(cur, job, now_ts)
                    out.append(inserted)
                    if fresh:
                        grown.add(job.queue)
            else:
                out = self._insert_plain(cur, jobs, now_ts)
                grown = {job.queue for job in jobs}
            self._check_depths(cur, grown)
        return out

    def _insert_plain(self, cur: apsw.Cursor, jobs: Sequence[NewJob], now_ts: float) -> list[Job]:
        """The bulk path (no dedupe keys): one executemany, so the per-row cost stays in C."""
        run_ats = [now_ts if job.run_at is None else ts(job.run_at) for job in jobs]
        params = [
            (
                job.queue,
                job.kind,
                dumps(job.payload, "payload"),
                job.priority,
                run_at,
                job.max_attempts,
                None,
                job.document_id,
                now_ts,
            )
            for job, run_at in zip(jobs, run_ats, strict=True)
        ]
        before = self.conn.total_changes()
        cur.executemany(Q["job_insert_bulk"], params)
        last = self.conn.last_insert_rowid()
        if self.conn.total_changes() - before != len(jobs):
            raise StoreError(f"bulk insert into {self.label} wrote an unexpected number of rows")
        first = last - len(jobs) + 1
        return [
            _new_job(first + n, job, run_at, now_ts)
            for n, (job, run_at) in enumerate(zip(jobs, run_ats, strict=True))
        ]

    def job_insert_bulk(self, template: NewJob, payloads: Sequence[str], now: datetime) -> list[int]:
        """Jobs that differ only by payload (already JSON text): one executemany, ids derived from
        last_insert_rowid() (see job_insert_bulk in queries.sql), no Job objects."""
        if not payloads:
            return []
        if template.dedupe_key is not None:
            raise ValueError("job_insert_bulk takes no dedupe_key (use job_insert_many)")
        t = template
        now_ts = ts(now)
        run_at = now_ts if t.run_at is None else ts(t.run_at)
        params = [
            (t.queue, t.kind, p, t.priority, run_at, t.max_attempts, None, t.document_id, now_ts)
            for p in payloads
        ]
        with self._write() as cur:
            before = self.conn.total_changes()
            cur.executemany(Q["job_insert_bulk"], params)
            last = self.conn.last_insert_rowid()
            if self.conn.total_changes() - before != len(params):
                raise StoreError(f"bulk insert into {self.label} wrote an unexpected number of rows")
            self._check_depths(cur, {t.queue})
        return list(range(last - len(params) + 1, last + 1))

    def _insert_one(self, cur: apsw.Cursor, job: NewJob, now_ts: float) -> tuple[Job, bool]:
        """(the job, True) once inserted, or (the unfinished job holding its dedupe key, False)."""
        if job.dedupe_key is not None:
            existing = cur.execute(Q["job_get_unfinished_by_dedupe_key"], {"dedupe_key": job.dedupe_key})
            for row in existing.fetchall():
                return job_from_row(row), False
        run_at = now_ts if job.run_at is None else ts(job.run_at)
        params = (
            job.queue,
            job.kind,
            dumps(job.payload, "payload"),
            job.priority,
            run_at,
            job.max_attempts,
            job.dedupe_key,
            job.document_id,
            now_ts,
        )
        for (job_id,) in cur.execute(Q["job_insert"], params):
            return _new_job(job_id, job, run_at, now_ts), True
        raise AssertionError("INSERT ... RETURNING returned no row")

    def _check_depths(self, cur: apsw.Cursor, grown: set[str]) -> None:
        """Raise QueueFull (the caller's transaction rolls back) if a bounded queue that just grew is over."""
        bounded: list[Any] = cur.execute(Q["queue_max_depths"]).fetchall()
        for name, max_depth in bounded:
            if name in grown:
                depth: list[Any] = cur.execute(Q["queue_depth"], {"queue": name}).fetchall()
                if depth[0][0] > max_depth:
                    raise QueueFull(name, max_depth)

    def job_get(self, job_id: int) -> Job | None:
        found = self._read_jobs(Q["job_get"], {"id": job_id})
        return found[0] if found else None

    def job_list(self, flt: JobFilter) -> list[Job]:
        states = None if flt.states is None else sorted({JobState(s).value for s in flt.states})
        if states == []:
            return []
        # Pick the statement whose index reads the fewest rows; the generic one walks ids newest first.
        if flt.document_id is not None:
            sql = Q["job_list_document"]
        elif states is not None and len(states) == 1 and states[0] != JobState.SUCCEEDED.value:
            sql = Q[f"job_list_{states[0]}"]
        else:
            sql = Q["job_list"]
        params = {
            "states": _json_list(states),
            "queues": _json_list(flt.queues),
            "kinds": _json_list(flt.kinds),
            "document_id": flt.document_id,
            "before_id": flt.before_id,
            "limit": flt.limit,
        }
        with self._errors():
            cursor = self.conn.execute(sql, params)
            return [job_from_row(r) for r in cursor]

    # --- jobs: claim and outcomes -----------------------------------------------------------------------
    def job_claim(self, req: ClaimRequest, now: datetime) -> list[Job]:
        if req.limit <= 0 or req.queues == () or req.kinds == ():
            return []
        with self._write() as cur:
            return self._claim(cur, req, now)

    def job_finish_and_claim(
        self, outcomes: Sequence[Outcome], req: ClaimRequest | None, now: datetime
    ) -> tuple[set[int], list[Job]]:
        with self._write() as cur:
            # Claim first: the jobs being finished are running, so the claim cannot pick them, and a
            # job re-queued by a RETRY/RELEASED outcome is left for the next claim (anyone's).
            claimed: list[Job] = []
            if req is not None and req.limit > 0 and req.queues != () and req.kinds != ():
                claimed = self._claim(cur, req, now)
            return self.apply_outcomes(cur, outcomes, now), claimed

    def _claim(self, cur: apsw.Cursor, req: ClaimRequest, now: datetime) -> list[Job]:
        now_ts = ts(now)
        lease_until = now_ts + req.lease_seconds
        params: dict[str, Any] = {
            "worker_id": req.worker_id,
            "lease_until": lease_until,
            "now": now_ts,
            "kinds": _json_list(req.kinds),
            "limit": req.limit,
        }
        capped = "_capped" if req.kind_limits else ""
        if capped:
            params["caps"] = dumps(dict(req.kind_limits or {}))
        if req.queues is None:
            sql = Q["job_claim" + capped]
        elif len(req.queues) == 1:
            sql, params["queue"] = Q["job_claim_queue" + capped], req.queues[0]
        else:
            sql, params["queues"] = Q["job_claim_queues" + capped], _json_list(req.queues)
        owner, lease, started = req.worker_id, dt(lease_until), dt(now_ts)
        claimed = [claimed_job(r, owner, lease, started) for r in cur.execute(sql, params)]
        claimed.sort(key=_claim_order)
        return claimed

    def job_finish_many(self, outcomes: Sequence[Outcome], now: datetime) -> set[int]:
        with self._write() as cur:
            return self.apply_outcomes(cur, outcomes, now)

    def apply_outcomes(self, cur: apsw.Cursor, outcomes: Sequence[Outcome], now: datetime) -> set[int]:
        """The fenced outcome statements, in the caller's write transaction (the index store commits a
        document version with its job's outcome through this). One statement per kind of outcome: an
        UPDATE ... RETURNING that changes `state` has a fixed cost per execution (see job_succeed)."""
        now_ts = ts(now)
        succeeded: list[list[Any]] = []
        others: dict[OutcomeKind, list[list[Any]]] = {}
        for o in outcomes:
            if o.kind is _SUCCEEDED:
                result = None if o.result is None else dumps(o.result)
                succeeded.append([o.job_id, o.lease_owner, o.attempt, result])
            elif o.kind is OutcomeKind.RETRY:
                run_at = now_ts if o.run_at is None else ts(o.run_at)
                others.setdefault(o.kind, []).append(
                    [o.job_id, o.lease_owner, o.attempt, o.error or "error", run_at]
                )
            elif o.kind is OutcomeKind.FAILED:
                others.setdefault(o.kind, []).append([o.job_id, o.lease_owner, o.attempt, o.error or "error"])
            else:
                others.setdefault(o.kind, []).append([o.job_id, o.lease_owner, o.attempt, o.error])
        applied: set[int] = set()
        finished: Counter[tuple[str, str]] = Counter()
        if succeeded:
            bulk = {"outcomes": dumps(succeeded), "now": now_ts}
            done: list[Any] = cur.execute(Q["job_succeed"], bulk).fetchall()
            applied.update([r[0] for r in done])
            for queue, n in Counter([r[1] for r in done]).items():
                finished[queue, _SUCCEEDED_STATE] += n
        for kind, batch in others.items():
            params = {"outcomes": dumps(batch), "now": now_ts, "limit": ERROR_HISTORY_LIMIT}
            rows_back: list[Any] = cur.execute(Q[_OUTCOME_QUERY[kind]], params).fetchall()
            applied.update([r[0] for r in rows_back])
            if kind in _FINISHING:
                for queue, n in Counter([r[1] for r in rows_back]).items():
                    finished[queue, _FINISHING[kind]] += n
        self._count_finished(cur, finished)
        return applied

    def _count_finished(
        self, cur: apsw.Cursor, deltas: Counter[tuple[str, str]], removed: bool = False
    ) -> None:
        """Keep ingestq_finished_counts in step, in the caller's transaction."""
        sign = -1 if removed else 1
        if deltas:
            cur.executemany(Q["finished_counts_add"], [(q, s, sign * n) for (q, s), n in deltas.items() if n])

    def job_progress(self, job_id: int, lease_owner: str, attempt: int, progress: Progress) -> bool:
        params = {
            "id": job_id,
            "owner": lease_owner,
            "attempt": attempt,
            "progress": rows.progress_json(progress),
        }
        with self._write() as cur:
            return bool(cur.execute(Q["job_progress"], params).fetchall())

    def job_rescue_stale(self, now: datetime) -> tuple[list[int], bool]:
        """(ids moved, whether any went back to the queue)."""
        params = {"now": ts(now), "error": LEASE_LOST_ERROR, "limit": ERROR_HISTORY_LIMIT}
        with self._write() as cur:
            moved: list[Any] = cur.execute(Q["job_rescue_stale"], params).fetchall()
            ended = [job_id for job_id, state, _ in moved if state != "queued"]
            self._count_finished(
                cur, Counter((queue, state) for _, state, queue in moved if state != "queued")
            )
            if ended:
                self._settle_documents(cur, ended, now)
        return sorted(r[0] for r in moved), any(r[1] == "queued" for r in moved)

    def _settle_documents(self, cur: apsw.Cursor, job_ids: Sequence[int], now: datetime) -> None:
        """Documents of ingestion jobs that just ended without their finalizer leave `pending`."""
        params = {
            "ids": dumps(list(job_ids)),
            "kind": INGEST_JOB_KIND,
            "cancelled": CANCELLED_BEFORE_INDEXED,
            "now": ts(now),
        }
        cur.execute(Q["documents_settle_after_job"], params)

    # --- jobs: what a person does -----------------------------------------------------------------------
    def _get_or_raise(self, cur: apsw.Cursor, job_id: int) -> Job:
        found = cur.execute(Q["job_get"], {"id": job_id}).fetchall()
        if not found:
            raise JobNotFound(job_id)
        return job_from_row(found[0])

    def job_cancel(self, job_id: int, now: datetime) -> Job:
        with self._write() as cur:
            job = self._get_or_raise(cur, job_id)
            if job.state is JobState.QUEUED:
                cur.execute(Q["job_cancel_queued"], {"id": job_id, "now": ts(now)})
                self._count_finished(cur, Counter({(job.queue, JobState.CANCELLED.value): 1}))
                if job.kind == INGEST_JOB_KIND:
                    self._settle_documents(cur, [job_id], now)
            elif job.state is JobState.RUNNING:
                cur.execute(Q["job_cancel_running"], {"id": job_id})
            else:
                return job
            return self._get_or_raise(cur, job_id)

    def job_retry(self, job_id: int, now: datetime) -> Job:
        with self._write() as cur:
            job = self._get_or_raise(cur, job_id)
            if job.state not in (JobState.FAILED, JobState.CANCELLED):
                raise InvalidJobState(
                    f"job {job_id} is {job.state.value}: only failed or cancelled jobs can be retried"
                )
            if job.dedupe_key is not None:
                twin = cur.execute(Q["job_get_unfinished_by_dedupe_key"], {"dedupe_key": job.dedupe_key})
                for row in twin.fetchall():
                    raise InvalidJobState(
                        f"job {job_id} cannot be retried: job {row[0]} with the same dedupe key "
                        f"{job.dedupe_key!r} is {row[5]}"
                    )
            cur.execute(Q["job_retry_by_person"], {"id": job_id, "now": ts(now)})
            self._count_finished(cur, Counter({(job.queue, job.state.value): 1}), removed=True)
            if job.kind == INGEST_JOB_KIND:
                params = {"id": job_id, "kind": INGEST_JOB_KIND, "now": ts(now)}
                cur.execute(Q["document_pending_after_retry"], params)
            return self._get_or_raise(cur, job_id)

    def job_position(self, job_id: int, now: datetime) -> int | None:
        job = self.job_get(job_id)
        if job is None or job.state is not JobState.QUEUED:
            return None
        params = {
            "queue": job.queue,
            "now": ts(now),
            "priority": job.priority,
            "run_at": ts(job.run_at),
            "id": job.id,
        }
        ahead = int(self._read(Q["job_position"], params)[0][0])
        # A job not yet due is not among the counted rows: it comes after every due one.
        return ahead if job.run_at <= now else ahead + 1

    def job_purge(
        self, states: Sequence[JobState], queue: str | None, finished_before: datetime | None
    ) -> int:
        bad = [s for s in states if JobState(s) not in FINISHED_STATES]
        if bad:
            raise InvalidJobState(
                f"cannot purge {', '.join(JobState(s).value for s in bad)} jobs: only finished jobs "
                "(succeeded, failed, cancelled) can be purged"
            )
        if not states:
            return 0
        params = {
            "states": dumps([JobState(s).value for s in states]),
            "queue": queue,
            "finished_before": None if finished_before is None else ts(finished_before),
        }
        with self._write() as cur:
            gone = Counter((q, s) for q, s in cur.execute(Q["job_purge"], params))
            self._count_finished(cur, gone, removed=True)
        return gone.total()

    def job_prune(self, retention: Retention, now: datetime, limit: int) -> int:
        now_ts = ts(now)
        deleted = 0
        with self._write() as cur:
            for state, keep in (
                (JobState.SUCCEEDED, retention.succeeded),
                (JobState.FAILED, retention.failed),
                (JobState.CANCELLED, retention.cancelled),
            ):
                if keep is None or keep <= 0 or deleted >= limit:  # 0 or less: keep forever
                    continue
                params = {"state": state.value, "before": now_ts - keep, "limit": limit - deleted}
                gone = Counter((q, s) for q, s in cur.execute(Q["job_prune"], params))
                self._count_finished(cur, gone, removed=True)
                deleted += gone.total()
        return deleted

    def stats(self, now: datetime) -> list[QueueStats]:
        with self._snapshot():
            return self._stats(ts(now))

    def _stats(self, now_ts: float) -> list[QueueStats]:
        counts: dict[str, dict[JobState, int]] = {name: {} for (name,) in self._read(Q["queue_names"])}
        for queue, n in self._read(Q["stats_queued"]):
            counts.setdefault(queue, {})[JobState.QUEUED] = n
        for queue, state, n in self._read(Q["stats_finished"]):
            counts.setdefault(queue, {})[JobState(state)] = n
        running: dict[str, dict[str, int]] = {}
        for queue, owner, n in self._read(Q["stats_running_by_worker"]):
            running.setdefault(queue, {})[owner] = n
            per_queue = counts.setdefault(queue, {})
            per_queue[JobState.RUNNING] = per_queue.get(JobState.RUNNING, 0) + n
        oldest = {q: now_ts - run_at for q, run_at in self._read(Q["stats_oldest_due"], {"now": now_ts})}
        return [
            QueueStats(
                queue=q,
                counts={s: counts[q].get(s, 0) for s in JobState},
                oldest_queued_age=oldest.get(q),
                running_by_worker=running.get(q, {}),
            )
            for q in sorted(counts)
        ]

    # --- queues, workers, periodic ----------------------------------------------------------------------
    def queue_configure(self, config: QueueConfig) -> None:
        with self._write() as cur:
            cur.execute(Q["queue_configure"], {"name": config.name, "max_depth": config.max_depth})

    def queue_list(self) -> list[QueueConfig]:
        return [QueueConfig(name=n, max_depth=d) for n, d in self._read(Q["queue_list"])]

    def worker_heartbeat(self, beat: WorkerBeat, now: datetime) -> HeartbeatReply:
        now_ts = ts(now)
        with self._write() as cur:
            cur.execute(
                Q["worker_upsert"],
                {
                    "worker_id": beat.worker_id,
                    "hostname": beat.hostname,
                    "pid": beat.pid,
                    "queues": _json_list(beat.queues),
                    "concurrency": beat.concurrency,
                    "lease_seconds": beat.lease_seconds,
                    "now": now_ts,
                    "unavailable": beat.unavailable,
                },
            )
            held: list[Any] = []
            if beat.job_ids:
                held = cur.execute(
                    Q["worker_extend_leases"],
                    {
                        "job_ids": dumps(list(beat.job_ids)),
                        "worker_id": beat.worker_id,
                        "lease_until": now_ts + beat.lease_seconds,
                    },
                ).fetchall()
            cur.execute(Q["worker_delete_silent"], {"now": now_ts})
        owned = {job_id for job_id, _ in held}
        return HeartbeatReply(
            lost=frozenset(set(beat.job_ids) - owned),
            cancel_requested=frozenset(job_id for job_id, cancel in held if cancel),
        )

    def worker_deregister(self, worker_id: str) -> None:
        with self._write() as cur:
            cur.execute(Q["worker_deregister"], {"worker_id": worker_id})

    def worker_list(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(
                worker_id=wid,
                hostname=host,
                pid=pid,
                queues=None if queues is None else tuple(rows.loads_list(queues)),
                concurrency=conc,
                started_at=rows.dt(started),
                heartbeat_at=rows.dt(beat),
                running=running,
                unavailable=unavailable,
            )
            for wid, host, pid, queues, conc, started, beat, running, unavailable in self._read(
                Q["worker_list"]
            )
        ]

    def periodic_enqueue(self, name: str, slot: datetime, job: NewJob, now: datetime) -> Job | None:
        with self._write() as cur:
            if not cur.execute(Q["periodic_claim_slot"], {"name": name, "slot": ts(slot)}).fetchall():
                return None
            # Same transaction: if the insert fails (QueueFull) the slot is not consumed either.
            inserted, fresh = self._insert_one(cur, job, ts(now))
            if fresh:
                self._check_depths(cur, {job.queue})
            return inserted


def _new_job(job_id: int, job: NewJob, run_at: float, now_ts: float) -> Job:
    """The Job just inserted, built from what was written (no read back)."""
    created = rows.dt(now_ts)
    return Job(
        id=job_id,
        queue=job.queue,
        kind=job.kind,
        payload=job.payload,
        priority=job.priority,
        state=JobState.QUEUED,
        run_at=created if run_at == now_ts else rows.dt(run_at),
        attempt=0,
        max_attempts=job.max_attempts,
        dedupe_key=job.dedupe_key,
        lease_owner=None,
        lease_expires_at=None,
        cancel_requested=False,
        progress=None,
        result=None,
        last_error=None,
        errors=(),
        document_id=job.document_id,
        created_at=created,
        started_at=None,
        finished_at=None,
    )
