"""ingestq: a durable ingestion queue for documents, on SQLite or PostgreSQL."""

from __future__ import annotations

__version__ = "0.1.0"

from ingestq.core.client import Client
from ingestq.core.handlers import JobContext, Registry, TaskSpec, default_registry, task
from ingestq.core.job import Job, JobFilter, JobState, NewJob, QueueStats
from ingestq.errors import (
    IngestqError,
    InvalidJobState,
    InvalidPayload,
    JobNotFound,
    PermanentError,
    QueueFull,
    RetryableError,
)
from ingestq.settings import Settings
from ingestq.store import open_store
from ingestq.sync import SyncClient
from ingestq.worker import Worker, WorkerConfig

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
