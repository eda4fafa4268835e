"""Read a backend's schema facts directly (not through the Store): what the migration tests compare.

Each backend answers the same questions from its own catalogue: SQLite from sqlite_master, PostgreSQL
from pg_catalog (the state is an enum there; a CHECK constraint would be read from pg_constraint).
"""

from __future__ import annotations

import re

import apsw
import psycopg
import pytest

from ingestq.store.sqlite.connection import parse_sqlite_url


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def job_state_values(url: str) -> set[str]:
    """The values the jobs table accepts in its `state` column."""
    if _is_sqlite(url):
        db = apsw.Connection(str(parse_sqlite_url(url)))
        try:
            rows = list(
                db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ingestq_jobs'")
            )
        finally:
            db.close()
        (sql,) = rows[0]
        match = re.search(r"CHECK\s*\(\s*state\s+IN\s*\(([^)]*)\)\s*\)", str(sql), re.IGNORECASE)
        assert match, f"no CHECK (state IN (...)) in {sql}"
        return set(re.findall(r"'([^']*)'", match.group(1)))
    with psycopg.connect(url) as conn:
        enum = conn.execute(
            "SELECT e.enumlabel FROM pg_attribute a JOIN pg_enum e ON e.enumtypid = a.atttypid "
            "WHERE a.attrelid = 'ingestq_jobs'::regclass AND a.attname = 'state'"
        ).fetchall()
        if enum:
            return {r[0] for r in enum}
        checks = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'ingestq_jobs'::regclass AND contype = 'c'"
        ).fetchall()
    for (definition,) in checks:
        if "state" in definition:
            return set(re.findall(r"'([^']*)'", definition))
    raise AssertionError("the state column has neither an enum type nor a CHECK constraint")


def record_version(url: str, version: int) -> None:
    """Pretend a newer ingestq migrated this database."""
    if _is_sqlite(url):
        db = apsw.Connection(str(parse_sqlite_url(url)))
        try:
            db.execute(
                "INSERT INTO ingestq_migrations (version, name, applied_at) VALUES (?, 'from_the_future', 0)",
                (version,),
            )
        finally:
            db.close()
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingestq_migrations (version, name) VALUES (%s, 'from_the_future')", (version,)
        )


def forget_versions(url: str, first: int) -> None:
    """Pretend an older ingestq migrated this database: the records of `first` and later go (the
    tables and columns stay, which only the records matter for here)."""
    if _is_sqlite(url):
        db = apsw.Connection(str(parse_sqlite_url(url)))
        try:
            db.execute("DELETE FROM ingestq_migrations WHERE version >= ?", (first,))
        finally:
            db.close()
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM ingestq_migrations WHERE version >= %s", (first,))


def table_names(url: str) -> set[str]:
    if _is_sqlite(url):
        db = apsw.Connection(str(parse_sqlite_url(url)))
        try:
            return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
    return {r[0] for r in rows}


def has_pgvector(url: str) -> bool:
    """SQLite always has its vector index (sqlite-vec ships as a wheel); a PostgreSQL server may lack
    pgvector, and then the index migration is refused while the queue schema stays."""
    if _is_sqlite(url):
        return True
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    return found is not None


def skip_without_pgvector(url: str) -> None:
    if not has_pgvector(url):
        pytest.skip("pgvector is not installed on this server: the schema stops before the index migration")
