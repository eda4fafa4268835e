"""`ingestq ingest / search / documents / backfill` as the real console script, on every backend,
with the deterministic fake embedder (INGESTQ_EMBEDDER=fake)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

INGESTQ = str(Path(sys.executable).with_name("ingestq"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTQ_")}
    env.update({"COLUMNS": "200", "INGESTQ_EMBEDDER": "fake", **extra})
    return env


def run(*args: str, ok: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [INGESTQ, *args], env=_env(**extra), capture_output=True, text=True, timeout=240, check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_ingest_wait_search_documents_backfill(index_database_url: str, tmp_path: Path) -> None:
    database_url = index_database_url
    db = ("--db", database_url)
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "queue.md").write_text("# Queue\n\nJobs are claimed with a lease and fenced by attempt.\n")
    (folder / "parser.md").write_text("# Parser\n\nDocuments are parsed in a sandboxed child process.\n")
    (folder / "empty.docx").write_bytes(b"")
    (folder / "notes.txt").write_text("skipped by --include")

    proc = run(*db, "ingest", str(folder), "--include", "*.md", "--include", "*.docx", "--wait", ok=False)
    assert proc.returncode == 1, proc.stderr  # one document failed
    assert "indexed 2 of 3 documents" in proc.stdout
    failed = [line for line in proc.stdout.splitlines() if "empty.docx:" in line]
    assert len(failed) == 1, proc.stdout

    proc = run(*db, "search", "sandboxed child process", "-k", "2", "--json")
    hits = json.loads(proc.stdout)["hits"]
    assert hits[0]["title"] == "Parser"
    assert hits[0]["document_id"] == str((folder / "parser.md").resolve())

    listing = json.loads(run(*db, "documents", "list", "--json").stdout)["documents"]
    assert sorted((Path(d["id"]).name, d["status"]) for d in listing) == [
        ("empty.docx", "failed"),
        ("parser.md", "indexed"),
        ("queue.md", "indexed"),
    ]
    queue_id = str((folder / "queue.md").resolve())
    shown = json.loads(run(*db, "documents", "show", queue_id, "--chunks", "--json").stdout)
    assert shown["chunk_count"] == len(shown["chunks"]) == 1

    again = run(*db, "ingest", str(folder / "queue.md"), "--wait")
    assert "0 embedded, 1 reused" in again.stdout

    assert "queued 0 documents" in run(*db, "backfill").stdout  # nothing changed
    run(*db, "documents", "delete", queue_id)
    error = run(*db, "documents", "show", queue_id, ok=False).stderr.strip()
    assert error == f"error: document {queue_id!r} not found in collection 'default'"


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    db = ("--db", f"sqlite:///{tmp_path / 'x.db'}")
    proc = run(*db, "ingest", str(tmp_path / "missing"), ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {tmp_path / 'missing'}: no such file or directory"
    proc = run(*db, "search", "anything", ok=False)
    assert proc.stderr.strip().startswith("error: collection 'default' does not exist")


def test_a_path_outside_the_ingest_roots_is_one_line(index_database_url: str, tmp_path: Path) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside.md"
    allowed.mkdir()
    outside.write_text("# Outside\n")
    proc = run(
        "--db", index_database_url, "ingest", str(outside), ok=False, INGESTQ_INGEST_PATH_ROOTS=str(allowed)
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: {outside}: outside the directories ingestion may read (INGESTQ_INGEST_PATH_ROOTS)"
    )
