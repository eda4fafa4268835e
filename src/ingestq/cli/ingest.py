"""`ingestq ingest PATH|URL... [--collection C] [--wait]`: queue documents; with --wait, run a worker in
this process with a progress bar until the batch is done, then print a summary."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.document import DocumentStatus
from ingestq.model.job import FINISHED_STATES, Job, JobState
from ingestq.pipeline.ingest import INGEST_QUEUE, IngestRuntime
from ingestq.settings import Settings
from ingestq.worker import Worker, WorkerConfig

from .common import console, print_json, settings_of, with_client
from .errors import CliError

_POLL = 0.2  # seconds between looks at the batch's jobs while waiting
_LOOK_AHEAD = 8
"""Unfinished jobs, oldest first, a look checks before it stops: jobs finish roughly in claim order, so
a look costs a few reads instead of one per job of the batch (992 every 0.2 s for the markdown corpus)."""


@dataclass
class BatchSummary:
    total: int = 0
    indexed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    cancelled: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "indexed": self.indexed,
            "failed": [{"document": d, "reason": r} for d, r in self.failed],
            "quarantined": [{"document": d, "reason": r} for d, r in self.quarantined],
            "cancelled": self.cancelled,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "reused": self.reused,
        }


def parse_metadata(items: Sequence[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--metadata {item!r}: expected KEY=VALUE")
        meta[key] = value
    return meta


async def wait_for_jobs(
    client: Client,
    settings: Settings,
    jobs: Sequence[Job],
    *,
    out: Console,
    label: str = "Ingesting",
    concurrency: int | None = None,
) -> BatchSummary:
    """Run an ingestion worker in this process until every job in `jobs` is finished, with a progress
    bar; then summarise from the jobs and their documents."""
    pending = {job.id: job for job in jobs}
    finished: dict[int, Job] = {}
    async with IngestRuntime(client.store, settings, clock=client.clock) as runtime:
        config = WorkerConfig.from_settings(
            settings, concurrency=concurrency or settings.ingest_concurrency, queues=(INGEST_QUEUE,)
        )
        worker = Worker(client.store, runtime.registry(), config, client.clock)
        task = asyncio.create_task(worker.run())
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stage]}"),
            TimeElapsedColumn(),
        )
        try:
            with Progress(*columns, console=out, transient=False) as bar:
                tid = bar.add_task(label, total=len(pending), stage="")
                while pending and not task.done():
                    unfinished: list[Job] = []
                    for job_id in sorted(pending):
                        job = await client.store.job_get(job_id)
                        if job is None or job.state in FINISHED_STATES:
                            pending.pop(job_id)
                            if job is not None:
                                finished[job_id] = job
                        else:
                            unfinished.append(job)
                            if len(unfinished) >= _LOOK_AHEAD:
                                break
                    stage = ""
                    shown = [j.progress for j in unfinished if j.state is JobState.RUNNING]
                    p = next((progress for progress in shown if progress is not None), None)
                    if p is not None:
                        stage = f"{p.stage} {p.done}/{p.total}" if p.total else p.stage
                    bar.update(tid, completed=len(finished), stage=stage)
                    if pending:
                        await asyncio.sleep(_POLL)
                bar.update(tid, completed=len(finished), stage="done")
        finally:
            worker.request_stop(graceful=True)
            await task
    return await summarise(client, [finished.get(j.id, j) for j in jobs])


async def summarise(client: Client, jobs: Sequence[Job]) -> BatchSummary:
    docs = Documents(client)
    summary = BatchSummary(total=len(jobs))
    for job in jobs:
        result = job.result if isinstance(job.result, dict) else {}
        summary.chunks += int(result.get("chunks", 0) or 0)
        summary.embedded += int(result.get("embedded", 0) or 0)
        summary.reused += int(result.get("reused", 0) or 0)
        collection = str(job.payload.get("collection", ""))
        document_id = str(job.payload.get("document_id", job.document_id or ""))
        doc = await docs.store.document_get(collection, document_id)
        if job.state is JobState.SUCCEEDED:
            summary.indexed += 1
        elif job.state is JobState.CANCELLED:
            summary.cancelled += 1
        elif doc is not None and doc.status is DocumentStatus.QUARANTINED:
            summary.quarantined.append((document_id, doc.error or job.last_error or ""))
        else:
            reason = (doc.error if doc is not None else None) or job.last_error or "unknown"
            summary.failed.append((document_id, reason))
    return summary


def print_summary(summary: BatchSummary, out: Console) -> None:
    out.print(
        f"indexed {summary.indexed} of {summary.total} documents: {summary.chunks} chunks, "
        f"{summary.embedded} embedded, {summary.reused} reused from the cache"
    )
    if summary.cancelled:
        out.print(f"cancelled {summary.cancelled}")
    for title, rows in (("failed", summary.failed), ("quarantined", summary.quarantined)):
        if rows:
            out.print(f"{title} {len(rows)}:")
            for document_id, reason in rows:
                out.print(f"  {document_id}: {reason}", markup=False, highlight=False)


def ingest_command(
    ctx: typer.Context,
    sources: Annotated[list[str], typer.Argument(metavar="PATH|URL...", help="Files, folders, URLs.")],
    collection: Annotated[str | None, typer.Option("--collection", "-C", help="Collection.")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Run a worker here and show progress until the batch is done.")
    ] = False,
    include: Annotated[
        list[str] | None, typer.Option("--include", help="Only files matching this glob (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Skip files matching this glob (repeatable).")
    ] = None,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", "-m", help="KEY=VALUE on every document (repeatable).")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")] = False,
) -> None:
    """Queue documents for ingestion (files, folders recursively, http(s) URLs)."""
    settings = settings_of(ctx)
    meta = parse_metadata(metadata or [])

    async def action(client: Client) -> tuple[int, BatchSummary | None]:
        docs = Documents(client, settings)
        batch = await docs.ingest(
            sources, collection=collection, metadata=meta, include=include or (), exclude=exclude or ()
        )
        if not batch:
            raise CliError("no files matched")
        if not wait:
            return len(batch), None
        logging.getLogger("ingestq").setLevel(logging.WARNING)
        out = Console(stderr=True) if json_ else console
        return len(batch), await wait_for_jobs(client, settings, [b.job for b in batch], out=out)

    queued, summary = with_client(ctx, action)
    if summary is None:
        if json_:
            print_json({"queued": queued})
        else:
            console.print(f"queued {queued} documents (run `ingestq worker`, or pass --wait)")
        return
    if json_:
        print_json(summary.as_json())
    else:
        print_summary(summary, console)
    if summary.failed or summary.quarantined:
        raise typer.Exit(1)
