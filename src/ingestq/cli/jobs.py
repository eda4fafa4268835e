"""`ingestq jobs list | show | retry | cancel | purge`."""

from __future__ import annotations

from typing import Annotated

import typer

from ingestq.client.client import Client
from ingestq.model.job import FINISHED_STATES, Job, JobFilter, JobState

from .common import console, print_json, with_client
from .render import job_table, jobs_table, to_json

jobs_app = typer.Typer(help="Inspect and steer jobs.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")]
JobId = Annotated[int, typer.Argument(metavar="ID", help="Job id.")]


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    state: Annotated[list[JobState] | None, typer.Option(help="Only this state (repeatable).")] = None,
    queue: Annotated[list[str] | None, typer.Option(help="Only this queue (repeatable).")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only this kind (repeatable).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Page size.")] = 50,
    before: Annotated[int | None, typer.Option(help="Next page: jobs older than this id.")] = None,
    json_: JsonFlag = False,
) -> None:
    """List jobs, newest first. Page with --before LAST_ID."""
    flt = JobFilter(
        states=tuple(state) if state else None,
        queues=tuple(queue) if queue else None,
        kinds=tuple(kind) if kind else None,
        before_id=before,
        limit=limit,
    )

    async def action(client: Client) -> list[Job]:
        return await client.list(flt)

    jobs = with_client(ctx, action)
    next_before = jobs[-1].id if len(jobs) == limit else None
    if json_:
        print_json({"jobs": to_json(jobs), "next_before": next_before})
        return
    if not jobs:
        console.print("no jobs" + (" (before that id)" if before is not None else ""))
        return
    console.print(jobs_table(jobs))
    if next_before is not None:
        console.print(f"[dim]more: --before {next_before}[/]")


@jobs_app.command("show")
def show(ctx: typer.Context, job_id: JobId, json_: JsonFlag = False) -> None:
    """Show one job: state, attempts, progress, errors."""

    async def action(client: Client) -> tuple[Job, int | None]:
        job = await client.get(job_id)
        return job, await client.position(job_id) if job.state is JobState.QUEUED else None

    job, position = with_client(ctx, action)
    if json_:
        print_json({**to_json(job), "position": position})
    else:
        console.print(job_table(job, position))


@jobs_app.command("retry")
def retry(ctx: typer.Context, job_id: JobId) -> None:
    """Re-queue a failed or cancelled job now."""

    async def action(client: Client) -> Job:
        return await client.retry(job_id)

    job = with_client(ctx, action)
    console.print(f"job {job.id} {job.state.value} (attempt {job.attempt} of {job.max_attempts})")


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, job_id: JobId) -> None:
    """Cancel a queued job now; ask a running one to stop at its next stage boundary."""

    async def action(client: Client) -> Job:
        return await client.cancel(job_id)

    job = with_client(ctx, action)
    if job.state is JobState.RUNNING:
        console.print(f"job {job.id} running: cancel requested, it stops at its next stage boundary")
    else:
        console.print(f"job {job.id} {job.state.value}")


@jobs_app.command("purge")
def purge(
    ctx: typer.Context,
    state: Annotated[
        list[JobState] | None, typer.Option(help="Finished state to delete (repeatable; default: all).")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    older_than: Annotated[
        float | None, typer.Option(min=0, help="Only jobs finished more than this many seconds ago.")
    ] = None,
) -> None:
    """Delete finished jobs (succeeded, failed, cancelled)."""
    states = tuple(state) if state else tuple(sorted(FINISHED_STATES))

    async def action(client: Client) -> int:
        return await client.purge(states, queue=queue, older_than=older_than)

    deleted = with_client(ctx, action)
    console.print(f"purged {deleted} job(s)")
