"""`ingestq db migrate | status`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import typer

from ingestq.client.client import Client

from .common import console, print_json, settings_of, with_client

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


def redact(url: str) -> str:
    """The URL without its password, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@db_app.command("migrate")
def migrate(ctx: typer.Context) -> None:
    """Apply pending migrations (safe to run concurrently, and when there are none)."""

    async def action(client: Client) -> tuple[list[int], tuple[int, int]]:
        applied = await client.migrate()
        return applied, await client.schema_version()

    # auto-migrate off: this command does the migrating, and says what it did
    applied, (version, _) = with_client(ctx, action, check_schema=False, auto_migrate=False)
    if applied:
        console.print(f"applied migration(s) {', '.join(map(str, applied))}; schema at version {version}")
    else:
        console.print(f"schema up to date (version {version})")


@db_app.command("status")
def status(
    ctx: typer.Context, json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Show the backend, the database URL and the schema version (does not migrate)."""
    settings = settings_of(ctx)

    async def action(client: Client) -> tuple[str, tuple[int, int]]:
        return client.store.backend, await client.schema_version()

    backend, (version, latest) = with_client(ctx, action, check_schema=False, auto_migrate=False)
    doc = {
        "backend": backend,
        "database_url": redact(settings.database_url),
        "schema_version": version,
        "latest_version": latest,
        "up_to_date": version == latest,
    }
    if json_:
        print_json(doc)
        return
    state = "up to date" if version == latest else f"behind: run `ingestq db migrate` (code has {latest})"
    console.print(f"backend  {backend}\ndatabase {doc['database_url']}\nschema   version {version}, {state}")
