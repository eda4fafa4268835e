"""Periodic jobs: cron schedules that every worker runs and the store de-duplicates.

Each worker computes the due slots of every schedule and calls `store.periodic_enqueue(name, slot, ...)`;
the store inserts one job per (name, slot) however many workers ask, so adding workers never multiplies
periodic jobs and losing one never stops them. Slots missed while no worker ran are coalesced: only the
latest past slot is enqueued when a worker catches up, not one job per missed slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ingestq.clock import Clock
from ingestq.model.job import Job
from ingestq.worker.probes import NO_PROBES, Probes

if TYPE_CHECKING:
    from ingestq.store.base import Store
    from ingestq.tasks.periodic import Periodic

log = logging.getLogger("ingestq.worker")

__all__ = ["Periodic", "PeriodicScheduler"]


def __getattr__(name: str) -> Any:
    # `Periodic` (re-exported) is imported on first use: a worker without schedules never needs it, and
    # every worker imports this module before its first claim.
    if name == "Periodic":
        from ingestq.tasks.periodic import Periodic

        return Periodic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MAX_SLEEP = 60.0  # re-read the clock at least this often (wall-clock jumps, suspended laptops)


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
