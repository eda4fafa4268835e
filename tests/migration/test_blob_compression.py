"""Migration 9 on PostgreSQL: uploaded bytes are never compressed with pglz, which spent 4.8 ms of the
server's CPU on each 200 KB PDF to save nothing. lz4 where the server has it, uncompressed otherwise
(the embedded test server is built without lz4; the machine's PostgreSQL 15 has it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ingestq.pipeline.ingest.enqueue import index_store
from ingestq.settings import Settings
from ingestq.store import open_store
from ingestq.store.postgres import migrator

COMPRESSIBLE = b"every page of this document says the same thing. " * 6000  # 300 KB; pglz takes it


def _migration_sql() -> str:
    (sql,) = [sql for _, name, sql in migrator.MIGRATIONS if name == "blob_compression"]
    return sql


def _lz4_supported(conn: psycopg.Connection[Any]) -> bool:
    try:
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE lz4_probe (b bytea COMPRESSION lz4)")
            conn.execute("DROP TABLE lz4_probe")
        return True
    except psycopg.errors.FeatureNotSupported:
        return False


def _stored_as(conn: psycopg.Connection[Any]) -> tuple[str | None, str]:
    """(pg_column_compression of the stored value, the column's storage: x extended, e external)."""
    row = conn.execute("SELECT pg_column_compression(data) FROM ingestq_blobs").fetchone()
    storage = conn.execute(
        "SELECT attstorage FROM pg_attribute WHERE attrelid = 'ingestq_blobs'::regclass AND attname = 'data'"
    ).fetchone()
    assert row is not None
    assert storage is not None
    return row[0], str(storage[0])


@pytest.fixture
def migrated_url(embedded_pg: Any) -> Iterator[str]:
    name = embedded_pg.create_db()  # from the migrated template (created outside the test's event loop)
    try:
        yield embedded_pg.url_for(name)
    finally:
        embedded_pg.drop_db(name)


async def test_an_upload_is_stored_without_pglz(migrated_url: str) -> None:
    """Through the store, on the migrated embedded server (pgvector, no lz4): stored as it came."""
    store = open_store(Settings(database_url=migrated_url))
    await store.open()
    try:
        await index_store(store).blob_put(COMPRESSIBLE, datetime(2030, 1, 1, tzinfo=UTC))
    finally:
        await store.close()
    with psycopg.connect(migrated_url) as conn:
        compression, storage = _stored_as(conn)
        assert compression != "pglz"
        if _lz4_supported(conn):
            assert compression == "lz4"
        else:
            assert (compression, storage) == (None, "e")


@pytest.mark.parametrize("server", ["embedded_pg", "external_pg"])
def test_the_migration_picks_lz4_where_the_server_has_it(server: str, request: pytest.FixtureRequest) -> None:
    """Both branches of the migration's SQL, each on the server that takes it: a bare `ingestq_blobs`
    (the index schema needs pgvector, which the machine's server lacks)."""
    if server == "external_pg" and not os.environ.get("INGESTQ_TEST_PG_URL"):
        pytest.skip("no INGESTQ_TEST_PG_URL server")
    pg = request.getfixturevalue(server)
    name = pg.create_db(migrated=False)
    try:
        with psycopg.connect(pg.url_for(name), autocommit=True) as conn:
            conn.execute("CREATE TABLE ingestq_blobs (id text PRIMARY KEY, data bytea NOT NULL)")
            conn.execute(_migration_sql().encode())
            conn.execute("INSERT INTO ingestq_blobs VALUES ('a', %s)", (COMPRESSIBLE,))
            compression, storage = _stored_as(conn)
            if _lz4_supported(conn):
                assert (compression, storage) == ("lz4", "x")
            else:
                assert (compression, storage) == (None, "e")
    finally:
        pg.drop_db(name)
