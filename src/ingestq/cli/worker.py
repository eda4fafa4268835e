"""`ingestq worker` as a Typer command (its help and its error messages); the work is in worker_run.py,
which `ingestq` also calls directly, without Typer, for the usual command lines."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import APP_HELP, settings_of
from .worker_run import FAST_OPTIONS, WorkerOptions, parse_fast, run_worker

__all__ = ["FAST_OPTIONS", "WorkerOptions", "parse_fast", "run_worker", "worker_command"]


def worker_command(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="Jobs run at once (default 100).")
    ] = None,
    queues: Annotated[
        str | None, typer.Option("--queues", "-q", help="Comma-separated queues to serve (default: all).")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Drain: exit when nothing due is left and nothing runs.")
    ] = False,
    poll_interval: Annotated[
        float | None,
        typer.Option("--poll-interval", min=0.01, help="Fallback poll period in seconds (default 1)."),
    ] = None,
    lease: Annotated[
        float | None,
        typer.Option("--lease", min=0.1, help="Job lease in seconds; a dead worker's jobs rerun after it."),
    ] = None,
    app: Annotated[str | None, typer.Option("--app", "-a", help=APP_HELP)] = None,
    grace: Annotated[
        float | None,
        typer.Option("--grace", min=0, help="Seconds in-flight jobs may finish on SIGTERM (default 30)."),
    ] = None,
    disable_ocr: Annotated[
        bool, typer.Option("--disable-ocr", help="Do not OCR image-only PDF pages (they are skipped).")
    ] = False,
    http_port: Annotated[
        int | None,
        typer.Option("--http-port", min=0, help="Serve /healthz, /readyz and /metrics on this port."),
    ] = None,
    http_host: Annotated[
        str | None, typer.Option("--http-host", help="Address for --http-port (default 127.0.0.1).")
    ] = None,
) -> None:
    """Run a worker: claim jobs, run them, record their outcomes."""
    run_worker(
        settings_of(ctx),
        WorkerOptions(
            concurrency, queues, once, poll_interval, lease, app, grace, disable_ocr, http_port, http_host
        ),
    )
