"""`ingestq enqueue KIND`: put jobs on the queue from the shell."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ingestq.client.client import Client
from ingestq.model.job import Job

from .common import APP_HELP, console, load_registry, print_json, with_client
from .errors import CliError
from .render import to_json


def parse_payload(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--payload is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CliError(f"--payload must be a JSON object like '{{\"key\": 1}}', got {type(value).__name__}")
    return value


def enqueue(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="Job kind, e.g. ingestq.probe or myapp.tasks.send_email.")],
    payload: Annotated[str | None, typer.Option(help="Keyword arguments as a JSON object.")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue (default: the kind's, else 'default').")] = None,
    priority: Annotated[int | None, typer.Option(help="Higher runs first.")] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds to wait before the job is due.")] = None,
    dedupe_key: Annotated[
        str | None, typer.Option(help="Return the unfinished job with this key instead of a new one.")
    ] = None,
    max_attempts: Annotated[int | None, typer.Option(min=1, help="Attempts before it fails.")] = None,
    count: Annotated[int, typer.Option(min=1, help="Enqueue this many copies in one transaction.")] = 1,
    app: Annotated[str | None, typer.Option(help=APP_HELP)] = None,
    any_kind: Annotated[
        bool, typer.Option("--any-kind", help="Accept a kind unknown here (a remote worker may know it).")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the job(s) as JSON.")] = False,
) -> None:
    """Enqueue a job (or --count copies) and print its id."""
    data = parse_payload(payload)
    if dedupe_key is not None and count > 1:
        raise CliError("--dedupe-key with --count > 1 would enqueue one job: use one or the other")
    registry = load_registry(app)

    async def action(client: Client) -> list[Job]:
        if not any_kind and kind not in client.registry.tasks:
            known = ", ".join(client.registry.kinds())
            raise CliError(
                f"unknown job kind {kind!r} (known here: {known}); pass --app module to load yours, "
                "or --any-kind if a worker elsewhere knows it"
            )
        if count == 1:
            job = await client.enqueue(
                kind,
                data,
                dedupe_key=dedupe_key,
                queue=queue,
                priority=priority,
                delay=delay,
                max_attempts=max_attempts,
            )
            return [job]
        return await client.enqueue_many(
            kind,
            (data for _ in range(count)),
            queue=queue,
            priority=priority,
            delay=delay,
            max_attempts=max_attempts,
        )

    jobs = with_client(ctx, action, registry=registry)
    if json_:
        print_json(to_json(jobs[0]) if count == 1 else to_json(jobs))
    elif count == 1:
        job = jobs[0]
        console.print(f"job {job.id} {job.state.value} ({job.kind} on queue {job.queue})")
    else:
        console.print(f"enqueued {len(jobs)} jobs ({kind}), ids {jobs[0].id}..{jobs[-1].id}")
