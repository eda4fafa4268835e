"""Served dashboards for the tests of this folder: a real `ingestq serve` per module and token setup.

Not a conftest.py: tests/conftest.py holds that module name for mypy; test modules import the fixture."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "api"))

from service import Service, serving

ADMIN = "admin-token-dashboard-0123"
READER = "read-token-dashboard-45678"
TOKENS = f"admin:{ADMIN},read:{READER}"
ENV = {"INGESTQ_API_TOKENS": TOKENS, "INGESTQ_EMBEDDER": "fake"}


class Served:
    def __init__(self, service: Service, database_url: str) -> None:
        self.service = service
        self.url = service.url
        self.database_url = database_url


@pytest.fixture(scope="module", name="served")
def served_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A dashboard behind tokens (admin and read)."""
    root = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{root / 'q.db'}"
    with serving(url, root / "serve.log", env=ENV) as service:
        yield Served(service, url)
