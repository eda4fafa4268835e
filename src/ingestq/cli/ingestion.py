"""The ingestion kinds as `ingestq worker` serves them: registered at start, loaded on first use.

A worker must name every kind it serves before its first claim, but most workers never see an ingestion
job, and importing the pipeline (parsers, chunker, embedder configuration, pydantic) costs more than the
rest of a worker's start-up. So the kinds are registered here with the pipeline's own parameters
(tests/unit/test_cli_startup.py checks that they match `IngestRuntime.registry()`), and the first
ingestion job imports the pipeline and builds the runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingestq.settings import Settings
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext

if TYPE_CHECKING:
    from ingestq.pipeline.ingest import IngestRuntime
    from ingestq.store import Store

INGEST_KIND = "ingestq.ingest"
BACKFILL_KIND = "ingestq.backfill"
INGEST_QUEUE = "ingest"
INGEST_MAX_ATTEMPTS = 3


class LazyIngestion:
    """Stands for an `IngestRuntime` until an ingestion job runs; `aclose` closes it if it was built."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._runtime: IngestRuntime | None = None

    @property
    def loaded(self) -> bool:
        return self._runtime is not None

    def runtime(self) -> IngestRuntime:
        if self._runtime is None:
            from ingestq.pipeline.ingest import IngestRuntime

            self._runtime = IngestRuntime(self._store, self._settings)
        return self._runtime

    async def ingest(
        self, ctx: JobContext, collection: str, document_id: str, force: bool = False
    ) -> dict[str, Any]:
        return await self.runtime().ingest(ctx, collection, document_id, force)

    async def backfill(self, ctx: JobContext, collection: str) -> dict[str, Any]:
        return await self.runtime().backfill(ctx, collection)

    def registry(self) -> Registry:
        registry = Registry()
        registry.task(
            self.ingest,
            name=INGEST_KIND,
            queue=INGEST_QUEUE,
            max_attempts=INGEST_MAX_ATTEMPTS,
            backoff_base=2.0,
            backoff_max=60.0,
        )
        registry.task(self.backfill, name=BACKFILL_KIND, queue=INGEST_QUEUE)
        return registry

    async def __aenter__(self) -> LazyIngestion:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runtime is not None:
            await self._runtime.aclose()
