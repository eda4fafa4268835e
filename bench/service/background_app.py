"""The pattern `ingestq serve` replaces, as the seed applications wrote it: a FastAPI app that ingests
in `BackgroundTasks` and keeps the status in a dict in memory. It runs ingestq's own pipeline functions
in-process (parse_document, TokenChunker, the same sentence-transformers embedder), so the two sides do
the same work; only where the work runs and where the state lives differ.

    uvicorn bench.service.background_app:app     # BENCH_PEER_INDEX=path.db: the "index" it writes

The index (one row per indexed document, with its chunk count and vectors' size) is a SQLite file, so
what a restart loses can be counted afterwards. A bench fixture, not part of ingestq.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import BackgroundTasks, FastAPI, File, HTTPException, UploadFile

from ingestq.pipeline.chunk.token import TokenChunker
from ingestq.pipeline.embed.sentence_transformers import SentenceTransformerEmbedder
from ingestq.pipeline.model import SourceDocument
from ingestq.pipeline.parse import parse_document

STATUS: dict[str, str] = {}
_MODEL: dict[str, Any] = {}
_WRITE = threading.Lock()


def _index() -> sqlite3.Connection:
    conn = sqlite3.connect(os.environ.get("BENCH_PEER_INDEX", "peer-index.db"), timeout=30)
    conn.execute("CREATE TABLE IF NOT EXISTS indexed (id TEXT PRIMARY KEY, chunks INT, floats INT)")
    return conn


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    embedder = SentenceTransformerEmbedder()
    embedder.encode_sync(["warm up"])
    _MODEL["embedder"] = embedder
    _MODEL["chunker"] = TokenChunker(embedder.tokenizer, embedder.max_tokens)
    _index().close()
    yield


app = FastAPI(lifespan=lifespan)


def ingest(doc_id: str, name: str, data: bytes) -> None:
    """Runs in Starlette's thread pool after the response (a sync background task)."""
    try:
        STATUS[doc_id] = "parsing"
        parsed = parse_document(SourceDocument(data, name=name, source=f"upload:{name}"))
        STATUS[doc_id] = "embedding"
        chunks = _MODEL["chunker"].chunk(parsed, doc_id)
        vectors = _MODEL["embedder"].encode_sync([c.text for c in chunks])
        with _WRITE, _index() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO indexed VALUES (?, ?, ?)",
                (doc_id, len(chunks), sum(len(v) for v in vectors)),
            )
        STATUS[doc_id] = "indexed"
    except Exception as exc:
        STATUS[doc_id] = f"failed: {exc}"


@app.post("/upload", status_code=202)
async def upload(background: BackgroundTasks, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    data = await file.read()
    doc_id = hashlib.sha256(data).hexdigest()[:16]
    STATUS[doc_id] = "pending"
    background.add_task(ingest, doc_id, file.filename or "upload", data)
    return {"documents": [{"document_id": doc_id, "location": f"/status/{doc_id}"}]}


@app.get("/status/{doc_id}")
async def status(doc_id: str) -> dict[str, str]:
    if doc_id not in STATUS:
        raise HTTPException(404, "unknown document")
    return {"id": doc_id, "status": STATUS[doc_id]}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/indexed")
async def indexed() -> dict[str, int]:
    with _index() as conn:
        (n,) = conn.execute("SELECT count(*) FROM indexed").fetchone()
    return {"indexed": int(n)}
