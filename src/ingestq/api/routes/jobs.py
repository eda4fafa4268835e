"""`/v1/jobs`: enqueue, list, get (with queue position and a long-poll), retry, cancel, bulk actions.

Only kinds the service's own registry knows can be enqueued (the built-in kinds, the ingestion kinds and
the application's): a client names a kind, and the kind decides what code runs with the client's
payload, so a name the service does not know is refused (422 `unknown_kind`) rather than left in the
queue for whichever worker might know it.

Reading needs a read token; anything that changes a job needs an admin token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from ingestq.api.errors import ApiError, ShapedRoute
from ingestq.api.schemas import (
    INT64,
    MAX_LIST_LIMIT,
    MAX_NAME,
    BulkIn,
    BulkOut,
    EnqueuedJob,
    EnqueueIn,
    JobDetail,
    JobOut,
    JobPage,
    error_responses,
    job_version,
    name_error,
)
from ingestq.api.state import Admin, IngestqClient, IngestqRuntime, Reader
from ingestq.api.webhook_callbacks import insert_with_callbacks
from ingestq.builtin import builtin_registry
from ingestq.client.client import Client
from ingestq.errors import ConfigError, InvalidJobState, JobNotFound
from ingestq.model.job import FINISHED_STATES, Job, JobFilter, JobState
from ingestq.model.webhook import WEBHOOK_KIND
from ingestq.runtime import Runtime

router = APIRouter(route_class=ShapedRoute, responses=error_responses(401, 403, 422, 503), tags=["jobs"])

MAX_WAIT = 60.0  # seconds a long-poll may hold a request
POLL_FIRST = 0.05  # seconds between a long-poll's first looks at the job; grows to POLL_MAX
POLL_MAX = 0.5
BULK_MAX_CHANGES = 1000  # jobs one bulk request changes at most (`more: true` beyond)
BULK_MAX_COUNT = 100_000  # jobs one dry run counts at most (`more: true` beyond)
PAGE = 500  # rows per read while a bulk request walks its filter

PathId = Annotated[int, Path(ge=1, le=INT64, description="Job id")]
Action = Literal["retry", "cancel", "purge"]

# The states each bulk action applies to: the rest of a scope is skipped, not counted.
ELIGIBLE: dict[Action, frozenset[JobState]] = {
    "retry": frozenset({JobState.FAILED, JobState.CANCELLED}),
    "cancel": frozenset({JobState.QUEUED, JobState.RUNNING}),
    "purge": FINISHED_STATES,
}


def allowed_kinds(runtime: Runtime) -> frozenset[str]:
    """What this service's worker would run: built-in, ingestion and application kinds; not the webhook
    deliveries, which only the store enqueues (POST /v1/webhooks/deliveries/{id}/redeliver re-sends one)."""
    return (frozenset(runtime.registry.tasks) | frozenset(builtin_registry.tasks)) - {WEBHOOK_KIND}


def _bad_input(exc: ConfigError) -> ApiError:
    return ApiError(422, "invalid_request", str(exc))


async def _position(client: Client, job: Job) -> int | None:
    return await client.position(job.id) if job.state is JobState.QUEUED else None


# --- enqueue ---------------------------------------------------------------------------------------------
@router.post(
    "/jobs",
    summary="Enqueue a job of a registered kind",
    description="201 with the new job; 200 with the existing unfinished job when `dedupe_key` matched "
    "(`deduplicated: true`). 422 `unknown_kind` for a kind the service's registry does not know (a client "
    "cannot run arbitrary kinds by name); 429 with Retry-After when the queue is at its max depth. "
    "`callbacks` are told when the job ends (422 `invalid_callback` for a bad URL or no signing secret).",
    status_code=201,
    response_model=EnqueuedJob,
    responses={
        200: {"model": EnqueuedJob, "description": "dedupe_key matched an unfinished job"},
        **error_responses(429),
    },
    dependencies=[Admin],
)
async def enqueue(
    body: EnqueueIn, runtime: IngestqRuntime, request: Request, response: Response
) -> EnqueuedJob:
    if body.kind not in allowed_kinds(runtime):
        raise ApiError(422, "unknown_kind", f"job kind {body.kind!r} is not registered in this service")
    client = runtime.client
    try:
        new = client.new_job(
            body.kind,
            body.payload,
            queue=body.queue,
            priority=body.priority,
            delay=body.delay_seconds,
            run_at=body.run_at,
            max_attempts=body.max_attempts,
            dedupe_key=body.dedupe_key,
            document_id=body.document_id,
        )
    except ConfigError as exc:
        raise _bad_input(exc) from None
    # What Client.enqueue does, with "now" kept: a job inserted by this call has created_at == now; a
    # dedupe match returns an older job. (Timestamps round-trip to the microsecond on both backends.)
    now = client.clock.now()
    if body.callbacks:
        job = await insert_with_callbacks(runtime, new, body.callbacks, now)
    else:
        (job,) = await client.store.job_insert_many([new], now)
    deduplicated = abs(job.created_at - now) > timedelta(microseconds=1)
    response.status_code = 200 if deduplicated else 201
    # url_for: right under whatever prefix a host application mounted the router
    response.headers["Location"] = str(request.url_for("get_job", job_id=job.id))
    return EnqueuedJob.of(job, position=await _position(client, job), deduplicated=deduplicated)


# --- read ------------------------------------------------------------------------------------------------
@router.get(
    "/jobs",
    summary="List jobs, newest first (keyset pagination)",
    response_model=JobPage,
    dependencies=[Reader],
)
async def list_jobs(
    client: IngestqClient,
    state: Annotated[list[JobState] | None, Query(description="Only these states (repeatable)")] = None,
    queue: Annotated[list[str] | None, Query(max_length=MAX_NAME, description="Only these queues")] = None,
    kind: Annotated[list[str] | None, Query(max_length=MAX_NAME, description="Only these kinds")] = None,
    document_id: Annotated[str | None, Query(max_length=MAX_NAME)] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=INT64, description="Only jobs older than this id: the `next` of a page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
) -> JobPage:
    documents = [document_id] if document_id is not None else None
    for values, what in ((queue, "queue"), (kind, "kind"), (documents, "document_id")):
        problem = name_error(values, what)
        if problem is not None:
            raise ApiError(422, "invalid_request", problem)
    flt = JobFilter(
        states=tuple(state) if state else None,
        queues=tuple(queue) if queue else None,
        kinds=tuple(kind) if kind else None,
        document_id=document_id,
        before_id=before_id,
        limit=limit,
    )
    jobs = await client.list(flt)
    return JobPage(jobs=[JobOut.of(job) for job in jobs], next=jobs[-1].id if len(jobs) == limit else None)


@router.get(
    "/jobs/{job_id}",
    summary="One job, with its queue position and progress; `?wait=S` long-polls for a change",
    description="With `wait` (seconds, 0 < S ≤ 60) the answer comes as soon as the job differs from "
    "what the caller has seen: its `version` differs from `since`, or its state from `state`, or (with "
    "neither) from the job as it was when the request arrived; after S seconds the unchanged job is "
    "returned. The ETag header carries `version`.",
    response_model=JobDetail,
    responses=error_responses(404),
    dependencies=[Reader],
)
async def get_job(
    request: Request,
    response: Response,
    client: IngestqClient,
    job_id: PathId,
    wait: Annotated[float | None, Query(gt=0, le=MAX_WAIT, allow_inf_nan=False)] = None,
    state: Annotated[JobState | None, Query(description="Long-poll: the state the caller has seen")] = None,
    since: Annotated[
        str | None, Query(max_length=64, description="Long-poll: the `version` the caller has seen")
    ] = None,
) -> JobDetail:
    job = await client.get(job_id)
    if wait is not None:
        job = await _wait_for_change(request, client, job, wait, state, since)
    response.headers["ETag"] = f'"{job_version(job)}"'
    return JobDetail.of(job, position=await _position(client, job))


async def _wait_for_change(
    request: Request, client: Client, job: Job, wait: float, state: JobState | None, since: str | None
) -> Job:
    """Poll the job at a growing interval (50 ms, doubling to 500 ms) until it changed or `wait` passed.

    Polling, not `store.wait_for_jobs`: that wake-up is shared with the worker loop of this process
    (`serve --with-worker`), and consuming it here would delay the worker's next claim."""

    def changed(current: Job) -> bool:
        if since is not None:
            return job_version(current) != since
        if state is not None:
            return current.state is not state
        return job_version(current) != seen

    seen = job_version(job)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    interval = POLL_FIRST
    while not changed(job):
        left = deadline - loop.time()
        if left <= 0 or await request.is_disconnected():
            break
        await asyncio.sleep(min(interval, left))
        interval = min(interval * 2, POLL_MAX)
        job = await client.get(job.id)
    return job


