"""Schema migrations: ordered SQL files applied under a transaction-scoped advisory lock."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ingestq.errors import FeatureUnavailable, SchemaError
from ingestq.store.queries import load_migrations

MIGRATIONS = load_migrations("ingestq.store.postgres")
LATEST = MIGRATIONS[-1][0] if MIGRATIONS else 0
QUEUE_ONLY = "-- Queue schema only"
"""A migration whose SQL has this line touches only the queue's tables: it is applied even after an
earlier migration was refused for a missing extension (the index migration on a server without pgvector),
so the queue keeps up with the code there."""


def _too_new(version: int) -> SchemaError:
    return SchemaError(
        f"the database schema is at version {version}, newer than this ingestq knows ({LATEST}): "
        "upgrade ingestq"
    )


async def migrate(conn: psycopg.AsyncConnection[Any], q: dict[str, str]) -> list[int]:
    """Apply pending migrations, each in its own transaction under the advisory lock: a concurrent
    migrate() waits and then finds that version applied. DDL is transactional in PostgreSQL, so a failed
    migration applies nothing of itself and keeps the earlier ones (the queue works on a server without
    pgvector, whose index migration is refused with a one-line SchemaError; the later migrations marked
    `QUEUE_ONLY` are still applied there, and the refusal is raised after them)."""
    applied_now: list[int] = []
    refused: FeatureUnavailable | None = None
    for version, name, sql in MIGRATIONS:
        if refused is not None and QUEUE_ONLY not in sql:
            continue  # it may build on the refused migration
        try:
            async with conn.transaction():
                await conn.execute(q["migrations_lock"])
                await conn.execute(q["migrations_create_table"])
                cur = await conn.execute(q["migrations_applied"])
                applied = {row[0] for row in await cur.fetchall()}
                if applied and max(applied) > LATEST:
                    raise _too_new(max(applied))
                if version in applied:
                    continue
                try:
                    # several statements: simple query protocol, no parameters
                    await conn.execute(sql.encode())
                except pg_errors.FeatureNotSupported as exc:  # an optional extension is missing
                    raise FeatureUnavailable(
                        f"migration {version} ({name}): {exc.diag.message_primary}; the queue works, "
                        "documents and search need it"
                    ) from None
                except pg_errors.RaiseException as exc:  # a migration's own check (RAISE EXCEPTION '...')
                    raise SchemaError(f"migration {version} ({name}): {exc.diag.message_primary}") from None
                await conn.execute(q["migrations_record"], {"version": version, "name": name})
                applied_now.append(version)
        except FeatureUnavailable as exc:  # rolled back; later queue-only migrations still apply
            refused = exc
    if refused is not None:
        raise refused
    return applied_now


QUEUE_MIGRATIONS = [v for v, _, sql in MIGRATIONS if v == 1 or QUEUE_ONLY in sql]


async def queue_schema_missing(conn: psycopg.AsyncConnection[Any], q: dict[str, str]) -> list[int]:
    """The first migration and every queue-only one not applied yet: what the queue's statements need,
    whether or not the index migration was refused."""
    cur = await conn.execute(q["migrations_table_exists"])
    row = await cur.fetchone()
    if not row or not row[0]:
        return list(QUEUE_MIGRATIONS)
    cur = await conn.execute(q["migrations_applied"])
    versions = {r[0] for r in await cur.fetchall()}
    return [v for v in QUEUE_MIGRATIONS if v not in versions]


async def schema_version(conn: psycopg.AsyncConnection[Any], q: dict[str, str]) -> tuple[int, int]:
    cur = await conn.execute(q["migrations_table_exists"])
    row = await cur.fetchone()
    if not row or not row[0]:
        return (0, LATEST)
    cur = await conn.execute(q["migrations_applied"])
    versions = {r[0] for r in await cur.fetchall()}
    if versions and max(versions) > LATEST:
        raise _too_new(max(versions))
    current = 0  # the last of the unbroken run from 1: a queue-only migration may be past a refused one
    while current + 1 in versions:
        current += 1
    return (current, LATEST)
