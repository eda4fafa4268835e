"""Schema migrations: ordered SQL files applied under a transaction-scoped advisory lock."""

from __future__ import annotations

from typing import Any

import psycopg

from ingestq.errors import SchemaError
from ingestq.store.queries import load_migrations

MIGRATIONS = load_migrations("ingestq.store.postgres")
LATEST = MIGRATIONS[-1][0] if MIGRATIONS else 0


def _too_new(version: int) -> SchemaError:
    return SchemaError(
        f"the database schema is at version {version}, newer than this ingestq knows ({LATEST}): "
        "upgrade ingestq"
    )


async def migrate(conn: psycopg.AsyncConnection[Any], q: dict[str, str]) -> list[int]:
    """Apply pending migrations in one transaction. The advisory lock makes a concurrent migrate() wait
    and then find nothing left to do; DDL is transactional in PostgreSQL, so a failure applies nothing."""
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute(q["migrations_lock"])
        await conn.execute(q["migrations_create_table"])
        cur = await conn.execute(q["migrations_applied"])
        applied = {row[0] for row in await cur.fetchall()}
        if applied and max(applied) > LATEST:
            raise _too_new(max(applied))
        for version, name, sql in MIGRATIONS:
            if version in applied:
                continue
            await conn.execute(sql.encode())  # several statements: simple query protocol, no parameters
            await conn.execute(q["migrations_record"], {"version": version, "name": name})
            applied_now.append(version)
    return applied_now


async def schema_version(conn: psycopg.AsyncConnection[Any], q: dict[str, str]) -> tuple[int, int]:
    cur = await conn.execute(q["migrations_table_exists"])
    row = await cur.fetchone()
    if not row or not row[0]:
        return (0, LATEST)
    cur = await conn.execute(q["migrations_applied"])
    versions = [r[0] for r in await cur.fetchall()]
    current = max(versions, default=0)
    if current > LATEST:
        raise _too_new(current)
    return (current, LATEST)
