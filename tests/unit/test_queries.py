"""The SQL files are read from the package folder, and through importlib.resources when the package has no
folder (a zip import): both give the same queries and migrations."""

from __future__ import annotations

import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from ingestq.store import queries
from ingestq.store.queries import load_migrations, load_queries, parse_queries


@pytest.mark.parametrize("package", ["ingestq.store.sqlite", "ingestq.store.postgres"])
def test_the_folder_read_matches_importlib_resources(package: str) -> None:
    files = resources.files(package)
    assert load_queries(package) == parse_queries(files.joinpath("queries.sql").read_text(encoding="utf-8"))
    expected = sorted(
        (int(entry.name[:4]), entry.name[5:-4], entry.read_text(encoding="utf-8"))
        for entry in files.joinpath("migrations").iterdir()
        if entry.name.endswith(".sql")
    )
    assert load_migrations(package) == expected
    assert [v for v, _, _ in expected] == list(range(1, len(expected) + 1))  # numbered from 1, no gap


def test_a_package_imported_from_a_zip_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped_sql/__init__.py", "")
        zf.writestr("zipped_sql/queries.sql", "-- name: one\n-- what it does\nSELECT 1\n")
        zf.writestr("zipped_sql/migrations/0002_more.sql", "CREATE TABLE b (x);\n")
        zf.writestr("zipped_sql/migrations/0001_init.sql", "CREATE TABLE a (x);\n")
        zf.writestr("zipped_sql/migrations/README", "not a migration\n")
    monkeypatch.syspath_prepend(str(archive))
    monkeypatch.delitem(sys.modules, "zipped_sql", raising=False)
    assert queries._folder("zipped_sql") is None
    assert load_queries("zipped_sql") == {"one": "SELECT 1"}
    assert load_migrations("zipped_sql") == [
        (1, "init", "CREATE TABLE a (x);\n"),
        (2, "more", "CREATE TABLE b (x);\n"),
    ]


# Names one dialect has and the other has not, and why. Everything else must be in both files: the same
# operation has the same name in both dialects, so the two backends read side by side.
SQLITE_ONLY = {
    "queries.sql": {
        # the claim is spliced from these pieces at import (store/sqlite/engine.py); PostgreSQL keeps its
        # three job_claim* statements whole
        "claim_update",
        "claim_candidates",
        "claim_candidates_queue",
        "claim_candidates_queues",
        "claim_capped",
        "claim_exclude",
        # one outcome statement per kind (see job_succeed); PostgreSQL has one job_finish_many
        "job_succeed",
        "job_retry_later",
        "job_fail",
        "job_mark_cancelled",
        # the throughput chart's bucket count: SQLite counts each bucket as a range of the index, so it
        # needs the newest finish; PostgreSQL's GROUP BY does not (a count per bucket was 22 s there)
        "job_finished_last",
        "job_release",
        # finished counts kept in Python (per-row triggers cost a quarter of throughput on SQLite)
        "finished_counts_add",
        # a cancel reads the job first in the write transaction; PostgreSQL cancels in one statement
        "job_cancel_queued",
        "job_cancel_running",
        # one row per statement when a dedupe key must be checked first; PostgreSQL inserts batches
        "job_insert",
        # job_list variants that pin the index with the fewest rows to read (INDEXED BY)
        "job_list_document",
        "job_list_queued",
        "job_list_running",
        "job_list_failed",
        "job_list_cancelled",
        # backpressure under the database-wide write lock: no row lock to take
        "queue_max_depths",
        # stats from the claim index and the queues table (no UNION of partial indexes)
        "stats_queued",
        "queue_names",
        # the version alone; PostgreSQL reads the applied list under an advisory lock
        "schema_version",
    },
    "webhook_queries.sql": set(),
    "index_queries.sql": {
        # sqlite-vec keeps vectors in a vec0 table per collection, beside the chunks
        "vec_create",
        "vec_insert",
        "vec_get",
        "vec_count",
        "vec_delete_document",
        # the upsert cannot return the key of a row it left alone
        "document_key",
        # one upsert under the write lock; PostgreSQL locks the row, then inserts or updates
        "rate_bucket_put",
        # a streamed upload: a zeroblob row filled by incremental blob I/O; PostgreSQL COPYs it in
        "blob_put_empty",
    },
}
POSTGRES_ONLY = {
    "queries.sql": {
        # the claims SQLite splices from pieces, and the fenced finish-and-claim they splice into
        "job_claim",
        "job_claim_queue",
        "job_claim_queues",
        "job_finish_and_claim",
        "job_finish_many",
        # batch insert as one statement (with the autocommit fast path), and the row lock of bounded queues
        "job_insert_many",
        "job_insert_many_now",
        "queue_lock_limited",
        "job_cancel",
        # LISTEN/NOTIFY wake-ups; SQLite workers poll a change counter
        "jobs_notify",
        # finished counts are kept by triggers as a delta log, folded when pruning
        "finished_counts_compact",
        "stats_unfinished",
        "planner_defaults",
        "periodic_set_job",
        "migrations_applied",
        "migrations_lock",
    },
    "webhook_queries.sql": set(),
    "index_queries.sql": {
        "hnsw_create",
        "search_settings",
        "search_vector_exact",  # the fallback when HNSW filtering returns fewer than k
        "rate_bucket_insert",
        "rate_bucket_update",
        # a streamed upload: skipped when stored already, else COPY FROM STDIN a chunk at a time
        "blob_exists",
        "blob_copy",
    },
}


@pytest.mark.parametrize("filename", ["queries.sql", "index_queries.sql", "webhook_queries.sql"])
def test_both_dialects_name_the_same_operations_alike(filename: str) -> None:
    sqlite = set(load_queries("ingestq.store.sqlite", filename))
    postgres = set(load_queries("ingestq.store.postgres", filename))
    assert sqlite - postgres == SQLITE_ONLY[filename]
    assert postgres - sqlite == POSTGRES_ONLY[filename]
