"""An upload's duplicate check (`document_by_content`) on SQLite looks the bytes up by their indexes, not
by reading the collection: with `ORDER BY id` over its two branches the planner merged them along the
(collection, id) key, every document of the collection per upload, and at 10,000 documents that was half
of the upload path's CPU (bench.service uploads degraded run after run as the collection grew)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import apsw

from ingestq.settings import Settings
from ingestq.store import open_store
from ingestq.store.sqlite.index_engine import Q


def test_the_duplicate_check_searches_the_blob_and_content_indexes(tmp_path: Path) -> None:
    path = tmp_path / "q.db"

    async def migrate() -> None:
        store = open_store(Settings(database_url=f"sqlite:///{path}"))
        await store.open()
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(migrate())
    conn = apsw.Connection(str(path))
    try:
        conn.execute(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5000) "
            "INSERT INTO ingestq_documents (collection, id, source, status, metadata, blob_id, "
            "created_at, updated_at) "
            "SELECT 'c', 'doc' || x, 'upload:x', 'pending', '{}', hex(randomblob(32)), 0, 0 FROM n"
        )
        plan = [
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN " + Q["document_by_content"], {"collection": "c", "hash": "h"}
            )
        ]
    finally:
        conn.close()
    searches = [
        step for step in plan if step.startswith(("SEARCH ingestq_documents", "SCAN ingestq_documents"))
    ]
    assert searches == [
        "SEARCH ingestq_documents USING INDEX ingestq_documents_blob (collection=? AND blob_id=?)",
        "SEARCH ingestq_documents USING INDEX ingestq_documents_content (collection=? AND content_hash=?)",
    ], plan
