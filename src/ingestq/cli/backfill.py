"""`ingestq backfill [--collection C] [--wait]`: re-ingest documents built with another model or other
chunker settings than the current ones."""

from __future__ import annotations

from typing import Annotated

import typer

from ingestq.client.documents import BatchSummary, Documents
from ingestq.runtime import Runtime

from .common import console, settings_of, with_runtime
from .ingest import print_summary, wait_for_jobs


def backfill_command(
    ctx: typer.Context,
    collection: Annotated[str | None, typer.Option("--collection", "-C", help="Collection.")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Run a worker here and show progress until it is done.")
    ] = False,
) -> None:
    """Queue re-ingestion of every document whose model or chunker settings changed."""
    settings = settings_of(ctx)

    async def action(runtime: Runtime) -> tuple[int, BatchSummary | None]:
        docs = Documents(runtime.client, settings)
        jobs = await docs.backfill(collection)
        if not wait or not jobs:
            return len(jobs), None
        return len(jobs), await wait_for_jobs(runtime, jobs, out=console, label="Backfilling")

    queued, summary = with_runtime(ctx, action)
    if summary is None:
        note = " (run `ingestq worker`, or pass --wait)" if queued else ""
        console.print(f"queued {queued} documents for re-ingestion{note}")
        return
    print_summary(summary, console)
