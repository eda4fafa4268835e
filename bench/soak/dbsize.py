"""How big the database is: the SQLite file and its WAL (plus row counts), or PostgreSQL's tables with
their indexes, TOAST and dead tuples (pg_stat_user_tables). Read-only, from the harness's own connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# the tables whose rows the soak creates; the rest (queues, periodic, ...) stay a handful of rows
TABLES = ("jobs", "finished_counts", "documents", "chunks", "blobs", "embed_cache", "idempotency", "workers")


@dataclass
class DbSize:
    total_mb: float  # SQLite: main file + WAL; PostgreSQL: every ingestq table with indexes and TOAST
    wal_mb: float = 0.0  # SQLite only
    free_mb: float = 0.0  # SQLite: free pages inside the file (reused before the file grows)
    dead: int = 0  # PostgreSQL: dead tuples over all tables
    rows: dict[str, int] = field(default_factory=dict)


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def sqlite_size(url: str) -> DbSize:
    import apsw

    path = sqlite_path(url)
    wal = Path(str(path) + "-wal")
    size = DbSize(
        total_mb=(path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6,
        wal_mb=(wal.stat().st_size if wal.exists() else 0) / 1e6,
    )
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.setbusytimeout(5000)
        page = int(next(iter(conn.execute("PRAGMA page_size")))[0])
        free = int(next(iter(conn.execute("PRAGMA freelist_count")))[0])
        size.free_mb = page * free / 1e6
        for table in TABLES:
            size.rows[table] = int(next(iter(conn.execute(f"SELECT count(*) FROM ingestq_{table}")))[0])
    finally:
        conn.close()
    return size


def pg_size(url: str) -> DbSize:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, n_live_tup, n_dead_tup, pg_total_relation_size(relid) "
            "FROM pg_stat_user_tables WHERE relname LIKE 'ingestq%'"
        ).fetchall()
    size = DbSize(total_mb=sum(r[3] for r in rows) / 1e6, dead=sum(r[2] for r in rows))
    for name, live, _dead, _bytes in rows:
        short = str(name).removeprefix("ingestq_")
        if short in TABLES:
            size.rows[short] = int(live)  # the statistics' estimate, not a count(*)
    return size


def measure(url: str) -> DbSize:
    return sqlite_size(url) if url.startswith("sqlite") else pg_size(url)


def pg_dead_by_table(url: str) -> dict[str, tuple[int, int, float]]:
    """table → (live, dead, MB): the end-of-run detail for the report."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, n_live_tup, n_dead_tup, pg_total_relation_size(relid) "
            "FROM pg_stat_user_tables WHERE relname LIKE 'ingestq%' ORDER BY 4 DESC"
        ).fetchall()
    return {str(r[0]): (int(r[1]), int(r[2]), r[3] / 1e6) for r in rows}