# --- bulk (declared before /jobs/{job_id}/..., which would take "bulk" for an id) ------------------------
@router.post(
    "/jobs/bulk/{action}",
    summary="Retry, cancel or purge many jobs, by ids or by filter; `dry_run` counts first",
    description=(
        "The scope is `ids` (at most 1000) or `filter`; only the jobs the action applies to are counted "
        "and changed (retry: failed and cancelled; cancel: queued, and running without a pending cancel "
        "request; purge: succeeded, failed and cancelled). `dry_run: true` returns `matched` and changes "
        f"nothing. One request changes at most {BULK_MAX_CHANGES} jobs and a dry run counts at most "
        f"{BULK_MAX_COUNT}: `more: true` says the cap was reached (call again for the rest). Purge takes a "
        "filter of states, queues and `finished_before` only: the store deletes finished jobs by state, "
        "queue and age, one statement per queue, not capped; its dry run is an exact count."
    ),
    response_model=BulkOut,
    dependencies=[Admin],
)
async def bulk(client: IngestqClient, action: Action, body: BulkIn) -> BulkOut:
    if body.ids is not None:
        return await _bulk_ids(client, action, body.ids, body.dry_run)
    return await _bulk_filter(client, action, body, body.dry_run)


# --- steer one -------------------------------------------------------------------------------------------
@router.post(
    "/jobs/{job_id}/retry",
    summary="Re-queue a failed or cancelled job now (409 for other states)",
    response_model=JobDetail,
    responses=error_responses(404, 409),
    dependencies=[Admin],
)
async def retry_job(client: IngestqClient, job_id: PathId) -> JobDetail:
    job = await client.retry(job_id)
    return JobDetail.of(job, position=await _position(client, job))


