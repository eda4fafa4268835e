"""How jobs, stats and workers look: plain dicts for `--json`, Rich tables for people."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from ingestq.model.job import Job, JobState, QueueStats, WorkerInfo

_STATE_STYLE = {
    JobState.QUEUED: "cyan",
    JobState.RUNNING: "yellow",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "magenta",
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, JobState):
        return value.value
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def to_json(value: Any) -> Any:
    """A dataclass (Job, QueueStats, ...) or list of them as JSON-ready values."""
    return _plain(value)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _state(state: JobState) -> str:
    return f"[{_STATE_STYLE[state]}]{state.value}[/]"


def _short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def jobs_table(jobs: list[Job]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("id", "state", "kind", "queue", "prio", "attempt", "run at", "created", "last error"):
        table.add_column(column, no_wrap=column != "last error")
    for job in jobs:
        table.add_row(
            str(job.id),
            _state(job.state),
            job.kind,
            job.queue,
            str(job.priority),
            f"{job.attempt}/{job.max_attempts}",
            _when(job.run_at),
            _when(job.created_at),
            _short(job.last_error),
        )
    return table


def job_table(job: Job, position: int | None) -> Table:
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str]] = [
        ("id", str(job.id)),
        ("state", _state(job.state) + (" (cancel requested)" if job.cancel_requested else "")),
        ("kind", job.kind),
        ("queue", job.queue),
        ("priority", str(job.priority)),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("run at", _when(job.run_at)),
        ("created", _when(job.created_at)),
        ("started", _when(job.started_at)),
        ("finished", _when(job.finished_at)),
    ]
    if position is not None:
        rows.append(("position", str(position)))
    if job.dedupe_key:
        rows.append(("dedupe key", job.dedupe_key))
    if job.document_id:
        rows.append(("document", job.document_id))
    if job.lease_owner:
        rows.append(("worker", f"{job.lease_owner} (lease until {_when(job.lease_expires_at)})"))
    if job.progress:
        total = f"/{job.progress.total}" if job.progress.total is not None else ""
        rows.append(("progress", f"{job.progress.stage} {job.progress.done}{total}"))
    rows.append(("payload", _short(str(job.payload), 200)))
    if job.result is not None:
        rows.append(("result", _short(str(job.result), 200)))
    for record in job.errors:
        rows.append((f"error #{record.attempt}", f"{_when(record.at)} {_short(record.message, 160)}"))
    for key, value in rows:
        table.add_row(key, value)
    return table


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def stats_table(stats: list[QueueStats]) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("queue")
    for state in JobState:
        table.add_column(state.value, justify="right", style=_STATE_STYLE[state])
    table.add_column("oldest queued", justify="right")
    for row in sorted(stats, key=lambda s: s.queue):
        table.add_row(
            row.queue,
            *(str(row.counts.get(state, 0)) for state in JobState),
            _age(row.oldest_queued_age),
        )
    if not stats:
        table.add_row("(no jobs)", *("" for _ in JobState), "")
    return table


def workers_table(workers: list[WorkerInfo]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("worker", "host", "pid", "queues", "running", "concurrency", "heartbeat"):
        table.add_column(column)
    unavailable = any(w.unavailable for w in workers)
    if unavailable:
        table.add_column("unavailable", overflow="fold")
    for w in workers:
        cells = [
            w.worker_id,
            w.hostname,
            str(w.pid),
            ",".join(w.queues) if w.queues else "*",
            str(w.running),
            str(w.concurrency),
            _when(w.heartbeat_at),
        ]
        if unavailable:
            cells.append(f"[red]{escape(w.unavailable)}[/]" if w.unavailable else "")
        table.add_row(*cells)
    return table
