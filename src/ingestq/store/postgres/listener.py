"""Wake-ups: LISTEN on a dedicated connection, reconnecting with backoff when it drops.

The pool cannot serve LISTEN (a pooled connection is handed to other work), so the listener owns one
connection for the store's lifetime. A notification only sets an asyncio.Event: waiting costs no CPU,
and a notification that arrives between two waits is not lost (the next wait returns at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from psycopg import sql

from ingestq.store.postgres.revive import pause

log = logging.getLogger(__name__)

CHANNEL = "ingestq_jobs"
LIVENESS_CHECK_S = 30.0
"""How often an idle listener proves its connection is alive. A dead peer that never closed the socket
(a cut network) would otherwise leave the worker deaf; the poll fallback covers the gap meanwhile."""
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 1.0
"""Jittered (revive.pause). A refused connect costs a down server nothing; workers poll meanwhile anyway,
and a longer pause would leave the worker deaf for seconds after a restart."""


class Listener:
    def __init__(self, url: str, connect_kwargs: dict[str, Any], channel: str = CHANNEL) -> None:
        self._url = url
        self._kwargs = connect_kwargs
        self._channel = channel
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.connections = 0
        """How many times LISTEN was (re-)established; tests watch it to see a reconnect."""

    @property
    def listening(self) -> bool:
        return self._ready.is_set()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ingestq-pg-listener")

    async def wait_ready(self, max_wait: float) -> bool:
        """Start listening and wait until LISTEN is active. The wake-up of the first connection is
        dropped: the caller claims next anyway, and anything inserted from now on notifies."""
        self.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), max_wait)
        if self._ready.is_set() and self.connections == 1:
            self._wake.clear()
        return self._ready.is_set()

    async def wait(self, max_wait: float) -> bool:
        """Return True on a notification (or a fresh LISTEN), False after `max_wait` seconds without."""
        self.start()
        if max_wait > 0 and not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max_wait)
        fired = self._wake.is_set()
        self._wake.clear()
        return fired

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._ready.clear()

    async def _run(self) -> None:
        delay = BACKOFF_START_S
        while True:
            established = self.connections
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                log.warning("ingestq listener lost its connection (%s); reconnecting", exc)
            self._ready.clear()
            if self.connections != established:
                delay = BACKOFF_START_S  # it did connect: a fresh outage starts a fresh backoff
            await asyncio.sleep(pause(delay))
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True, **self._kwargs)
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self.connections += 1
            # jobs may have been enqueued while nobody listened (before the first LISTEN, or during an
            # outage): wake the waiter once so that it claims before it waits
            self._wake.set()
            self._ready.set()
            while True:
                async for _ in conn.notifies(timeout=LIVENESS_CHECK_S):
                    self._wake.set()
                await conn.execute("SELECT 1")
        finally:
            self._ready.clear()
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()


class ListenerWaiter:
    """A change waiter over a listener of its own (store.change_waiter): one LISTEN connection per feed,
    not per subscriber. The first wake-up after LISTEN starts is kept: the reader looks at once."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener

    async def wait(self, max_wait: float) -> bool:
        return await self._listener.wait(max_wait)

    async def close(self) -> None:
        await self._listener.close()
