from __future__ import annotations

import pytest

from ingestq.model.job import Retention
from ingestq.settings import Settings
from ingestq.worker.config import WorkerConfig, parse_queues


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        (" , ", None),
        ("a", ("a",)),
        ("a, b,,a", ("a", "b")),
        (["x", " y "], ("x", "y")),
    ],
)
def test_parse_queues(text: str | list[str] | None, expected: tuple[str, ...] | None) -> None:
    assert parse_queues(text) == expected


def test_from_settings_with_overrides() -> None:
    settings = Settings(
        database_url="sqlite:///x.db",
        concurrency=4,
        lease_seconds=9,
        retention_failed=0,
        retention_succeeded=60,
    )
    config = WorkerConfig.from_settings(settings, concurrency=None, queues=("q",), shutdown_grace=2.5)
    assert (config.concurrency, config.queues, config.shutdown_grace) == (4, ("q",), 2.5)
    assert config.lease_seconds == 9
    assert config.rescue_every == 3
    assert config.retention == Retention(succeeded=60, failed=None, cancelled=24 * 3600.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"lease_seconds": 0}, "lease"),
        ({"queues": ()}, "at least one queue"),
    ],
)
def test_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkerConfig(**kwargs)  # type: ignore[arg-type]
