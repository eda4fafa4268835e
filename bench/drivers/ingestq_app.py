"""The benchmark's no-op kind for ingestq workers:
`ingestq worker --app bench.drivers.ingestq_app:registry`."""

from __future__ import annotations

from bench.drivers.workload import record
from ingestq.tasks.registry import Registry

NOOP_KIND = "bench.noop"

registry = Registry()


@registry.task(name=NOOP_KIND)
async def noop(i: int, ts: float) -> None:
    record(i, ts)
