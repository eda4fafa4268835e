"""A fresh database per measurement: a SQLite file under bench/out, or a PostgreSQL database created on
the run's server (bench/pgserver.py) and dropped afterwards."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from bench import harness
from bench.harness import OUT


@contextlib.contextmanager
def fresh(backend: str, name: str) -> Iterator[tuple[str, str | None]]:
    """(database URL, SQLite path or None)."""
    if backend == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"service-{name}.db"
        _unlink(path)
        try:
            yield f"sqlite:///{path}", str(path)
        finally:
            _unlink(path)
        return
    db = f"svc_{name}_{int(time.time() * 1000)}"
    with psycopg.connect(harness.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    try:
        yield harness.pg_url(db), None
    finally:
        with psycopg.connect(harness.PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def _unlink(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
