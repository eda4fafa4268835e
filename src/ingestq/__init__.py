"""ingestq: a durable ingestion queue for documents, on SQLite or PostgreSQL."""

from __future__ import annotations

__version__ = "0.1.0"
