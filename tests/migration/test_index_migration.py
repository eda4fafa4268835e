"""The index migration (2): its tables on every backend, and a PostgreSQL server without pgvector,
where it is refused in one line while the queue schema (1) stays usable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from schema_probe import has_pgvector, table_names

from ingestq.errors import SchemaError
from ingestq.model.job import NewJob
from ingestq.settings import Settings
from ingestq.store import Store, open_store

INDEX_TABLES = {
    "ingestq_collections",
    "ingestq_documents",
    "ingestq_chunks",
    "ingestq_blobs",
    "ingestq_embed_cache",
    "ingestq_rate_buckets",
}


async def test_index_tables_exist_after_migration(store: Store, database_url: str) -> None:
    if not has_pgvector(database_url):
        pytest.skip("pgvector is not installed on this server")
    assert table_names(database_url) >= INDEX_TABLES


async def test_without_pgvector_the_queue_schema_stays(database_url: str) -> None:
    if has_pgvector(database_url):
        pytest.skip("this server has pgvector (the machine's PostgreSQL 15 without it runs this test)")
    store = open_store(Settings(database_url=database_url, auto_migrate=False))
    await store.open()
    try:
        with pytest.raises(SchemaError, match="pgvector is not installed on this server") as info:
            await store.migrate()
        assert "\n" not in str(info.value)
        version, latest = await store.schema_version()
        assert (version, latest) == (1, 2)
        (job,) = await store.job_insert_many([NewJob(kind="k")], datetime(2030, 1, 1, tzinfo=UTC))
        assert await store.job_get(job.id) == job
    finally:
        await store.close()
