"""Named test probes: points in the worker runtime a test can wait on instead of sleeping.

The runtime calls `probes.hit("claimed", job_ids)` at interesting moments. Unless a test armed that name,
the call is a dictionary miss and nothing else, so production pays nothing. A test arms a probe and
awaits it with a timeout, the asyncio counterpart of River's testsignal:

    probes = Probes()
    started = probes.arm("job_started")
    worker = Worker(store, registry, config, probes=probes)
    ...
    job_id = await started.next(within=5)

Names used by the runtime: "claimed" (list of job ids), "job_started" (job id), "job_finished" (Outcome),
"completed" (set of applied ids), "heartbeat" (HeartbeatReply), "rescued" (list of ids), "pruned" (count),
"periodic" (Job or None), "lost" (job id), "idle" (None: the fetch loop found nothing to do).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class Probe:
    """One armed probe: records every value it was hit with, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: deque[Any] = deque()
        self.hits = 0
        self._event = asyncio.Event()

    def _hit(self, value: Any) -> None:
        self.hits += 1
        self.values.append(value)
        self._event.set()

    async def next(self, within: float = 10.0) -> Any:
        """The oldest value not yet taken, waiting for one if needed (TimeoutError after `within` seconds)."""
        async with asyncio.timeout(within):
            while not self.values:
                self._event.clear()
                await self._event.wait()
        return self.values.popleft()

    async def wait_for(self, predicate: Any, within: float = 10.0) -> Any:
        """Take values until one satisfies `predicate`; return it."""
        async with asyncio.timeout(within):
            while True:
                value = await self.next(within=within)
                if predicate(value):
                    return value


class Probes:
    def __init__(self) -> None:
        self._armed: dict[str, Probe] = {}

    def arm(self, name: str) -> Probe:
        probe = self._armed.get(name)
        if probe is None:
            probe = self._armed[name] = Probe(name)
        return probe

    def armed(self, name: str) -> bool:
        """Whether a test armed `name`: for hits whose value costs something to build."""
        return name in self._armed

    def hit(self, name: str, value: Any = None) -> None:
        probe = self._armed.get(name)
        if probe is not None:
            probe._hit(value)


NO_PROBES = Probes()
"""Shared, never armed: the default of every runtime component."""
