"""Claims whose reply never arrived: the store committed a claim for this worker, then the connection broke
before the jobs reached it. The worker looks for them after a failed claim and gives them back at once,
instead of leaving them `running` under its name until their lease expires."""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING

from ingestq.model.job import Job, JobFilter, JobState

if TYPE_CHECKING:
    from ingestq.store.base import Store

PAGE = 500


async def orphaned_claims(store: Store, worker_id: str, held: Container[int]) -> list[Job]:
    """The running jobs leased to `worker_id` that are not in `held`. Reads the running jobs only (they
    are bounded by the workers' slots, not by history). Store errors propagate."""
    orphans: list[Job] = []
    before: int | None = None
    while True:
        page = await store.job_list(JobFilter(states=(JobState.RUNNING,), before_id=before, limit=PAGE))
        orphans += [job for job in page if job.lease_owner == worker_id and job.id not in held]
        if len(page) < PAGE:
            return orphans
        before = page[-1].id
