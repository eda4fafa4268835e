"""The worker runtime: fetch loop, executor, completer, heartbeats and maintenance."""

from __future__ import annotations

from ingestq.worker.config import WorkerConfig
from ingestq.worker.periodic import Periodic
from ingestq.worker.probes import Probes
from ingestq.worker.runner import Worker

__all__ = ["Periodic", "Probes", "Worker", "WorkerConfig"]
