"""Periodic jobs: cron schedules that every worker runs and the store de-duplicates.

Each worker computes the due slots of every schedule and calls `store.periodic_enqueue(name, slot, ...)`;
the store inserts one job per (name, slot) however many workers ask, so adding workers never multiplies
periodic jobs and losing one never stops them. Slots missed while no worker ran are coalesced: only the
latest past slot is enqueued when a worker catches up, not one job per missed slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter

from ingestq.clock import Clock
from ingestq.core.handlers import TaskSpec
from ingestq.core.job import DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, Job, JsonDict, NewJob
from ingestq.store.base import Store
from ingestq.worker.probes import NO_PROBES, Probes

log = logging.getLogger("ingestq.worker")

MAX_SLEEP = 60.0  # re-read the clock at least this often (wall-clock jumps, suspended laptops)


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
        slot: datetime = croniter(self.cron, now).get_prev(datetime)
        following: datetime = croniter(self.cron, slot).get_next(datetime)
        return following if following <= now else slot

    def next_slot(self, after: datetime) -> datetime:
        slot: datetime = croniter(self.cron, after).get_next(datetime)
        return slot


class PeriodicScheduler:
    def __init__(
        self, store: Store, clock: Clock, periodics: Sequence[Periodic], probes: Probes = NO_PROBES
    ) -> None:
        names = [p.schedule_name for p in periodics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"periodic schedules need distinct names: {', '.join(duplicates)}")
        self._store = store
        self._clock = clock
        self._periodics = list(periodics)
        self._probes = probes
        now = clock.now()
        self._due: dict[str, datetime] = {
            p.schedule_name: p.latest_slot(now) if p.run_on_start else p.next_slot(now) for p in periodics
        }

    async def tick(self) -> float:
        """Enqueue every due slot; return the seconds until the next one."""
        now = self._clock.now()
        for p in self._periodics:
            name = p.schedule_name
            if self._due[name] > now:
                continue
            slot = p.latest_slot(now)
            job: Job | None = await self._store.periodic_enqueue(name, slot, p.new_job(), now)
            if job is not None:
                log.info("periodic %s: enqueued job %s for %s", name, job.id, slot.isoformat())
            self._probes.hit("periodic", job)
            self._due[name] = p.next_slot(slot)
        if not self._due:
            return MAX_SLEEP
        wait = (min(self._due.values()) - self._clock.now()) / timedelta(seconds=1)
        return min(max(wait, 0.0), MAX_SLEEP)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                wait = await self.tick()
            except Exception as exc:
                log.warning("periodic scheduler failed (will retry): %s", exc)
                wait = 1.0
            try:
                async with asyncio.timeout(wait):
                    await stop.wait()
            except TimeoutError:
                pass