@router.post(
    "/jobs/{job_id}/cancel",
    summary="Cancel a queued job now, or ask a running one to stop (409 for a finished job)",
    description="A running job stops at its next stage boundary: the answer shows it running with "
    "`cancel_requested: true`. Cancelling a cancelled job returns it unchanged.",
    response_model=JobDetail,
    responses=error_responses(404, 409),
    dependencies=[Admin],
)
async def cancel_job(client: IngestqClient, job_id: PathId) -> JobDetail:
    job = await client.cancel(job_id)
    if job.state in (JobState.SUCCEEDED, JobState.FAILED):
        raise InvalidJobState(f"job {job_id} is already {job.state.value}: nothing to cancel")
    return JobDetail.of(job, position=await _position(client, job))


def _applies(action: Action, job: Job) -> bool:
    if job.state not in ELIGIBLE[action]:
        return False
    return not (action == "cancel" and job.cancel_requested)


async def _apply(client: Client, action: Action, job: Job) -> bool:
    """Apply a per-job action; False when the job moved on meanwhile (or vanished)."""
    try:
        if action == "retry":
            await client.retry(job.id)
            return True
        after = await client.cancel(job.id)
        return after.state is JobState.CANCELLED or after.cancel_requested
    except (InvalidJobState, JobNotFound):
        return False


