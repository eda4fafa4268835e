"""A worker's Prometheus metrics (`ingestq worker --http-port`): what it started and finished, how long
jobs ran and waited, what it holds, leases lost, and for ingestion the chunks embedded and reused.

Labels are queue, kind and outcome only: never a job or document id (one series per id would grow
without bound). Built only when the worker serves metrics, so a worker without them pays nothing per
job; with them, a few counter and histogram updates per job.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingestq.model.job import Job, Outcome

# seconds: no-op jobs take microseconds, documents take minutes
DURATION_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.started = Counter(
            "ingestq_worker_jobs_started", "Jobs this worker started", ["queue", "kind"], registry=r
        )
        self.finished = Counter(
            "ingestq_worker_jobs_finished",
            "Jobs this worker finished, by outcome (succeeded, retry, failed, cancelled, released)",
            ["queue", "kind", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "ingestq_worker_job_duration_seconds",
            "Time from a job's start to its outcome",
            ["queue", "kind"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.waited = Histogram(
            "ingestq_worker_job_queue_wait_seconds",
            "Time a job waited between becoming due and its start",
            ["queue", "kind"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.in_progress = Gauge(
            "ingestq_worker_jobs_in_progress", "Jobs running now", ["queue", "kind"], registry=r
        )
        self.lost = Counter(
            "ingestq_worker_leases_lost", "Jobs this worker lost to another (its lease expired)", registry=r
        )
        self.chunks = Counter(
            "ingestq_worker_chunks",
            "Chunks of ingested documents, embedded by the model or reused from the cache",
            ["source"],
            registry=r,
        )
        self.loop_lag = Gauge(
            "ingestq_worker_event_loop_lag_seconds",
            "How late the event loop ran a timer, last look",
            registry=r,
        )
        self._started_at: dict[int, float] = {}

    def job_started(self, job: Job, now_wall: float) -> None:
        self.started.labels(job.queue, job.kind).inc()
        self.in_progress.labels(job.queue, job.kind).inc()
        self.waited.labels(job.queue, job.kind).observe(max(0.0, now_wall - job.run_at.timestamp()))
        self._started_at[job.id] = time.monotonic()

    def job_finished(self, job: Job, outcome: Outcome | None) -> None:
        self.in_progress.labels(job.queue, job.kind).dec()
        started = self._started_at.pop(job.id, None)
        if outcome is None:
            return  # lost: counted by lease_lost
        self.finished.labels(job.queue, job.kind, outcome.kind.value).inc()
        if started is not None:
            self.duration.labels(job.queue, job.kind).observe(time.monotonic() - started)
        result: Any = outcome.result
        if isinstance(result, dict):
            embedded, reused = result.get("embedded"), result.get("reused")
            if isinstance(embedded, int):
                self.chunks.labels("embedded").inc(embedded)
            if isinstance(reused, int):
                self.chunks.labels("reused").inc(reused)

    def lease_lost(self) -> None:
        self.lost.inc()
