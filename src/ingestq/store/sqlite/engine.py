"""The synchronous half of the SQLite store: every statement, on one apsw connection.

`SqliteStore` runs each method of `Engine` on its own single thread, so the connection is never shared
and the event loop never blocks. Writes run in `BEGIN IMMEDIATE` transactions: taking the write lock up
front makes a busy database wait (busy_timeout) instead of failing on a read-to-write upgrade.

Engine holds the transaction plumbing (write, snapshot, read, errors), which the modules beside it use
too, and the worker's operations: insert, claim, outcomes, progress, rescue, heartbeats. What a person
does (cancel, retry, purge, stats...) is in admin.py, migrations in migrator.py, documents in
index_engine.py.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import apsw

from ingestq.errors import QueueFull, SchemaError, StoreError, WriterBusy
from ingestq.model.job import (
    ERROR_HISTORY_LIMIT,
    ClaimRequest,
    HeartbeatReply,
    Job,
    JobFilter,
    JobState,
    NewJob,
    Outcome,
    OutcomeKind,
    Progress,
    WorkerBeat,
)
from ingestq.store.common import (
    CANCELLED_BEFORE_INDEXED,
    LEASE_LOST,
    NOT_INITIALISED,
    claim_order_key,
    queued_job,
)
from ingestq.store.queries import load_queries
from ingestq.store.sqlite import rows
from ingestq.store.sqlite.rows import claimed_job, dt, dumps, job_from_row, ts

PACKAGE = "ingestq.store.sqlite"


def _with_claims(queries: dict[str, str]) -> dict[str, str]:
    """The claim statements, spliced from their pieces in queries.sql (see the comment there)."""
    update = queries["claim_update"]
    exclusions = {"": "", "_excluding": "  " + queries["claim_exclude"] + "\n"}
    for where in ("", "_queue", "_queues"):
        for excluding, exclude in exclusions.items():
            candidates = queries["claim_candidates" + where].replace("  {exclude}\n", exclude)
            capped = queries["claim_capped"].replace("{candidates}", candidates.replace("{columns}", _CAPPED))
            plain = candidates.replace("{columns}", "id")
            queries["job_claim" + where + excluding] = update.replace("{candidates}", plain)
            queries["job_claim" + where + excluding + "_capped"] = update.replace("{candidates}", capped)
    return queries


_CAPPED = "id, kind, priority, run_at"  # what claim_capped reads of each candidate
Q = _with_claims(load_queries(PACKAGE))

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


class Engine:
    def __init__(self, conn: apsw.Connection, label: str) -> None:
        self.conn = conn
        self.label = label  # the file, for messages

    def close(self) -> None:
        self.conn.close()

    # --- plumbing ---------------------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[apsw.Cursor]:
        cur = self.conn.cursor()
        with self.errors():
            cur.execute("BEGIN IMMEDIATE")
        try:
            with self.errors():
                yield cur
        except BaseException:
            if not self.conn.in_transaction:
                raise
            self.conn.execute("ROLLBACK")
            raise
        with self.errors():
            cur.execute("COMMIT")

    @contextmanager
    def errors(self) -> Iterator[None]:
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
    def snapshot(self) -> Iterator[None]:
        """Several reads that must agree with each other: one read transaction."""
        with self.errors():
            self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def read(self, sql: str, params: Any = None) -> list[Any]:
        with self.errors():
            return list(self.conn.execute(sql, params))

    def read_jobs(self, sql: str, params: Any) -> list[Job]:
        with self.errors():
            return [job_from_row(r) for r in self.conn.execute(sql, params)]

    # --- jobs: insert and read --------------------------------------------------------------------------
    def job_insert_many(self, jobs: Sequence[NewJob], now: datetime) -> list[Job]:
        if not jobs:
            return []
        with self.write() as cur:
            return self.insert_jobs(cur, jobs, now)

    def insert_jobs(self, cur: apsw.Cursor, jobs: Sequence[NewJob], now: datetime) -> list[Job]:
        """job_insert_many inside the caller's write transaction (QueueFull: the caller rolls back)."""
        now_ts = ts(now)
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
        with self.write() as cur:
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
        found = self.read_jobs(Q["job_get"], {"id": job_id})
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
        with self.errors():
            cursor = self.conn.execute(sql, params)
            return [job_from_row(r) for r in cursor]

    def job_watch(self, after_id: int, finished_since: datetime, limit: int) -> list[Job]:
        params = {"after_id": after_id, "finished_since": ts(finished_since), "limit": max(limit, 0)}
        return self.read_jobs(Q["job_watch"], params)

    # --- jobs: claim and outcomes -----------------------------------------------------------------------
    def job_claim(self, req: ClaimRequest, now: datetime) -> list[Job]:
        if req.limit <= 0 or req.queues == () or req.kinds == ():
            return []
        with self.write() as cur:
            return self._claim(cur, req, now)

    def job_finish_and_claim(
        self, outcomes: Sequence[Outcome], req: ClaimRequest | None, now: datetime
    ) -> tuple[set[int], list[Job]]:
        with self.write() as cur:
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
        variant = ""
        if req.exclude_queues:  # paused queues: the statement with claim_exclude spliced in
            variant = "_excluding"
            params["paused"] = dumps(list(req.exclude_queues))
        if req.kind_limits:
            variant += "_capped"
            params["caps"] = dumps(dict(req.kind_limits))
        if req.queues is None:
            sql = Q["job_claim" + variant]
        elif len(req.queues) == 1:
            sql, params["queue"] = Q["job_claim_queue" + variant], req.queues[0]
        else:
            sql, params["queues"] = Q["job_claim_queues" + variant], _json_list(req.queues)
        owner, lease, started = req.worker_id, dt(lease_until), dt(now_ts)
        claimed = [claimed_job(r, owner, lease, started) for r in cur.execute(sql, params)]
        claimed.sort(key=claim_order_key)
        return claimed

    def job_finish_many(self, outcomes: Sequence[Outcome], now: datetime) -> set[int]:
        with self.write() as cur:
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
        self.count_finished(cur, finished)
        return applied

    def count_finished(
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
        with self.write() as cur:
            return bool(cur.execute(Q["job_progress"], params).fetchall())

    def job_rescue_stale(self, now: datetime) -> tuple[list[int], bool]:
        """(ids moved, whether any went back to the queue)."""
        params = {"now": ts(now), "error": LEASE_LOST, "limit": ERROR_HISTORY_LIMIT}
        with self.write() as cur:
            moved: list[Any] = cur.execute(Q["job_rescue_stale"], params).fetchall()
            ended = [job_id for job_id, state, _ in moved if state != "queued"]
            self.count_finished(
                cur, Counter((queue, state) for _, state, queue in moved if state != "queued")
            )
            if ended:
                self.settle_documents(cur, ended, now)
        return sorted(r[0] for r in moved), any(r[1] == "queued" for r in moved)

    def settle_documents(self, cur: apsw.Cursor, job_ids: Sequence[int], now: datetime) -> None:
        """Documents of jobs that just ended without their finalizer leave `pending` (see
        documents_settle_after_job)."""
        params = {"ids": dumps(list(job_ids)), "cancelled": CANCELLED_BEFORE_INDEXED, "now": ts(now)}
        cur.execute(Q["documents_settle_after_job"], params)

    # --- workers and periodic jobs -------------------------------------------------------------------
    def worker_heartbeat(self, beat: WorkerBeat, now: datetime) -> HeartbeatReply:
        now_ts = ts(now)
        with self.write() as cur:
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
                    Q["job_extend_leases"],
                    {
                        "job_ids": dumps(list(beat.job_ids)),
                        "worker_id": beat.worker_id,
                        "lease_until": now_ts + beat.lease_seconds,
                    },
                ).fetchall()
            cur.execute(Q["worker_delete_silent"], {"now": now_ts})
            paused = frozenset(name for (name,) in cur.execute(Q["queue_paused"]))
        owned = {job_id for job_id, _ in held}
        return HeartbeatReply(
            lost=frozenset(set(beat.job_ids) - owned),
            cancel_requested=frozenset(job_id for job_id, cancel in held if cancel),
            paused_queues=paused,
        )

    def periodic_enqueue(self, name: str, slot: datetime, job: NewJob, now: datetime) -> Job | None:
        with self.write() as cur:
            if not cur.execute(Q["periodic_claim_slot"], {"name": name, "slot": ts(slot)}).fetchall():
                return None
            # Same transaction: if the insert fails (QueueFull) the slot is not consumed either.
            inserted, fresh = self._insert_one(cur, job, ts(now))
            if fresh:
                self._check_depths(cur, {job.queue})
            return inserted


def _new_job(job_id: int, job: NewJob, run_at: float, now_ts: float) -> Job:
    """The Job just inserted, from what was written: times as the store will read them back."""
    created = dt(now_ts)
    return queued_job(job_id, job, created if run_at == now_ts else dt(run_at), created)
