"""How many ingestion jobs one worker holds at once: its own setting, apart from the worker's concurrency."""

from __future__ import annotations

import pytest

from ingestq.settings import InvalidSetting, Settings


def test_ingestion_has_its_own_cap_below_the_worker_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INGESTQ_INGEST_CONCURRENCY", raising=False)
    monkeypatch.delenv("INGESTQ_CONCURRENCY", raising=False)
    settings = Settings()
    assert 10 < settings.ingest_concurrency < settings.concurrency


def test_the_cap_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTQ_INGEST_CONCURRENCY", "4")
    assert Settings().ingest_concurrency == 4
    monkeypatch.setenv("INGESTQ_INGEST_CONCURRENCY", "0")
    with pytest.raises(InvalidSetting, match="ingest_concurrency"):
        Settings()
