"""`/healthz` (the process and its event loop answer: no database call), `/readyz` (the database answers
and its schema is current) and `/metrics` (Prometheus text, computed at scrape time from counts the stores
keep up to date, so a scrape costs the same with ten or ten million finished jobs)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingestq.api.errors import ShapedRoute, error_response
from ingestq.api.state import IngestqClient, Reader
from ingestq.model.job import JobState

READY_TIMEOUT = 2.0  # seconds: a readiness probe must answer, not hang on a database that went away

router = APIRouter(route_class=ShapedRoute, tags=["health"])


@router.get("/healthz", summary="The process and its event loop answer (no database call)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers and its schema is current")
async def readyz(client: IngestqClient) -> JSONResponse:
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            applied, latest = await client.schema_version()
    except TimeoutError:
        return error_response(503, "unavailable", "the database did not answer in time", {"Retry-After": "5"})
    except Exception as exc:
        return error_response(503, "unavailable", f"the database is not ready: {exc}", {"Retry-After": "5"})
    if applied < latest:
        return error_response(503, "schema", f"schema {applied} of {latest}: run `ingestq db migrate`")
    return JSONResponse({"status": "ready", "schema": applied})


class _Snapshot(Collector):
    """Metric families computed before the scrape renders them (the stores are async, collect() is not)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


@router.get(
    "/metrics",
    summary="Prometheus metrics: queue depth per queue and state, oldest queued age, documents, workers",
    response_class=PlainTextResponse,
    dependencies=[Reader],
)
async def metrics(client: IngestqClient) -> PlainTextResponse:
    stats = await client.stats()
    workers = await client.workers()
    depth = GaugeMetricFamily("ingestq_jobs", "Jobs per queue and state", labels=["queue", "state"])
    oldest = GaugeMetricFamily(
        "ingestq_oldest_queued_seconds", "Age of the oldest due queued job per queue", labels=["queue"]
    )
    for queue in stats:
        for state in JobState:
            depth.add_metric([queue.queue, state.value], queue.counts.get(state, 0))
        oldest.add_metric([queue.queue], queue.oldest_queued_age or 0.0)
    live = GaugeMetricFamily("ingestq_workers", "Workers that heartbeat")
    live.add_metric([], len(workers))
    running = GaugeMetricFamily("ingestq_workers_running_jobs", "Jobs the live workers hold")
    running.add_metric([], sum(w.running for w in workers))
    families: list[Metric] = [depth, oldest, live, running]
    counts = getattr(client.store, "document_counts", None)
    if counts is not None:
        documents = GaugeMetricFamily("ingestq_documents", "Documents per status", labels=["status"])
        for status, n in (await counts(None)).items():
            documents.add_metric([status.value], n)
        families.append(documents)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return PlainTextResponse(generate_latest(registry), media_type="text/plain; version=0.0.4")
