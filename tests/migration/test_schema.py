"""Schema and migrations, on every backend: versions, concurrency, refusal of a newer schema, and the
job states the schema accepts (they must equal core.job.JobState)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from schema_probe import (
    forget_versions,
    job_state_values,
    record_version,
    skip_without_pgvector,
    table_names,
)

from ingestq import Client
from ingestq.errors import SchemaError
from ingestq.model.job import JobState, NewJob
from ingestq.settings import Settings
from ingestq.store import Store, open_store


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of the parametrised backend with no ingestq schema at all."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'ingestq.db'}"
        return
    server = request.getfixturevalue("embedded_pg" if backend == "pg" else "external_pg")
    name = server.create_db(migrated=False)
    try:
        yield server.url_for(name)
    finally:
        server.drop_db(name)


@pytest.fixture
async def empty_store(empty_url: str) -> AsyncIterator[Store]:
    s = open_store(Settings(database_url=empty_url, auto_migrate=False))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_job_states_equal_the_schema(database_url: str) -> None:
    assert job_state_values(database_url) == {s.value for s in JobState}


async def test_migrated_database_is_at_the_latest_version(store: Store, database_url: str) -> None:
    skip_without_pgvector(database_url)
    version, latest = await store.schema_version()
    assert version == latest >= 1
    assert await store.migrate() == []  # idempotent


async def test_fresh_database_migrates_every_version(empty_store: Store, empty_url: str) -> None:
    skip_without_pgvector(empty_url)
    version, latest = await empty_store.schema_version()
    assert version == 0
    applied = await empty_store.migrate()
    assert applied == list(range(1, latest + 1))
    assert await empty_store.schema_version() == (latest, latest)
    assert {"ingestq_jobs", "ingestq_migrations", "ingestq_queues", "ingestq_workers"} <= table_names(
        empty_url
    )


async def test_unmigrated_database_says_to_migrate(empty_store: Store) -> None:
    with pytest.raises(SchemaError, match="ingestq db migrate"):
        await empty_store.job_get(1)
    with pytest.raises(SchemaError, match="ingestq db migrate"):
        await empty_store.job_insert_many([NewJob(kind="k")], datetime(2030, 1, 1, tzinfo=UTC))


async def test_a_client_that_does_not_migrate_refuses_a_queue_schema_behind_the_code(
    database_url: str,
) -> None:
    # Migration 3 adds the workers' `unavailable` column: without it a worker's first heartbeat
    # failed on the missing column, because the check only asked for migration 1.
    skip_without_pgvector(database_url)
    settings = Settings(database_url=database_url, auto_migrate=False)
    async with Client.connect(settings):  # current: opens
        pass
    forget_versions(database_url, 3)
    with pytest.raises(SchemaError, match=r"lacks migration\(s\) 3\b.*ingestq db migrate"):
        await Client.connect(settings)


async def test_concurrent_migrations_apply_each_version_once(empty_url: str) -> None:
    skip_without_pgvector(empty_url)
    settings = Settings(database_url=empty_url, auto_migrate=False)
    stores = [open_store(settings) for _ in range(4)]
    for s in stores:
        await s.open()
    try:
        results = await asyncio.gather(*(s.migrate() for s in stores))
        applied = sorted(v for r in results for v in r)
        latest = (await stores[0].schema_version())[1]
        assert applied == list(range(1, latest + 1))
    finally:
        for s in stores:
            await s.close()


async def test_newer_schema_is_refused(store: Store, database_url: str) -> None:
    _, latest = await store.schema_version()
    record_version(database_url, latest + 7)
    with pytest.raises(SchemaError, match=r"newer than this ingestq.*upgrade ingestq") as info:
        await store.schema_version()
    assert str(latest + 7) in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(SchemaError, match="upgrade ingestq"):
        await store.migrate()
