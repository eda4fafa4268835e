"""One typed settings object: the only reader of the environment (`INGESTQ_*` variables).

CLI flags override fields by constructing `Settings(**overrides)`; nothing else reads `os.environ`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./.ingestq/ingestq.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INGESTQ_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    """`sqlite:///relative/path`, `sqlite:////absolute/path` or `postgresql://...`."""

    auto_migrate: bool = True
    """Apply pending migrations when a command opens the store."""

    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """NORMAL (WAL): survives a process crash, may lose the last commits on power loss. FULL: fsync on
    every commit, survives power loss, slower (see BENCHMARKS.md)."""

    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)
    pg_pool_max_size: int = Field(default=10, ge=1)

    # worker
    concurrency: int = Field(default=10, ge=1)
    poll_interval: float = Field(default=1.0, gt=0)
    """Fallback poll period (seconds) when no wake-up arrives."""
    lease_seconds: float = Field(default=15.0, gt=0)
    """A job's lease; heartbeats extend it every lease/3. A killed worker's job is rescued after it."""
    shutdown_grace: float = Field(default=30.0, ge=0)
    """On SIGTERM/SIGINT, how long in-flight jobs may run before they are released back to the queue."""

    # retention of finished jobs, seconds (0 or less: keep forever)
    retention_succeeded: float = 24 * 3600.0
    retention_failed: float = 7 * 24 * 3600.0
    retention_cancelled: float = 24 * 3600.0

    # ingestion (see pipeline/ingest.py)
    embedder: Literal["local", "ollama", "openai", "fake"] = "local"
    """local: the bundled all-MiniLM-L6-v2 (offline); ollama / openai: an HTTP service; fake: tests."""
    embedder_model: str | None = None
    """The model name for ollama/openai (their defaults otherwise)."""
    embedder_base_url: str | None = None
    embedder_api_key: SecretStr | None = None
    embedder_dimension: int | None = Field(default=None, ge=1)
    default_collection: str = "default"
    chunk_tokens: int | None = Field(default=None, ge=16)
    """Target chunk size in the embedder's tokens; unset fills chunks up to the model's window. A change
    makes the collection's documents stale for `ingestq backfill`."""
    chunk_overlap_tokens: int = Field(default=0, ge=0)
    ocr: bool = True
    """OCR image-only PDF pages (needs the `ocr` extra); `ingestq worker --disable-ocr` clears it."""
    parser_processes: int = Field(default=1, ge=1)
    parse_time_limit: float = Field(default=120.0, gt=0)
    upload_max_bytes: int = Field(default=100 * 1024**2, ge=1)
    """Largest document accepted from a file, an upload or a URL."""
    fetch_timeout: float = Field(default=30.0, gt=0)
    fetch_max_redirects: int = Field(default=5, ge=0)
    fetch_allow_private: bool = False
    """Let URL ingestion reach loopback, private and link-local addresses (off: SSRF protection)."""
