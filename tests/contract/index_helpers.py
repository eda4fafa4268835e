"""Helpers of the index contract tests: the store as a Backend, small hand-made documents."""

from __future__ import annotations

from typing import Any, cast

import pytest
from contract_helpers import T0, claim_one, insert, outcome

from ingestq.model.document import ChunkRecord, IndexWrite, Vector
from ingestq.model.job import Job, Outcome, OutcomeKind
from ingestq.store import Store
from ingestq.store.base import Backend, IndexStore

MODEL = "test-model"
DIM = 4
NO_PGVECTOR = "pgvector is not installed on this server"


async def index_of(store: Store) -> Backend:
    """The store as a Backend; skips the test on a PostgreSQL server without pgvector (the queue
    migrations are applied there, the index migration is refused)."""
    if not isinstance(store, IndexStore):
        pytest.skip(f"the {store.backend} store does not implement IndexStore yet")
    version, latest = await store.schema_version()
    if store.backend == "postgresql" and version < latest:
        pytest.skip(NO_PGVECTOR)
    return cast(Backend, store)


def chunk(doc: str, ordinal: int, body: str, vector: Vector, **fields: Any) -> ChunkRecord:
    return ChunkRecord(
        id=f"{doc}:{ordinal}",
        ordinal=ordinal,
        text=body,
        body=body,
        heading_path=fields.pop("heading_path", ("Intro",)),
        page=fields.pop("page", None),
        page_end=fields.pop("page_end", None),
        token_count=len(body.split()),
        text_hash=f"h-{body}",
        embedding=vector,
        **fields,
    )


def write(doc: str, *chunks: ChunkRecord, collection: str = "c", **fields: Any) -> IndexWrite:
    return IndexWrite(
        collection=collection,
        document_id=doc,
        media_type=fields.pop("media_type", "text/plain"),
        content_hash=fields.pop("content_hash", f"sha-{doc}"),
        title=fields.pop("title", f"Title {doc}"),
        model_id=fields.pop("model_id", MODEL),
        settings_hash=fields.pop("settings_hash", "s1"),
        chunks=chunks,
        **fields,
    )


async def running_job(ix: Backend, worker: str = "w1") -> tuple[Job, Outcome]:
    """Insert and claim one job; the SUCCEEDED outcome its holder would report."""
    await insert(ix, T0)
    job = await claim_one(ix, T0, worker=worker)
    return job, outcome(job, OutcomeKind.SUCCEEDED, result={"chunks": 1})


async def commit(ix: Backend, w: IndexWrite) -> bool:
    """Commit `w` as the outcome of a fresh job."""
    _, o = await running_job(ix)
    return await ix.document_commit(w, o, T0)
