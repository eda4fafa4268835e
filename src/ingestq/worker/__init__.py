"""The worker runtime: fetch loop, executor, completer, heartbeats and maintenance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingestq.worker.config import WorkerConfig
from ingestq.worker.probes import Probes
from ingestq.worker.runner import Worker

if TYPE_CHECKING:
    from ingestq.tasks.periodic import Periodic


def __getattr__(name: str) -> Any:
    # `Periodic` on first use: a worker without schedules never needs it (see worker/periodic.py)
    if name == "Periodic":
        from ingestq.tasks.periodic import Periodic

        return Periodic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Periodic", "Probes", "Worker", "WorkerConfig"]
