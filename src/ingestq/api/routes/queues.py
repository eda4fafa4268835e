"""`/v1/stats`, `/v1/queues`, `/v1/workers`: how the queues stand, their limits and pauses, who works
on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ingestq.api.errors import ApiError, ShapedRoute
from ingestq.api.schemas import (
    MAX_NAME,
    NO_NUL,
    QueueIn,
    QueueOut,
    QueueStatsOut,
    StatsOut,
    WorkerOut,
    error_responses,
)
from ingestq.api.state import Admin, IngestqClient, Reader
from ingestq.errors import ConfigError
from ingestq.model.job import JobState

router = APIRouter(route_class=ShapedRoute, responses=error_responses(401, 403, 422, 503), tags=["queues"])

QueueName = Annotated[str, Path(min_length=1, max_length=MAX_NAME, pattern=NO_NUL, description="Queue name")]


@router.get(
    "/stats",
    summary="Jobs per queue and state, the oldest due queued job's age, running jobs per worker",
    response_model=StatsOut,
    dependencies=[Reader],
)
async def stats(client: IngestqClient) -> StatsOut:
    queues = [QueueStatsOut.of(s) for s in await client.stats()]
    totals = {state: sum(q.counts.get(state, 0) for q in queues) for state in JobState}
    return StatsOut(queues=queues, totals=totals)


@router.get(
    "/workers",
    summary="Workers that heartbeat: queues, concurrency, running jobs, kinds they cannot serve now",
    response_model=list[WorkerOut],
    dependencies=[Reader],
)
async def workers(client: IngestqClient) -> list[WorkerOut]:
    return [WorkerOut.of(w) for w in await client.workers()]


@router.get(
    "/queues",
    summary="Configured queues: their maximum depth, whether they are paused",
    response_model=list[QueueOut],
    dependencies=[Reader],
)
async def queues(client: IngestqClient) -> list[QueueOut]:
    return [QueueOut.of(q) for q in await client.queues()]


@router.put(
    "/queues/{name}",
    summary="Set (or with null, remove) a queue's maximum number of unfinished jobs",
    description="Enqueueing beyond the limit answers 429 with Retry-After.",
    response_model=QueueOut,
    dependencies=[Admin],
)
async def configure_queue(client: IngestqClient, name: QueueName, body: QueueIn) -> QueueOut:
    try:
        config = await client.configure_queue(name, body.max_depth)
    except ConfigError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    return QueueOut.of(config)


@router.post(
    "/queues/{name}/pause",
    summary="Pause a queue: workers stop claiming its jobs",
    description="Workers leave it out of their claims from their next heartbeat (within a third of their "
    "lease). The queue still accepts jobs, up to its maximum depth; jobs already running finish. Pausing "
    "a paused queue keeps its `paused_at`.",
    response_model=QueueOut,
    dependencies=[Admin],
)
async def pause_queue(client: IngestqClient, name: QueueName) -> QueueOut:
    return QueueOut.of(await client.pause_queue(name))


@router.post(
    "/queues/{name}/resume",
    summary="Resume a paused queue: workers claim its jobs again",
    description="From the workers' next heartbeat (within a third of their lease).",
    response_model=QueueOut,
    dependencies=[Admin],
)
async def resume_queue(client: IngestqClient, name: QueueName) -> QueueOut:
    return QueueOut.of(await client.resume_queue(name))
