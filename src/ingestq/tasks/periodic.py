"""A periodic job: a cron schedule plus the job to enqueue at each slot (the worker's scheduler runs it).

Register one with `registry.periodic("*/5 * * * *", task, payload={...})`, or pass `Periodic` values to
the Worker. Times are UTC.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingestq.model.job import DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, JsonDict, NewJob
from ingestq.tasks.task import TaskSpec


@dataclass(frozen=True)
class Periodic:
    """`Periodic("*/5 * * * *", cleanup_task, payload={"days": 30})`: enqueue a job every five minutes.

    `task` is a registered TaskSpec or a job kind. `name` identifies the schedule across workers and
    restarts; by default it is derived from kind, cron and payload. `run_on_start`: also enqueue the
    latest past slot when the worker starts (once per slot across all workers, as usual)."""

    cron: str
    task: TaskSpec[Any, Any] | str
    payload: JsonDict = field(default_factory=dict)
    name: str | None = None
    queue: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    run_on_start: bool = False

    def __post_init__(self) -> None:
        from croniter import croniter  # with dateutil, a measurable share of every worker's start-up

        if not croniter.is_valid(self.cron):
            raise ValueError(f"invalid cron expression {self.cron!r} (expected e.g. '*/5 * * * *')")

    @property
    def kind(self) -> str:
        return self.task if isinstance(self.task, str) else self.task.kind

    @property
    def schedule_name(self) -> str:
        if self.name:
            return self.name
        digest = hashlib.sha1(json.dumps(self.payload, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.kind}@{self.cron}#{digest}"

    def new_job(self) -> NewJob:
        if isinstance(self.task, TaskSpec):
            return self.task.new_job(
                self.payload, queue=self.queue, priority=self.priority, max_attempts=self.max_attempts
            )
        return NewJob(
            kind=self.task,
            payload=dict(self.payload),
            queue=self.queue or DEFAULT_QUEUE,
            priority=self.priority or 0,
            max_attempts=self.max_attempts or DEFAULT_MAX_ATTEMPTS,
        )

    def latest_slot(self, now: datetime) -> datetime:
        """The latest slot at or before `now`."""
        from croniter import croniter

        slot: datetime = croniter(self.cron, now).get_prev(datetime)
        following: datetime = croniter(self.cron, slot).get_next(datetime)
        return following if following <= now else slot

    def next_slot(self, after: datetime) -> datetime:
        from croniter import croniter

        slot: datetime = croniter(self.cron, after).get_next(datetime)
        return slot
