"""The composition root: how a process builds its client, its registry and its workers, once for every
surface (the CLI's `worker` and `ingest --wait`, the demo, the HTTP service, the tests).

    async with await Runtime.open(settings, app_registry) as rt:
        await rt.worker(concurrency=8).run()

The registry a worker serves is always: the built-in kinds, the ingestion kinds (declared once in
`pipeline/ingest/kinds.py`, with their cap), the webhook deliveries (`webhooks/deliver.py`) and the
application's own. The ingestion pipeline is loaded
on the first ingestion job (`LazyIngestion`), so a worker that only runs plain jobs never imports the
parsers or loads a model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ingestq.client.client import Client
from ingestq.clock import SYSTEM_CLOCK, Clock
from ingestq.model.job import FINISHED_STATES, Job, JobState
from ingestq.pipeline.ingest.kinds import register_ingestion
from ingestq.settings import Settings
from ingestq.tasks.registry import Registry, default_registry
from ingestq.tasks.task import JobContext
from ingestq.webhooks.deliver import register_webhooks
from ingestq.worker import Worker, WorkerConfig

if TYPE_CHECKING:
    from ingestq.pipeline.ingest.runtime import IngestRuntime
    from ingestq.store.base import Store
    from ingestq.worker.probes import Probes


class LazyIngestion:
    """Stands for an `IngestRuntime` until an ingestion job runs; `aclose` closes it if it was built."""

    def __init__(self, store: Store, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._runtime: IngestRuntime | None = None

    @property
    def loaded(self) -> bool:
        return self._runtime is not None

    def runtime(self) -> IngestRuntime:
        if self._runtime is None:
            from ingestq.pipeline.ingest.runtime import IngestRuntime

            self._runtime = IngestRuntime(self._store, self._settings, clock=self._clock)
        return self._runtime

    async def ingest(
        self, ctx: JobContext, collection: str, document_id: str, force: bool = False
    ) -> dict[str, Any]:
        return await self.runtime().ingest(ctx, collection, document_id, force)

    async def backfill(self, ctx: JobContext, collection: str) -> dict[str, Any]:
        return await self.runtime().backfill(ctx, collection)

    def registry(self) -> Registry:
        return register_ingestion(Registry(), self._settings, self.ingest, self.backfill)

    async def aclose(self) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            await runtime.aclose()


class Runtime:
    """One process's client, registry and ingestion resources. Close it (or use `async with`) to close
    the store and the pipeline's parser processes and embedder."""

    def __init__(self, client: Client, settings: Settings, registry: Registry | None = None) -> None:
        self.client = client
        self.settings = settings
        self.ingestion = LazyIngestion(client.store, settings, client.clock)
        # like Client and Worker: without a registry, the tasks registered with @ingestq.task
        app = registry if registry is not None else default_registry
        webhooks = register_webhooks(Registry(), client.store, settings, client.clock)
        self.registry = self.ingestion.registry().merge(webhooks).merge(app)

    @classmethod
    async def open(
        cls,
        settings: Settings | None = None,
        registry: Registry | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Runtime:
        """Connect to `settings.database_url` (migrating if `auto_migrate`), with `registry`'s kinds
        (the application's) served next to the built-in and ingestion kinds."""
        settings = settings or Settings()
        client = await Client.connect(settings, registry=registry, clock=clock)
        return cls(client, settings, registry)

    @property
    def store(self) -> Store:
        return self.client.store

    async def check_ingestion(self) -> None:
        """Raise `ingestq.errors.Unavailable` (one line: cause and fix) unless this machine can ingest: a
        parser process starts and parses, and the embedder is built (the local model loads). Builds the
        ingestion runtime, whose parser child and model then serve the first jobs."""
        await self.ingestion.runtime().health_check()

    def worker_config(self, **overrides: Any) -> WorkerConfig:
        """The settings' worker options with `overrides` (None values are ignored)."""
        return WorkerConfig.from_settings(self.settings, **overrides)

    def worker(self, config: WorkerConfig | None = None, *, probes: Probes | None = None) -> Worker:
        """A worker serving this runtime's registry (not started: `await worker.run(...)`)."""
        return Worker(
            self.store, self.registry, config or self.worker_config(), self.client.clock, probes=probes
        )

    async def aclose(self) -> None:
        try:
            await self.ingestion.aclose()
        finally:
            await self.client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@dataclass
class BatchProgress:
    """What `run_until_finished` reports after each look at the batch."""

    total: int
    finished: dict[int, Job] = field(default_factory=dict)
    running: list[Job] = field(default_factory=list)


POLL_SECONDS = 0.2  # between looks at the batch's jobs
LOOK_AHEAD = 8
"""Unfinished jobs, oldest first, a look checks before it stops: jobs finish roughly in claim order, so
a look costs a few reads instead of one per job of the batch (992 every 0.2 s for the markdown corpus)."""


async def run_until_finished(
    worker: Worker,
    client: Client,
    jobs: Sequence[Job],
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> list[Job]:
    """Run `worker` in this process until every job of `jobs` is finished (or the worker stops), then
    stop it gracefully. Returns the jobs as last read, in the order given."""
    progress = BatchProgress(total=len(jobs))
    pending = {job.id: job for job in jobs}
    task = asyncio.create_task(worker.run())
    try:
        while pending and not task.done():
            unfinished: list[Job] = []
            for job_id in sorted(pending):
                job = await client.store.job_get(job_id)
                if job is None or job.state in FINISHED_STATES:
                    pending.pop(job_id)
                    if job is not None:
                        progress.finished[job_id] = job
                else:
                    unfinished.append(job)
                    if len(unfinished) >= LOOK_AHEAD:
                        break
            progress.running = [job for job in unfinished if job.state is JobState.RUNNING]
            if on_progress is not None:
                on_progress(progress)
            if pending:
                await asyncio.sleep(POLL_SECONDS)
    finally:
        worker.request_stop(graceful=True)
        await task
    return [progress.finished.get(job.id, job) for job in jobs]
