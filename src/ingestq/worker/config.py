"""The worker's options, grouped in one value (built from Settings plus CLI overrides)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ingestq.model.job import Retention
from ingestq.settings import Settings


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 100  # see Settings.concurrency
    queues: tuple[str, ...] | None = None  # None: every queue
    poll_interval: float = 1.0
    lease_seconds: float = 15.0
    shutdown_grace: float = 30.0
    retention: Retention = field(default_factory=Retention)
    embed_cache_retention: float | None = 30 * 24 * 3600.0  # see Settings.embed_cache_retention
    rescue_interval: float | None = None  # None: lease/3
    prune_interval: float = 300.0
    progress_interval: float = 0.5  # at most one progress write per job per interval
    completer_batch: int = 1000
    maintenance: bool = True  # rescuer, cleaner and periodic scheduler
    probe_marker_dir: str | None = None  # see Settings.probe_marker_dir (test-only)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.lease_seconds <= 0 or self.poll_interval <= 0:
            raise ValueError("lease and poll interval must be positive")
        if self.queues is not None and not self.queues:
            raise ValueError("queues must name at least one queue (or be None for all)")

    @property
    def rescue_every(self) -> float:
        return self.rescue_interval if self.rescue_interval is not None else self.lease_seconds / 3

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerConfig:
        def keep(seconds: float) -> float | None:
            return seconds if seconds > 0 else None

        config = cls(
            concurrency=settings.concurrency,
            poll_interval=settings.poll_interval,
            lease_seconds=settings.lease_seconds,
            shutdown_grace=settings.shutdown_grace,
            probe_marker_dir=settings.probe_marker_dir,
            retention=Retention(
                succeeded=keep(settings.retention_succeeded),
                failed=keep(settings.retention_failed),
                cancelled=keep(settings.retention_cancelled),
            ),
            embed_cache_retention=keep(settings.embed_cache_retention),
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def parse_queues(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """`"a,b"` or `["a", "b"]` → ("a", "b"); empty → None (every queue)."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(name.strip() for name in items if name.strip()))
    return names or None
