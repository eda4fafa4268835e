"""Schema migrations: ordered SQL files, each applied in its own write transaction (as
store/postgres/migrator.py does under an advisory lock; here BEGIN IMMEDIATE is the lock)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ingestq.errors import SchemaError
from ingestq.store.queries import load_migrations
from ingestq.store.sqlite.engine import PACKAGE, Q

if TYPE_CHECKING:
    from ingestq.store.sqlite.engine import Engine

MIGRATIONS = load_migrations(PACKAGE)
LATEST = MIGRATIONS[-1][0]


def _check_not_newer(version: int) -> None:
    if version > LATEST:
        raise SchemaError(
            f"database schema version {version} is newer than this ingestq ({LATEST}); upgrade ingestq"
        )


def _applied_version(engine: Engine) -> int:
    if not engine.read(Q["migrations_table_exists"])[0][0]:
        return 0
    return int(engine.read(Q["schema_version"])[0][0])


def schema_version(engine: Engine) -> tuple[int, int]:
    version = _applied_version(engine)
    _check_not_newer(version)
    return version, LATEST


def migrate(engine: Engine) -> list[int]:
    applied: list[int] = []
    for version, name, sql in MIGRATIONS:
        # One transaction per migration; the version is re-read under the write lock so that two
        # processes migrating at once apply each migration exactly once.
        with engine.write() as cur:
            cur.execute(Q["migrations_create_table"])
            found: list[Any] = cur.execute(Q["schema_version"]).fetchall()
            current = int(found[0][0])
            _check_not_newer(current)
            if current >= version:
                continue
            cur.execute(sql)
            cur.execute(Q["migrations_record"], {"version": version, "name": name, "applied_at": time.time()})
            applied.append(version)
    if applied:
        with engine.errors():
            engine.conn.execute("ANALYZE sqlite_schema")  # reload the planner statistics just written
    else:
        _check_not_newer(_applied_version(engine))
    return applied
