"""`ingestq documents list | show | reprocess | delete`."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer
from rich.table import Table

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.document import ChunkRecord, Document, DocumentStatus
from ingestq.model.job import Job

from .common import console, print_json, settings_of, with_client

documents_app = typer.Typer(help="Inspect and manage ingested documents.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")]
CollectionOpt = Annotated[str | None, typer.Option("--collection", "-C", help="Collection.")]
DocId = Annotated[str, typer.Argument(metavar="ID", help="Document id (see `documents list`).")]


def doc_json(doc: Document) -> dict[str, Any]:
    return dataclasses.asdict(doc)


@documents_app.command("list")
def list_documents(
    ctx: typer.Context,
    collection: CollectionOpt = None,
    status: Annotated[DocumentStatus | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Page size.")] = 100,
    after: Annotated[str | None, typer.Option(help="Next page: ids after this one.")] = None,
    json_: JsonFlag = False,
) -> None:
    """List documents by collection and id, with status, chunks and version."""
    settings = settings_of(ctx)

    async def action(client: Client) -> list[Document]:
        return await Documents(client, settings).list(collection, status, after, limit)

    docs = with_client(ctx, action)
    if json_:
        print_json({"documents": [doc_json(d) for d in docs]})
        return
    if not docs:
        console.print("no documents")
        return
    table = Table()
    for column in ("collection", "id", "status", "type", "chunks", "version", "title / error"):
        table.add_column(column)
    for d in docs:
        table.add_row(
            d.collection,
            d.id,
            d.status.value,
            (d.media_type or "").rsplit("/", 1)[-1][:12],
            str(d.chunk_count),
            str(d.version),
            d.error or d.title or "",
        )
    console.print(table)
    if len(docs) == limit:
        console.print(f"[dim]more: --after {docs[-1].id!r}[/]", markup=True)


@documents_app.command("show")
def show(
    ctx: typer.Context,
    document_id: DocId,
    collection: CollectionOpt = None,
    chunks: Annotated[bool, typer.Option("--chunks", help="Also print the chunks.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Show one document (and its chunks with --chunks)."""
    settings = settings_of(ctx)

    async def action(client: Client) -> tuple[Document, list[ChunkRecord]]:
        docs = Documents(client, settings)
        doc = await docs.get(document_id, collection)
        return doc, (await docs.chunks(document_id, collection) if chunks else [])

    doc, rows = with_client(ctx, action)
    if json_:
        body = doc_json(doc)
        if chunks:
            body["chunks"] = [dataclasses.asdict(c) for c in rows]
        print_json(body)
        return
    for key, value in doc_json(doc).items():
        console.print(f"{key:>14}: {value}", markup=False, highlight=False)
    for c in rows:
        where = " > ".join(c.heading_path)
        console.print(f"\n[{c.ordinal}] {where} ({c.token_count} tokens)", markup=False)
        console.print(c.body, markup=False, highlight=False)


@documents_app.command("reprocess")
def reprocess(
    ctx: typer.Context,
    document_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Document ids.")],
    collection: CollectionOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Queue documents again from their source (the current version stays searchable meanwhile)."""
    settings = settings_of(ctx)

    async def action(client: Client) -> list[Job]:
        return await Documents(client, settings).reprocess(document_ids, collection)

    jobs = with_client(ctx, action)
    if json_:
        print_json({"jobs": [j.id for j in jobs]})
    else:
        console.print(f"queued {len(jobs)} documents: jobs {', '.join(str(j.id) for j in jobs)}")


@documents_app.command("delete")
def delete(
    ctx: typer.Context,
    document_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Document ids.")],
    collection: CollectionOpt = None,
) -> None:
    """Delete documents with their chunks and vectors."""
    settings = settings_of(ctx)

    async def action(client: Client) -> int:
        docs = Documents(client, settings)
        for document_id in document_ids:
            await docs.delete(document_id, collection)
        return len(document_ids)

    console.print(f"deleted {with_client(ctx, action)} documents")
