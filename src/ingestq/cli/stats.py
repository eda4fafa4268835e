"""`ingestq stats`: queue depths per state, the oldest due job's age, live workers."""

from __future__ import annotations

from typing import Annotated

import typer

from ingestq.client.client import Client
from ingestq.model.job import QueueStats, WorkerInfo

from .common import console, print_json, with_client
from .render import stats_table, to_json, workers_table


def stats(
    ctx: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")] = False,
) -> None:
    """Show jobs per queue and state, and the workers alive."""

    async def action(client: Client) -> tuple[list[QueueStats], list[WorkerInfo]]:
        return await client.stats(), await client.workers()

    queues, workers = with_client(ctx, action)
    if json_:
        print_json({"queues": to_json(queues), "workers": to_json(workers)})
        return
    console.print(stats_table(queues))
    if workers:
        console.print()
        console.print(workers_table(workers))
