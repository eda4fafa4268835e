"""ingestq: a durable ingestion queue for documents, on SQLite or PostgreSQL.

The public names are imported on first use (PEP 562): every `ingestq` command and worker process imports
this package first, and loading the client, the blocking client and the worker eagerly cost a worker more
start-up than the queue work before its first job. `from ingestq import Client` and `ingestq.task` work
as before.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ingestq.client.client import Client
    from ingestq.client.sync import SyncClient
    from ingestq.errors import (
        IngestqError,
        InvalidJobState,
        InvalidPayload,
        JobNotFound,
        PermanentError,
        QueueFull,
        RetryableError,
    )
    from ingestq.model.job import Job, JobFilter, JobState, NewJob, QueueStats
    from ingestq.settings import Settings
    from ingestq.store import open_store
    from ingestq.tasks.registry import Registry, default_registry, task
    from ingestq.tasks.task import JobContext, TaskSpec
    from ingestq.worker import Worker, WorkerConfig

# public name -> the module that defines it (kept in step with the imports above by a unit test)
_LAZY = {
    "Client": "ingestq.client.client",
    "JobContext": "ingestq.tasks.task",
    "Registry": "ingestq.tasks.registry",
    "TaskSpec": "ingestq.tasks.task",
    "default_registry": "ingestq.tasks.registry",
    "task": "ingestq.tasks.registry",
    "Job": "ingestq.model.job",
    "JobFilter": "ingestq.model.job",
    "JobState": "ingestq.model.job",
    "NewJob": "ingestq.model.job",
    "QueueStats": "ingestq.model.job",
    "IngestqError": "ingestq.errors",
    "InvalidJobState": "ingestq.errors",
    "InvalidPayload": "ingestq.errors",
    "JobNotFound": "ingestq.errors",
    "PermanentError": "ingestq.errors",
    "QueueFull": "ingestq.errors",
    "RetryableError": "ingestq.errors",
    "Settings": "ingestq.settings",
    "open_store": "ingestq.store",
    "SyncClient": "ingestq.client.sync",
    "Worker": "ingestq.worker",
    "WorkerConfig": "ingestq.worker",
}


if not TYPE_CHECKING:  # hidden from type checkers, so that `ingestq.Clinet` stays an error for them

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Client",
    "IngestqError",
    "InvalidJobState",
    "InvalidPayload",
    "Job",
    "JobContext",
    "JobFilter",
    "JobNotFound",
    "JobState",
    "NewJob",
    "PermanentError",
    "QueueFull",
    "QueueStats",
    "Registry",
    "RetryableError",
    "Settings",
    "SyncClient",
    "TaskSpec",
    "Worker",
    "WorkerConfig",
    "__version__",
    "default_registry",
    "open_store",
    "task",
]
