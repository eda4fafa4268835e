"""`ingestq queues set | pause | resume | list`: per-queue limits (backpressure) and pausing."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ingestq.client.client import Client
from ingestq.model.job import QueueConfig

from .common import console, print_json, with_client
from .errors import CliError
from .render import to_json


def _queue_json(config: QueueConfig) -> dict[str, Any]:
    return {**to_json(config), "paused": config.paused}


def _paused(config: QueueConfig) -> str:
    return "" if config.paused_at is None else f"paused since {config.paused_at:%Y-%m-%d %H:%M:%S}"


queues_app = typer.Typer(help="Queue settings.", no_args_is_help=True)


@queues_app.command("set")
def set_queue(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Queue name.")],
    max_depth: Annotated[
        int | None, typer.Option(min=0, help="Most unfinished jobs the queue may hold; enqueue beyond fails.")
    ] = None,
    unbounded: Annotated[bool, typer.Option("--unbounded", help="Remove the limit.")] = False,
) -> None:
    """Set a queue's maximum depth (or remove it with --unbounded)."""
    if (max_depth is None) == (not unbounded):
        raise CliError("give exactly one of --max-depth N or --unbounded")

    async def action(client: Client) -> QueueConfig:
        return await client.configure_queue(name, None if unbounded else max_depth)

    config = with_client(ctx, action)
    limit = "unbounded" if config.max_depth is None else f"max depth {config.max_depth}"
    console.print(f"queue {config.name}: {limit}")


@queues_app.command("pause")
def pause_queue(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Queue name.")]) -> None:
    """Pause a queue: workers stop claiming its jobs at their next heartbeat (within a third of their
    lease). It still accepts jobs; jobs already running finish."""

    async def action(client: Client) -> QueueConfig:
        return await client.pause_queue(name)

    config = with_client(ctx, action)
    console.print(f"queue {config.name}: {_paused(config)}")


@queues_app.command("resume")
def resume_queue(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Queue name.")]) -> None:
    """Resume a paused queue: workers claim its jobs again from their next heartbeat."""

    async def action(client: Client) -> QueueConfig:
        return await client.resume_queue(name)

    config = with_client(ctx, action)
    console.print(f"queue {config.name}: resumed")


@queues_app.command("list")
def list_queues(
    ctx: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")] = False,
) -> None:
    """List the queues that have settings (a max depth, or paused)."""

    async def action(client: Client) -> list[QueueConfig]:
        return await client.queues()

    configs = with_client(ctx, action)
    if json_:
        print_json([_queue_json(c) for c in configs])
        return
    table = Table("queue", "max depth", "paused", box=None, header_style="bold")
    for config in configs:
        depth = "unbounded" if config.max_depth is None else str(config.max_depth)
        table.add_row(config.name, depth, _paused(config))
    console.print(table)
