"""How many documents an ingest-only worker (`ingestq ingest --wait`) holds at once."""

from __future__ import annotations

import pytest

from ingestq.pipeline.ingest import INGEST_CONCURRENCY, ingest_concurrency
from ingestq.settings import Settings


def test_default_concurrency_becomes_the_ingestion_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INGESTQ_CONCURRENCY", raising=False)
    assert ingest_concurrency(Settings()) == INGEST_CONCURRENCY > Settings().concurrency


def test_a_configured_concurrency_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTQ_CONCURRENCY", "4")
    assert ingest_concurrency(Settings()) == 4
    assert ingest_concurrency(Settings(concurrency=8)) == 8
