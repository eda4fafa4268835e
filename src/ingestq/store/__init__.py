"""`open_store` is the only code that picks a concrete backend.

The protocols (`Store`, `IndexStore`, `Backend`) are imported on first use: the runtime needs them only in
annotations, and building them is a measurable part of a worker's start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingestq.errors import ConfigError
from ingestq.settings import Settings

if TYPE_CHECKING:
    from ingestq.store.base import Backend, IndexStore, Store


def open_store(settings: Settings | None = None) -> Backend:
    """Build the store for `settings.database_url` (not yet connected: `await store.open()`)."""
    settings = settings or Settings()
    url = settings.database_url
    if url.startswith("sqlite://"):
        from ingestq.store.sqlite.store import SqliteStore

        return SqliteStore.from_settings(settings)
    if url.startswith(("postgresql://", "postgres://")):
        from ingestq.store.postgres.store import PostgresStore

        return PostgresStore.from_settings(settings)
    raise ConfigError(
        f"unsupported database URL {url!r}: use sqlite:///path/to/file.db or postgresql://user@host/db"
    )


def __getattr__(name: str) -> Any:
    if name in ("Backend", "IndexStore", "Store"):
        from ingestq.store import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Backend", "IndexStore", "Store", "open_store"]
