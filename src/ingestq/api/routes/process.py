"""`POST /v1/process?budget=S`: run due jobs in this process for at most S seconds, then answer.

For cron and serverless setups without a resident worker: a scheduler calls it every minute with a
budget below its platform's timeout. Each call is a worker of its own (its own id, heartbeat and leases)
that drains the queue: it stops claiming at `budget - grace`, lets the jobs in flight finish within
`grace`, and gives back what is left without spending an attempt. Overlapping calls are safe for the
same reason several workers are: a claim is one atomic statement, so every job runs in one call only.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from ingestq.api.errors import ShapedRoute
from ingestq.api.schemas import ProcessOut, error_responses
from ingestq.api.state import Admin, IngestqRuntime
from ingestq.model.job import JobFilter, JobState, OutcomeKind

router = APIRouter(route_class=ShapedRoute, responses=error_responses(401, 403, 422, 503), tags=["process"])

MAX_BUDGET = 300.0
GRACE_SHARE = 0.2  # of the budget kept for the jobs in flight to finish once claiming stops
GRACE_MAX = 10.0
REMAINING_CAP = 10_000  # queued jobs looked at to count the due ones after a call, at most
PAGE = 500


@router.post(
    "/process",
    summary="Run due jobs in this process within a time budget (cron / serverless)",
    description="Claims and runs due jobs of the kinds this service knows until none is left or the "
    f"budget (seconds, 0 < S ≤ {MAX_BUDGET:.0f}) is nearly spent; jobs still running at the end are "
    "given back to the queue without spending their attempt. Answers within the budget. Safe when "
    "several calls overlap (each is its own worker; claims are atomic).",
    response_model=ProcessOut,
    dependencies=[Admin],
)
async def process(
    runtime: IngestqRuntime,
    budget: Annotated[float, Query(gt=0, le=MAX_BUDGET, allow_inf_nan=False, description="Seconds")],
) -> ProcessOut:
    loop = asyncio.get_running_loop()
    started = loop.time()
    grace = min(GRACE_MAX, budget * GRACE_SHARE)
    worker = runtime.worker(runtime.worker_config(shutdown_grace=grace))
    await worker.run(drain=True, deadline=started + budget - grace)
    elapsed = loop.time() - started
    counts = worker.counts
    succeeded = counts[OutcomeKind.SUCCEEDED]
    failed = counts[OutcomeKind.FAILED]
    retried = counts[OutcomeKind.RETRY]
    cancelled = counts[OutcomeKind.CANCELLED]
    remaining, capped = await _due_queued(runtime)
    queued = sum(s.counts.get(JobState.QUEUED, 0) for s in await runtime.client.stats())
    return ProcessOut(
        worker_id=worker.worker_id,
        budget=budget,
        elapsed=round(elapsed, 3),
        processed=succeeded + failed + retried + cancelled,
        succeeded=succeeded,
        failed=failed,
        retried=retried,
        cancelled=cancelled,
        released=counts[OutcomeKind.RELEASED],
        remaining=remaining,
        remaining_capped=capped,
        queued=queued,
    )


async def _due_queued(runtime: IngestqRuntime) -> tuple[int, bool]:
    """Queued jobs that are due now (stats count the delayed ones too), looking at REMAINING_CAP queued
    jobs at most; True when it stopped there."""
    client = runtime.client
    now = client.clock.now()
    due = scanned = 0
    before: int | None = None
    while scanned < REMAINING_CAP:
        page = await client.list(JobFilter(states=(JobState.QUEUED,), before_id=before, limit=PAGE))
        scanned += len(page)
        due += sum(1 for job in page if job.run_at <= now)
        if len(page) < PAGE:
            return due, False
        before = page[-1].id
    return due, True
