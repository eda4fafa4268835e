"""`ingestq search QUERY [-k N] [--collection C] [--mode hybrid|vector|text] [--json]`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ingestq.client.client import Client
from ingestq.client.documents import Documents, SearchMode
from ingestq.model.document import Hit

from .common import console, print_json, settings_of, with_client
from .errors import CliError


def hit_json(hit: Hit) -> dict[str, Any]:
    return {
        "score": hit.score,
        "collection": hit.collection,
        "document_id": hit.document_id,
        "title": hit.title,
        "source": hit.source,
        "page": hit.page,
        "heading_path": list(hit.heading_path),
        "text": hit.text,
        "chunk_id": hit.chunk_id,
        "metadata": hit.metadata,
    }


def hits_table(hits: list[Hit], width: int = 240) -> Table:
    table = Table(show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("document")
    table.add_column("text")
    for rank, hit in enumerate(hits, start=1):
        where = hit.title or hit.document_id
        if hit.heading_path:
            where += "\n" + " > ".join(hit.heading_path)
        if hit.page is not None:
            where += f"\npage {hit.page}"
        text = " ".join(hit.text.split())
        table.add_row(str(rank), f"{hit.score:.4f}", where, text[:width] + ("…" if len(text) > width else ""))
    return table


def search_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="How many hits.")] = 10,
    collection: Annotated[str | None, typer.Option("--collection", "-C", help="Collection.")] = None,
    mode: Annotated[str, typer.Option(help="hybrid (default), vector or text.")] = "hybrid",
    json_: Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")] = False,
) -> None:
    """Search a collection: vector and full-text results fused (hybrid), or either alone."""
    if mode not in ("hybrid", "vector", "text"):
        raise CliError(f"--mode {mode!r}: expected hybrid, vector or text")
    search_mode: SearchMode = mode  # type: ignore[assignment]
    settings = settings_of(ctx)

    async def action(client: Client) -> list[Hit]:
        return await Documents(client, settings).search(query, k, collection, mode=search_mode)

    hits = with_client(ctx, action)
    if json_:
        print_json({"query": query, "hits": [hit_json(h) for h in hits]})
    elif not hits:
        console.print("no hits")
    else:
        console.print(hits_table(hits))
