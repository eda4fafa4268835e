"""The `ingestq` command: global options, then one sub-app or command per concern.

Errors a user can cause are reported once, by `GuardedGroup` (cli/errors.py), as one line on stderr.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer

from ingestq import __version__
from ingestq.settings import Settings

from .db import db_app
from .enqueue import enqueue
from .errors import GuardedGroup
from .jobs import jobs_app
from .queues import queues_app
from .stats import stats

app = typer.Typer(
    name="ingestq",
    cls=GuardedGroup,
    help="ingestq: a durable job queue and ingestion pipeline on SQLite or PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL: sqlite:///path.db or postgresql://... "
            "(default: $INGESTQ_DATABASE_URL, else sqlite:///./.ingestq/ingestq.db)",
            show_default=False,
        ),
    ] = None,
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="Do not apply pending migrations on connect.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    # Settings is the only reader of the environment: flags become init overrides, which win over env.
    overrides: dict[str, Any] = {}
    if db is not None:
        overrides["database_url"] = db
    if no_migrate:
        overrides["auto_migrate"] = False
    ctx.obj = Settings(**overrides)


app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(queues_app, name="queues")
app.command("enqueue")(enqueue)
app.command("stats")(stats)


def _optional(module: str) -> Any:
    """Commands owned by other parts (worker, bench) register themselves once their module exists."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None


def _register_optional() -> None:
    worker = _optional("ingestq.cli.worker")
    if worker is not None:
        app.command("worker")(worker.worker_command)
    ingest = _optional("ingestq.cli.ingest")
    if ingest is not None:
        from .backfill import backfill_command
        from .documents import documents_app
        from .search import search_command

        app.command("ingest")(ingest.ingest_command)
        app.command("search")(search_command)
        app.command("backfill")(backfill_command)
        app.add_typer(documents_app, name="documents")
    bench = _optional("ingestq.cli.bench")
    if bench is not None:
        sub = getattr(bench, "bench_app", None) or getattr(bench, "app", None)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name="bench")


_register_optional()


def main() -> None:
    app(prog_name="ingestq")


if __name__ == "__main__":
    main()
