"""Fixtures for the pipeline tests: the shared real-document corpora and a sandboxed parser pool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestq.client.client import Client
from ingestq.pipeline.sandbox import ParserPool, SandboxLimits
from ingestq.store.base import IndexStore, Store

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = (REPO.parent / "shared" / "corpora", Path("/work/shared/corpora"))


def find_corpora() -> Path | None:
    return next((path for path in CANDIDATES if (path / "MANIFEST.md").is_file()), None)


@pytest.fixture(scope="session")
def corpora() -> Path:
    path = find_corpora()
    if path is None:
        pytest.skip("shared corpora not found (expected ../shared/corpora beside the repository)")
    return path


@pytest.fixture(scope="module")
def pool() -> Iterator[ParserPool]:
    """One warm child with the default memory limit (OCR needs it: ONNX Runtime crashes rather
    than raising when its allocations fail) and a generous time limit for a busy machine."""
    with ParserPool(1, SandboxLimits(time_limit=300)) as parser_pool:
        yield parser_pool


@pytest.fixture
async def client(store: Store) -> Client:
    """A client on a store that holds documents; skips where the backend or server cannot."""
    if not isinstance(store, IndexStore):
        pytest.skip(f"the {store.backend} store does not implement IndexStore yet")
    applied, latest = await store.schema_version()
    if applied < latest:
        pytest.skip("this PostgreSQL server has no pgvector: documents and search cannot be tested on it")
    return Client(store)
