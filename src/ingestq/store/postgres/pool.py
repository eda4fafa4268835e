"""The connection pool of PostgresStore: open (failing fast with libpq's reason), close, check out a
connection, and translate the driver's errors a user can cause into one-line ingestq errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingestq.errors import FeatureUnavailable, SchemaError, StoreError
from ingestq.store.common import NOT_INITIALISED
from ingestq.store.postgres.connect import (
    check_idle_connection,
    connect_kwargs,
    first_line,
    normalise_url,
    store_error,
    where,
)
from ingestq.store.postgres.revive import Revival, RevivingPool
from ingestq.store.postgres.statements import Q

Conn = psycopg.AsyncConnection[tuple[Any, ...]]

POOL_TIMEOUT_S = 15.0
"""How long an operation waits for a pooled connection (e.g. while the server restarts) before it
raises StoreError; the worker treats that as a transient failure and tries again."""
RECONNECT_TIMEOUT_S = 5.0
# Tables of migration 2, which needs pgvector: on a server without it the queue works and these are
# missing, which deserves a better message than "not initialised".
INDEX_TABLES = frozenset(
    {
        "ingestq_collections",
        "ingestq_blobs",
        "ingestq_documents",
        "ingestq_chunks",
        "ingestq_embed_cache",
        "ingestq_rate_buckets",
        # webhooks (migration 7) build on the documents tables: absent with them
        "ingestq_webhook_endpoints",
        "ingestq_job_callbacks",
        "ingestq_document_callbacks",
        "ingestq_webhook_deliveries",
        "ingestq_webhook_attempts",
    }
)
NO_INDEX_SCHEMA = (
    "documents, search and webhooks are not set up in this database: it needs the pgvector extension "
    "(install it on the server, then run `ingestq db migrate`); the queue works without it"
)
NOT_OPEN = "the PostgreSQL store is not open (call `await store.open()` first)"


class PostgresPool:
    """The connections of PostgresStore: PostgresIndex (the IndexStore half) and PostgresStore (the queue)
    build on `_connection`, one class on top of the other."""

    def __init__(self, url: str, pool_max_size: int, pool_timeout: float) -> None:
        self._url = normalise_url(url)
        self._pool_timeout = pool_timeout
        self._kwargs = connect_kwargs(self._url)
        self._where = where(self._url)
        self._pool_max_size = pool_max_size
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._urgent: AsyncConnectionPool[Conn] | None = None
        self._urgent_opening = asyncio.Lock()

    async def open(self) -> None:
        if self._pool is not None:
            return
        # One direct connection first: it fails fast with libpq's own reason, which a pool would only
        # log while retrying until its timeout.
        try:
            probe = await psycopg.AsyncConnection.connect(self._url, autocommit=True, **self._kwargs)
        except (psycopg.Error, OSError) as exc:
            raise store_error(self._url, exc) from None
        await probe.close()
        self._pool = await self._new_pool(self._pool_max_size, "ingestq")

    async def _new_pool(self, size: int, name: str) -> AsyncConnectionPool[Conn]:
        pool: AsyncConnectionPool[Conn] = RevivingPool(
            self._url,
            revival=Revival(self._probe),
            min_size=1,
            max_size=size,
            kwargs={"autocommit": True, **self._kwargs},
            # No `check=`: _checkout tests idle connections itself (the pool's own loop sleeps 1 s, 2 s,
            # ... between broken connections, and after a restart every idle one is broken).
            timeout=self._pool_timeout,
            # psycopg_pool retries a failed connect with a doubling delay until reconnect_timeout (5
            # minutes by default). Giving up after a few seconds resets it: the next checkout starts a
            # fresh attempt. Within those seconds RevivingPool runs the retries as soon as a probe
            # connects (revive.py), so a worker resumes within a fraction of a second of a restart.
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            open=False,
            name=name,
        )
        try:
            await pool.open(wait=True, timeout=self._pool_timeout)
        except PoolTimeout as exc:
            await pool.close()
            raise store_error(self._url, exc) from None
        return pool

    async def _probe(self) -> None:
        """Does the server accept connections? (RevivingPool's revival asks while it is away.)"""
        conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True, **self._kwargs)
        await conn.close()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        urgent, self._urgent = self._urgent, None
        for each in (urgent, pool):
            if each is not None:
                await each.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A pooled connection (autocommit), with driver errors a user can cause as ingestq errors."""
        if self._pool is None:
            raise StoreError(NOT_OPEN)
        async with self._connection_of(self._pool) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _urgent_connection(self) -> AsyncIterator[Conn]:
        """The connection kept for a worker's heartbeat, which extends the leases of the jobs it holds:
        from the shared pool, a heartbeat waited for a connection behind bulk writes (index commits of
        64 documents at once, a backfill) and, past the pool timeout, the worker's leases expired and its
        live jobs were rescued from under it. Opened at the first heartbeat (an API process never pays
        for it): one more connection per worker process."""
        if self._pool is None:
            raise StoreError(NOT_OPEN)
        if self._urgent is None:
            async with self._urgent_opening:
                if self._urgent is None:
                    self._urgent = await self._new_pool(1, "ingestq-urgent")
        async with self._connection_of(self._urgent) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _connection_of(self, pool: AsyncConnectionPool[Conn]) -> AsyncIterator[Conn]:
        try:
            conn = await self._checkout(pool)
            try:
                async with conn:  # as pool.connection(): ends a transaction left open, keeps it open
                    yield conn
            finally:
                await pool.putconn(conn)
        except PoolTimeout:
            raise StoreError(
                f"PostgreSQL at {self._where} is unavailable: no connection within {self._pool_timeout:g}s"
            ) from None
        except pg_errors.UndefinedTable as exc:
            missing = re.search(r'relation "(\w+)"', exc.diag.message_primary or "")
            if missing and missing.group(1) in INDEX_TABLES:
                raise FeatureUnavailable(NO_INDEX_SCHEMA) from None
            raise SchemaError(NOT_INITIALISED) from None
        except psycopg.DataError as exc:
            # a value PostgreSQL cannot store (an integer out of range, a NUL character in text)
            raise ValueError(f"PostgreSQL refused a value: {first_line(str(exc))}") from None
        except psycopg.OperationalError as exc:
            raise StoreError(f"PostgreSQL at {self._where}: {first_line(str(exc))}") from exc

    async def _checkout(self, pool: AsyncConnectionPool[Conn]) -> Conn:
        """A pooled connection that is not broken. After a server restart every idle connection is:
        each is handed back at once (the pool discards it and connects a new one) and the next tried,
        with no pause between them; once the idle ones are gone, getconn waits for a new connection."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._pool_timeout
        while True:
            conn = await pool.getconn(max(0.001, deadline - loop.time()))
            try:
                await check_idle_connection(conn)
            except (psycopg.Error, OSError):
                await pool.putconn(conn)
                continue
            except BaseException:
                await pool.putconn(conn)
                raise
            return conn

    async def _fetchall(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def _fetchone(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        async with self._connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def _notify(self) -> None:
        """Wake the workers that LISTEN (jobs were queued outside a statement that notifies itself)."""
        async with self._connection() as conn:
            await conn.execute(Q["jobs_notify"])

    def _check_open(self) -> None:
        if self._pool is None:
            raise StoreError(NOT_OPEN)
