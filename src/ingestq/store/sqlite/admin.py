"""What a person (CLI, API, dashboard) does to jobs, queues and workers on SQLite: cancel, retry, position,
purge, prune, stats, queue limits, the worker list. Functions over the Engine, run on the store's thread
like its methods; the worker's hot path (insert, claim, outcomes, heartbeats) stays in engine.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import apsw

from ingestq.errors import InvalidJobState, JobNotFound
from ingestq.model.job import (
    FINISHED_STATES,
    FinishedBucket,
    Job,
    JobState,
    QueueConfig,
    QueueStats,
    Retention,
    WorkerInfo,
)
from ingestq.store.sqlite import rows
from ingestq.store.sqlite.engine import Engine, Q
from ingestq.store.sqlite.rows import dumps, job_from_row, ts


def _get_or_raise(cur: apsw.Cursor, job_id: int) -> Job:
    found = cur.execute(Q["job_get"], {"id": job_id}).fetchall()
    if not found:
        raise JobNotFound(job_id)
    return job_from_row(found[0])


def job_cancel(engine: Engine, job_id: int, now: datetime) -> Job:
    with engine.write() as cur:
        job = _get_or_raise(cur, job_id)
        if job.state is JobState.QUEUED:
            cur.execute(Q["job_cancel_queued"], {"id": job_id, "now": ts(now)})
            engine.count_finished(cur, Counter({(job.queue, JobState.CANCELLED.value): 1}))
            if job.document_id is not None:
                engine.settle_documents(cur, [job_id], now)
        elif job.state is JobState.RUNNING:
            cur.execute(Q["job_cancel_running"], {"id": job_id})
        else:
            return job
        return _get_or_raise(cur, job_id)


def job_retry(engine: Engine, job_id: int, now: datetime) -> Job:
    with engine.write() as cur:
        job = _get_or_raise(cur, job_id)
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
        cur.execute(Q["job_retry"], {"id": job_id, "now": ts(now)})
        engine.count_finished(cur, Counter({(job.queue, job.state.value): 1}), removed=True)
        if job.document_id is not None:
            cur.execute(Q["document_pending_after_retry"], {"id": job_id, "now": ts(now)})
        return _get_or_raise(cur, job_id)


def job_position(engine: Engine, job_id: int, now: datetime) -> int | None:
    job = engine.job_get(job_id)
    if job is None or job.state is not JobState.QUEUED:
        return None
    params = {
        "queue": job.queue,
        "now": ts(now),
        "priority": job.priority,
        "run_at": ts(job.run_at),
        "id": job.id,
    }
    ahead = int(engine.read(Q["job_position"], params)[0][0])
    # A job not yet due is not among the counted rows: it comes after every due one.
    return ahead if job.run_at <= now else ahead + 1


def job_purge(
    engine: Engine, states: Sequence[JobState], queue: str | None, finished_before: datetime | None
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
    with engine.write() as cur:
        gone = Counter((q, s) for q, s in cur.execute(Q["job_purge"], params))
        engine.count_finished(cur, gone, removed=True)
    return gone.total()


def job_purge_count(
    engine: Engine, states: Sequence[JobState], queue: str | None, finished_before: datetime | None
) -> int:
    total = 0
    for state in dict.fromkeys(JobState(s) for s in states):
        if state not in FINISHED_STATES:
            continue  # job_purge refuses these; a count of them is 0
        params = {
            "state": state.value,
            "queue": queue,
            "finished_before": float("inf") if finished_before is None else ts(finished_before),
        }
        ((count,),) = engine.read(Q["job_purge_count"], params)
        total += int(count)
    return total


# Most buckets one call counts; finishes beyond the last are counted in it (it is open-ended).
MAX_BUCKETS = 10_000


def job_finished_buckets(engine: Engine, since: datetime, width: float) -> list[FinishedBucket]:
    since_ts = ts(since)
    with engine.snapshot():
        newest = [
            engine.read(Q["job_finished_last"], {"state": state})[0][0] for state in ("succeeded", "failed")
        ]
        stamps = [t for t in newest if t is not None and t >= since_ts]
        if not stamps:
            return []
        buckets = min(int((max(stamps) - since_ts) // width) + 1, MAX_BUCKETS)
        found = engine.read(
            Q["job_finished_buckets"], {"since": since_ts, "width": float(width), "buckets": buckets}
        )
    return [FinishedBucket(int(index), JobState(state), int(n)) for index, state, n in found if n]


def job_prune(engine: Engine, retention: Retention, now: datetime, limit: int) -> int:
    now_ts = ts(now)
    deleted = 0
    with engine.write() as cur:
        for state, keep in (
            (JobState.SUCCEEDED, retention.succeeded),
            (JobState.FAILED, retention.failed),
            (JobState.CANCELLED, retention.cancelled),
        ):
            if keep is None or keep <= 0 or deleted >= limit:  # 0 or less: keep forever
                continue
            params = {"state": state.value, "before": now_ts - keep, "limit": limit - deleted}
            gone = Counter((q, s) for q, s in cur.execute(Q["job_prune"], params))
            engine.count_finished(cur, gone, removed=True)
            deleted += gone.total()
    return deleted


def stats(engine: Engine, now: datetime) -> list[QueueStats]:
    with engine.snapshot():
        return _stats(engine, ts(now))


def _stats(engine: Engine, now_ts: float) -> list[QueueStats]:
    counts: dict[str, dict[JobState, int]] = {name: {} for (name,) in engine.read(Q["queue_names"])}
    for queue, n in engine.read(Q["stats_queued"]):
        counts.setdefault(queue, {})[JobState.QUEUED] = n
    for queue, state, n in engine.read(Q["stats_finished"]):
        counts.setdefault(queue, {})[JobState(state)] = n
    running: dict[str, dict[str, int]] = {}
    for queue, owner, n in engine.read(Q["stats_running_by_worker"]):
        running.setdefault(queue, {})[owner] = n
        per_queue = counts.setdefault(queue, {})
        per_queue[JobState.RUNNING] = per_queue.get(JobState.RUNNING, 0) + n
    oldest = {q: now_ts - run_at for q, run_at in engine.read(Q["stats_oldest_due"], {"now": now_ts})}
    return [
        QueueStats(
            queue=q,
            counts={s: counts[q].get(s, 0) for s in JobState},
            oldest_queued_age=oldest.get(q),
            running_by_worker=running.get(q, {}),
        )
        for q in sorted(counts)
    ]


def queue_configure(engine: Engine, config: QueueConfig) -> QueueConfig:
    with engine.write() as cur:
        row = cur.execute(
            Q["queue_configure"], {"name": config.name, "max_depth": config.max_depth}
        ).fetchone()
    return _queue(row)


def queue_pause(engine: Engine, name: str, paused: bool, now: datetime) -> QueueConfig:
    with engine.write() as cur:
        row = cur.execute(
            Q["queue_pause"], {"name": name, "paused_at": rows.ts(now) if paused else None}
        ).fetchone()
    return _queue(row)


def queue_list(engine: Engine) -> list[QueueConfig]:
    return [_queue(row) for row in engine.read(Q["queue_list"])]


def _queue(row: Any) -> QueueConfig:
    name, max_depth, paused_at = row
    return QueueConfig(
        name=name, max_depth=max_depth, paused_at=None if paused_at is None else rows.dt(paused_at)
    )


def worker_deregister(engine: Engine, worker_id: str) -> None:
    with engine.write() as cur:
        cur.execute(Q["worker_deregister"], {"worker_id": worker_id})


def worker_list(engine: Engine) -> list[WorkerInfo]:
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
            lease_seconds=lease,
        )
        for wid, host, pid, queues, conc, started, beat, running, unavailable, lease in engine.read(
            Q["worker_list"]
        )
    ]