async def _bulk_ids(client: Client, action: Action, ids: list[int], dry_run: bool) -> BulkOut:
    if action == "purge":
        raise ApiError(
            422,
            "invalid_request",
            "purge by ids is not supported: give a filter of states and queues (finished jobs are "
            "deleted by state and queue)",
        )
    matched = changed = 0
    for job_id in dict.fromkeys(ids):  # each id once, in the order given
        try:
            job = await client.get(job_id)
        except JobNotFound:
            continue
        if not _applies(action, job):
            continue
        matched += 1
        if not dry_run and await _apply(client, action, job):
            changed += 1
    return BulkOut(
        action=action, dry_run=dry_run, matched=matched, changed=None if dry_run else changed, more=False
    )


async def _bulk_filter(client: Client, action: Action, body: BulkIn, dry_run: bool) -> BulkOut:
    assert body.filter is not None
    flt = body.filter
    eligible = ELIGIBLE[action]
    states = tuple(s for s in JobState if s in eligible and (flt.states is None or s in flt.states))
    if action == "purge" and (flt.kinds or flt.document_id):
        raise ApiError(
            422, "invalid_request", "purge filters by states and queues only (not kinds or document_id)"
        )
    if action != "purge" and flt.finished_before is not None:
        raise ApiError(422, "invalid_request", "finished_before applies to purge only")
    if not states:
        return BulkOut(action=action, dry_run=dry_run, matched=0, changed=None if dry_run else 0, more=False)
    if action == "purge":
        return await _purge(client, states, flt.queues, flt.finished_before, dry_run)
    if dry_run:
        matched, more = await _count(client, action, flt.to_filter, states)
        return BulkOut(action=action, dry_run=True, matched=matched, changed=None, more=more)
    matched = changed = 0
    more = False

    async def visit(job: Job) -> bool:
        nonlocal matched, changed, more
        if matched >= BULK_MAX_CHANGES:
            more = True
            return False
        matched += 1
        if await _apply(client, action, job):
            changed += 1
        return True

    await _walk(client, action, flt.to_filter, states, visit)
    return BulkOut(action=action, dry_run=False, matched=matched, changed=changed, more=more)


async def _purge(
    client: Client,
    states: tuple[JobState, ...],
    queues: list[str] | None,
    finished_before: datetime | None,
    dry_run: bool,
) -> BulkOut:
    """One statement per queue: the dry run counts with the purge's own WHERE (`job_purge_count`, the
    dashboard's "Purge old" count too), so the count is exact and not capped."""
    scopes: list[str | None] = list(dict.fromkeys(queues)) if queues else [None]
    store = client.store
    if dry_run:
        matched = sum([await store.job_purge_count(states, queue, finished_before) for queue in scopes])
        return BulkOut(action="purge", dry_run=True, matched=matched, changed=None, more=False)
    deleted = 0
    for queue in scopes:
        deleted += await store.job_purge(states, queue, finished_before)
    return BulkOut(action="purge", dry_run=False, matched=deleted, changed=deleted, more=False)


FilterOf = Callable[[tuple[JobState, ...], int | None, int], JobFilter]


async def _walk(
    client: Client,
    action: Action,
    filter_of: FilterOf,
    states: tuple[JobState, ...],
    visit: Callable[[Job], Awaitable[bool]],
) -> None:
    """Visit the jobs of the filter the action applies to, newest first, page by page (keyset on id, so
    a job the action changes is never visited twice), until `visit` returns False or none are left."""
    before: int | None = None
    while True:
        page = await client.list(filter_of(states, before, PAGE))
        for job in page:
            if _applies(action, job) and not await visit(job):
                return
        if len(page) < PAGE:
            return
        before = page[-1].id


async def _count(
    client: Client, action: Action, filter_of: FilterOf, states: tuple[JobState, ...]
) -> tuple[int, bool]:
    count = 0
    more = False

    async def visit(job: Job) -> bool:
        nonlocal count, more
        if count >= BULK_MAX_COUNT:
            more = True
            return False
        count += 1
        return True

    await _walk(client, action, filter_of, states, visit)
    return count, more
