"""PostgreSQL-only behaviour: schema, migrations, connection errors, finished counts, URL forms."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingestq.errors import SchemaError, StoreError
from ingestq.model.job import ClaimRequest, JobFilter, JobState, NewJob, Outcome, OutcomeKind, Retention
from ingestq.settings import Settings
from ingestq.store import open_store
from ingestq.store.postgres.migrator import LATEST
from ingestq.store.postgres.store import PostgresStore

PG_BACKENDS = ["pg"] + (["pg-ext"] if os.environ.get("INGESTQ_TEST_PG_URL") else [])
pytestmark = pytest.mark.parametrize("backend", PG_BACKENDS, indirect=True)

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def pg_server(backend: str, request: pytest.FixtureRequest) -> object:
    return request.getfixturevalue("embedded_pg" if backend == "pg" else "external_pg")


@pytest.fixture
async def fresh_url(pg_server: object) -> AsyncIterator[str]:
    """An empty, unmigrated database."""
    name = pg_server.create_db(migrated=False)  # type: ignore[attr-defined]
    try:
        yield pg_server.url_for(name)  # type: ignore[attr-defined]
    finally:
        pg_server.drop_db(name)  # type: ignore[attr-defined]


async def _open(url: str) -> PostgresStore:
    store = PostgresStore(url, pool_max_size=4)
    await store.open()
    return store


async def test_state_enum_matches_jobstate(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
            "WHERE t.typname = 'ingestq_job_state' ORDER BY e.enumsortorder"
        ).fetchall()
    assert [r[0] for r in rows] == [s.value for s in JobState]


def _has_pgvector(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    return bool(row and row[0])


async def test_concurrent_migrate_applies_once(fresh_url: str) -> None:
    if not _has_pgvector(fresh_url):
        pytest.skip("this server has no pgvector: the documents migration cannot apply")
    stores = [await _open(fresh_url) for _ in range(5)]
    try:
        assert await stores[0].schema_version() == (0, LATEST)
        results = await asyncio.gather(*(s.migrate() for s in stores))
        # Each migration is its own transaction under the advisory lock, so the stores may share the
        # work out (one applies 1-4, another 5-9): what matters is that each is applied exactly once.
        assert sorted(v for applied in results for v in applied) == list(range(1, LATEST + 1))
        assert all(applied == sorted(applied) for applied in results)
        assert await stores[0].schema_version() == (LATEST, LATEST)
    finally:
        for s in stores:
            await s.close()


async def test_schema_newer_than_code_raises(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ingestq_migrations (version, name) VALUES (99, 'future')")
    store = await _open(database_url)
    try:
        with pytest.raises(SchemaError, match="newer"):
            await store.schema_version()
        with pytest.raises(SchemaError, match="newer"):
            await store.migrate()
    finally:
        await store.close()


async def test_unmigrated_database_gives_schema_error(fresh_url: str) -> None:
    store = await _open(fresh_url)
    try:
        with pytest.raises(SchemaError, match="ingestq db migrate"):
            await store.job_get(1)
    finally:
        await store.close()


@pytest.mark.timeout(20)
async def test_unreachable_server_is_one_line_store_error(backend: str) -> None:
    store = open_store(Settings(database_url="postgresql://postgres@127.0.0.1:1/nothing"))
    with pytest.raises(StoreError) as info:
        await store.open()
    message = str(info.value)
    assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:1: connection refused")
    assert "\n" not in message


@pytest.mark.timeout(20)
async def test_unknown_database_and_role_are_named(pg_server: object) -> None:
    url = pg_server.url_for("no_such_db_ingestq")  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match=r'database "no_such_db_ingestq" does not exist') as info:
        await PostgresStore(url).open()
    assert "\n" not in str(info.value)
    bad_role = url.replace("postgresql://postgres", "postgresql://nobody_ingestq", 1)
    if bad_role != url:
        with pytest.raises(StoreError, match=r'"nobody_ingestq"'):
            await PostgresStore(bad_role).open()


async def test_postgres_scheme_is_accepted(database_url: str) -> None:
    alias = "postgres://" + database_url.removeprefix("postgresql://")
    store = open_store(Settings(database_url=alias))
    await store.open()
    try:
        version, latest = await store.schema_version()
        assert latest == LATEST
        assert version == (LATEST if _has_pgvector(database_url) else 1)
    finally:
        await store.close()


async def test_operations_before_open_raise_store_error(backend: str) -> None:
    with pytest.raises(StoreError, match="not open"):
        await PostgresStore("postgresql://postgres@127.0.0.1:1/x").job_get(1)


async def test_finished_counts_follow_every_transition(database_url: str) -> None:
    store = await _open(database_url)
    try:
        jobs = await store.job_insert_many([NewJob(kind="k", queue=q) for q in "aab"], NOW)
        claimed = await store.job_claim(ClaimRequest("w", 10, 30), NOW)
        assert len(claimed) == 3
        outcomes = [
            Outcome(claimed[0].id, "w", 1, OutcomeKind.SUCCEEDED),
            Outcome(claimed[1].id, "w", 1, OutcomeKind.FAILED, error="bad"),
            Outcome(claimed[2].id, "w", 1, OutcomeKind.SUCCEEDED),
        ]
        assert await store.job_finish_many(outcomes, NOW) == {j.id for j in claimed}

        def counts(stats: list) -> dict[tuple[str, JobState], int]:  # type: ignore[type-arg]
            return {(s.queue, st): n for s in stats for st, n in s.counts.items() if n}

        by_queue = {j.id: j.queue for j in jobs}
        expected: dict[tuple[str, JobState], int] = {}
        for o in outcomes:
            key = (by_queue[o.job_id], JobState(o.kind.value))
            expected[key] = expected.get(key, 0) + 1
        assert counts(await store.stats(NOW)) == expected

        failed = next(o.job_id for o in outcomes if o.kind is OutcomeKind.FAILED)
        await store.job_retry(failed, NOW)  # failed -> queued
        expected[(by_queue[failed], JobState.FAILED)] -= 1
        expected = {k: v for k, v in expected.items() if v}
        expected[(by_queue[failed], JobState.QUEUED)] = 1
        assert counts(await store.stats(NOW)) == expected

        # prune folds the delta log; purge subtracts
        assert await store.job_prune(Retention(succeeded=1.0), NOW + timedelta(seconds=5)) == 2
        assert counts(await store.stats(NOW)) == {(by_queue[failed], JobState.QUEUED): 1}
    finally:
        await store.close()


async def test_values_postgresql_cannot_store_are_value_errors(database_url: str) -> None:
    store = await _open(database_url)
    try:
        with pytest.raises(ValueError, match="out of range"):
            await store.job_insert_many([NewJob(kind="k", priority=2**40)], NOW)
        with pytest.raises(ValueError, match="PostgreSQL refused a value"):
            await store.job_insert_many([NewJob(kind="k\x00")], NOW)
        assert await store.job_list(JobFilter()) == []
    finally:
        await store.close()
