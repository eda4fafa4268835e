"""`ingestq bench queue`: measure this setup's queue with no-op probe jobs (like `river bench`)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ingestq.benchmark import BENCH_QUEUE, QueueBenchResult, run_queue_bench

from .common import print_json, settings_of

bench_app = typer.Typer(
    help="Measure this setup: how fast the queue enqueues and runs jobs.", no_args_is_help=True
)


@bench_app.command("queue")
def queue(
    ctx: typer.Context,
    jobs: Annotated[int, typer.Option("--jobs", "-n", min=1, help="Probe jobs to enqueue and run.")] = 10_000,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, max=64, help="Worker processes draining them.")
    ] = 2,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="Jobs at once per worker (default 100).")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")] = False,
) -> None:
    """Measure enqueue and run rates with no-op probe jobs on this database.

    Enqueues probe jobs into the `ingestq.bench` queue, drains them with `ingestq worker --once`
    processes, prints both rates and purges the bench jobs. Other workers serving every queue would take
    bench jobs too: run it while they are stopped, or they skew the figures.
    """
    settings = settings_of(ctx)
    conc = concurrency or settings.concurrency
    if not json_:
        typer.echo(
            f"ingestq bench queue: {jobs:,} probe jobs, {workers} worker process"
            f"{'es' if workers > 1 else ''} × concurrency {conc}, queue {BENCH_QUEUE!r}",
            err=True,
        )
    result = asyncio.run(run_queue_bench(settings, jobs, workers, conc))
    if json_:
        print_json(result.as_dict())
    else:
        _print(result)


def _print(r: QueueBenchResult) -> None:
    typer.echo(f"backend  {r.backend}")
    typer.echo(
        f"enqueue  {r.jobs:>9,} jobs in {r.enqueue_seconds:7.2f} s  {r.enqueue_per_second:>9,.0f} jobs/s"
    )
    typer.echo(
        f"run      {r.succeeded:>9,} jobs in {r.run_seconds:7.2f} s  {r.run_per_second:>9,.0f} jobs/s"
        "  (worker start-up included)"
    )
