"""The `ingestq` command tree (Typer): global options, then one sub-app or command per concern.

Errors a user can cause are reported once, by `GuardedGroup` (cli/errors.py), as one line on stderr.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer

from ingestq import __version__

from .common import settings_from_flags
from .errors import GuardedGroup

# Each command's module is imported only when that command runs (or for --help): `ingestq worker` then
# loads the worker, not Rich tables, the pipeline or the document commands. Name -> (module, attribute),
# the attribute being a command function or a Typer sub-app.
COMMANDS: dict[str, tuple[str, str]] = {
    "backfill": ("ingestq.cli.backfill", "backfill_command"),
    "bench": ("ingestq.cli.bench", "bench_app"),
    "db": ("ingestq.cli.db", "db_app"),
    "documents": ("ingestq.cli.documents", "documents_app"),
    "enqueue": ("ingestq.cli.enqueue", "enqueue"),
    "ingest": ("ingestq.cli.ingest", "ingest_command"),
    "jobs": ("ingestq.cli.jobs", "jobs_app"),
    "queues": ("ingestq.cli.queues", "queues_app"),
    "search": ("ingestq.cli.search", "search_command"),
    "serve": ("ingestq.cli.serve", "serve_command"),
    "stats": ("ingestq.cli.stats", "stats"),
    "worker": ("ingestq.cli.worker", "worker_command"),
}


class LazyGroup(GuardedGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        command = load_command(cmd_name)
        if command is not None:
            self.add_command(command, cmd_name)
        return command


def load_command(name: str) -> Any:
    """The click command for `name`, or None when its module is not part of this installation."""
    module_name, attribute = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    target = getattr(module, attribute)
    command: Any
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


app = typer.Typer(
    name="ingestq",
    cls=LazyGroup,
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
    ctx.obj = settings_from_flags(db, no_migrate)
