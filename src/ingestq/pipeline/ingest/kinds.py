"""The ingestion job kinds, declared once: names, queue, attempts, backoff and the per-worker cap.

Every registry that serves ingestion (the worker command's lazy one, `IngestRuntime.registry()`, the
HTTP service's) registers the kinds through `register_ingestion`, so a new option cannot reach one and
miss another (it once did: `ingestq worker` ran 100 documents at once under a cap of 64).

Cheap to import (no pipeline, no pydantic): a worker names the kinds before its first claim.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ingestq.settings import Settings
from ingestq.tasks.registry import Registry

INGEST_KIND = "ingestq.ingest"
"""One document (payload: collection, document_id, force)."""
BACKFILL_KIND = "ingestq.backfill"
"""Re-queue a collection's documents built with another model or other chunker settings."""
INGEST_QUEUE = "ingest"
INGEST_MAX_ATTEMPTS = 3
"""A parser crash, a timeout or an unreachable URL get two more chances; bad input gets none."""

Handler = Callable[..., Awaitable[Any]]


def register_ingestion(
    registry: Registry, settings: Settings, ingest: Handler, backfill: Handler
) -> Registry:
    """Register `ingest` and `backfill` as the ingestion kinds, with their options from `settings`."""
    registry.task(
        ingest,
        name=INGEST_KIND,
        queue=INGEST_QUEUE,
        max_attempts=INGEST_MAX_ATTEMPTS,
        backoff_base=2.0,
        backoff_max=60.0,
        concurrency=settings.ingest_concurrency,
    )
    registry.task(backfill, name=BACKFILL_KIND, queue=INGEST_QUEUE, concurrency=settings.ingest_concurrency)
    return registry
