"""The index migration (2): its tables on every backend, and a PostgreSQL server without pgvector,
where it is refused in one line while the queue schema (1, and the queue-only 3) stays usable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from schema_probe import has_pgvector, table_names

from ingestq.errors import FeatureUnavailable, SchemaError
from ingestq.model.job import NewJob, WorkerBeat
from ingestq.settings import Settings
from ingestq.store import Store, open_store
from ingestq.store.postgres import migrator as postgres_migrator

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
        # 3 and 5 (queue schema only) are applied past the refused 2
        assert (version, latest) == (1, postgres_migrator.LATEST)
        now = datetime(2030, 1, 1, tzinfo=UTC)
        (job,) = await store.job_insert_many([NewJob(kind="k")], now)
        assert await store.job_get(job.id) == job
        beat = WorkerBeat("w1", "host", 1, None, 1, (), 30.0, unavailable="parser down; fix it")
        await store.worker_heartbeat(beat, now)
        assert [w.unavailable for w in await store.worker_list(now)] == ["parser down; fix it"]
    finally:
        await store.close()


async def test_a_queue_only_migration_applies_past_a_refused_one(
    embedded_pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without an extension refuses the index migration; the later queue-only migrations (3, the
    workers' `unavailable`; 5, paused queues; 6, nothing on PostgreSQL) still apply there, those built on
    the documents tables (4, 7, 8) do not, and the version stays at the unbroken run (1)."""
    from ingestq.store.postgres import migrator

    (first, (_, index_name, _), third, fourth, fifth, *later) = migrator.MIGRATIONS
    queue_only = {v for v, _, sql in migrator.MIGRATIONS if migrator.QUEUE_ONLY in sql}
    by_name = {name: v for v, name, _ in migrator.MIGRATIONS}
    assert {3, 5} <= queue_only
    assert by_name["service_dedupe"] not in queue_only  # built on the documents tables
    assert by_name["webhooks"] not in queue_only  # triggers on the documents table
    assert by_name["index_retention"] not in queue_only  # the embedding cache's index
    refused = (
        "DO $$ BEGIN RAISE EXCEPTION 'no such extension' USING ERRCODE = 'feature_not_supported'; END $$;"
    )
    monkeypatch.setattr(
        migrator, "MIGRATIONS", [first, (2, index_name, refused), third, fourth, fifth, *later]
    )
    name = embedded_pg.create_db(migrated=False)
    try:
        store = open_store(Settings(database_url=embedded_pg.url_for(name), auto_migrate=False))
        await store.open()
        try:
            with pytest.raises(FeatureUnavailable, match="no such extension"):
                await store.migrate()
            assert await store.schema_version() == (1, migrator.LATEST)
            assert await store.queue_schema_missing() == []  # the queue is current all the same
            now = datetime(2030, 1, 1, tzinfo=UTC)
            beat = WorkerBeat("w1", "host", 1, None, 1, (), 30.0, unavailable="parser down; fix it")
            await store.worker_heartbeat(beat, now)
            assert [w.unavailable for w in await store.worker_list(now)] == ["parser down; fix it"]
            with pytest.raises(FeatureUnavailable):  # 2 is tried again, 3 and 5 are not applied twice
                await store.migrate()
        finally:
            await store.close()
    finally:
        embedded_pg.drop_db(name)


async def test_workers_report_why_they_are_unavailable(store: Store) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    await store.worker_heartbeat(WorkerBeat("w1", "h", 1, None, 2, (), 30.0), now)
    await store.worker_heartbeat(WorkerBeat("w2", "h", 2, ("ingest",), 2, (), 30.0, "no parser; fix"), now)
    assert [(w.worker_id, w.unavailable) for w in await store.worker_list(now)] == [
        ("w1", None),
        ("w2", "no parser; fix"),
    ]
    await store.worker_heartbeat(WorkerBeat("w2", "h", 2, ("ingest",), 2, (), 30.0), now)  # mended
    assert [w.unavailable for w in await store.worker_list(now)] == [None, None]
