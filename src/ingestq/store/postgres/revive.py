"""Reconnecting within a fraction of a second of PostgreSQL answering again, without hammering it while
it is away.

psycopg_pool retries a failed connect after 1 s, 2 s, 4 s, ... (its `AttemptWithBackoff`), one retry
chain per missing connection. A server restarted in under a second is back long before the chain's next
attempt, and every store call waits for that attempt: work resumed ~2.8 s after PostgreSQL accepted
connections again (docs/reliability.md). `RevivingPool` keeps the pool's chains (their give-up after
`reconnect_timeout` is unchanged) but runs each scheduled retry early as soon as one cheap probe of the
pool's `Revival` connects: one prober per pool, at a short jittered interval that grows to
`PROBE_MAX_S`, so a down server sees at most a few refused connects a second from each process, and a
server that answers gets its connections back within one probe interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool
from psycopg_pool.pool_async import AddConnection, MaintenanceTask

log = logging.getLogger(__name__)

PROBE_FIRST_S = 0.05
"""The first probe after a failed connect: a restart's shutdown half usually outlasts it."""
PROBE_MAX_S = 0.3
"""The longest pause between two probes (before jitter): bounds both the load on a down server (a
refused connect a third of a second per process) and the delay after it answers again."""
JITTER = 0.2
"""Each pause is its nominal length times a random factor in 1 ± JITTER: processes that lost the server
at the same moment do not probe in step."""


def pause(nominal: float) -> float:
    return nominal * random.uniform(1 - JITTER, 1 + JITTER)


class Revival:
    """Retries waiting for the server, and the one prober that tells them when it answers.

    `defer(run, delay)` runs `run` after `delay` seconds, or sooner: as soon as a probe connects. The
    prober runs only while some retry waits, and stops at the first probe that connects."""

    def __init__(self, probe: Callable[[], Awaitable[None]]) -> None:
        self._probe = probe
        self._up = asyncio.Event()
        self._waiting = 0
        self._prober: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.probes = 0
        """Probes tried (tests read it to see that a down server is not hammered)."""

    def defer(self, run: Callable[[], Awaitable[None]], delay: float) -> None:
        task = asyncio.create_task(self._later(run, delay), name="ingestq-pg-revival")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(self, run: Callable[[], Awaitable[None]], delay: float) -> None:
        self._waiting += 1
        if self._prober is None or self._prober.done():
            self._up = asyncio.Event()
            self._prober = asyncio.create_task(self._probing(), name="ingestq-pg-prober")
        up = self._up
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(up.wait(), delay)
        finally:
            self._waiting -= 1
        await run()

    async def _probing(self) -> None:
        nominal = PROBE_FIRST_S
        while self._waiting:
            await asyncio.sleep(pause(nominal))
            self.probes += 1
            try:
                await self._probe()
            except Exception as exc:  # refused, timed out, starting up: the server is not back yet
                log.debug("PostgreSQL not answering yet: %s", exc)
                nominal = min(nominal * 2, PROBE_MAX_S)
                continue
            self._up.set()
            return

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._prober] if self._prober is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class RevivingPool(AsyncConnectionPool[Any]):
    """An AsyncConnectionPool whose reconnect retries wait for `revival` instead of the full backoff.

    It overrides `schedule_task`, the pool's one way of running a task later: a retry of a failed connect
    (`AddConnection`) goes to the revival; anything else (shrinking idle connections) is unchanged."""

    def __init__(self, *args: Any, revival: Revival, **kwargs: Any) -> None:
        self.revival = revival
        super().__init__(*args, reconnect_failed=self._keep_trying, **kwargs)

    async def _keep_trying(self, pool: AsyncConnectionPool[Any]) -> None:
        """A retry chain gave up (`reconnect_timeout`). With calls still waiting for a connection the pool
        would start no other until one of them timed out, however soon the server came back: start a
        fresh chain (`check` grows the pool by one), paced by the revival's prober like the others."""
        if not self.closed and self.get_stats().get("requests_waiting", 0) > 0:
            await self.check()

    async def schedule_task(self, task: MaintenanceTask, delay: float) -> None:
        if isinstance(task, AddConnection) and not self.closed:
            self.revival.defer(task.tick, delay)
            return
        await super().schedule_task(task, delay)

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (the pool's signature)
        await self.revival.close()
        await super().close(timeout)
