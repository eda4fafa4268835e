"""`ingestq ingest PATH|URL... [--collection C] [--wait]`: queue documents; with --wait, run a worker in
this process with a progress bar until the batch is done, then print a summary."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingestq.client.documents import BatchSummary, Documents
from ingestq.errors import Unavailable
from ingestq.model.job import Job
from ingestq.pipeline.ingest.kinds import INGEST_QUEUE
from ingestq.runtime import BatchProgress, Runtime, run_until_finished

from .common import console, print_json, settings_of, with_runtime
from .errors import CliError


def parse_metadata(items: Sequence[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--metadata {item!r}: expected KEY=VALUE")
        meta[key] = value
    return meta


async def wait_for_jobs(
    runtime: Runtime, jobs: Sequence[Job], *, out: Console, label: str = "Ingesting"
) -> BatchSummary:
    """Run an ingestion worker in this process until every job of `jobs` is finished, with a progress
    bar; then summarise from the jobs and their documents."""
    settings = runtime.settings
    try:  # as `ingestq worker` does: a machine that cannot parse or embed claims nothing
        await runtime.check_ingestion()
    except Unavailable as exc:
        raise CliError(f"{exc.reason} (the documents stay queued)") from None
    config = runtime.worker_config(concurrency=settings.ingest_concurrency, queues=(INGEST_QUEUE,))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=False) as bar:
        tid = bar.add_task(label, total=len(jobs), stage="")

        def show(progress: BatchProgress) -> None:
            p = next((j.progress for j in progress.running if j.progress is not None), None)
            stage = "" if p is None else (f"{p.stage} {p.done}/{p.total}" if p.total else p.stage)
            bar.update(tid, completed=len(progress.finished), stage=stage)

        finished = await run_until_finished(runtime.worker(config), runtime.client, jobs, show)
        bar.update(tid, stage="done")
    return await Documents(runtime.client, settings).summarise(finished)


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

    async def action(runtime: Runtime) -> tuple[int, BatchSummary | None]:
        docs = Documents(runtime.client, settings)
        batch = await docs.ingest(
            sources, collection=collection, metadata=meta, include=include or (), exclude=exclude or ()
        )
        if not batch:
            raise CliError("no files matched")
        if not wait:
            return len(batch), None
        logging.getLogger("ingestq").setLevel(logging.WARNING)
        out = Console(stderr=True) if json_ else console
        return len(batch), await wait_for_jobs(runtime, [b.job for b in batch], out=out)

    queued, summary = with_runtime(ctx, action)
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
