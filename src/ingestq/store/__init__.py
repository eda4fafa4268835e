"""`open_store` is the only code that picks a concrete backend."""

from __future__ import annotations

from ingestq.errors import ConfigError
from ingestq.settings import Settings
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


__all__ = ["Backend", "IndexStore", "Store", "open_store"]
