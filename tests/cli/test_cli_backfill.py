"""The document lifecycle through the real console script with the fake embedder, on SQLite (the store
behaviour underneath is tested on every backend in tests/pipeline/test_backfill.py and
test_document_settle.py): `backfill --wait` rebuilds what other chunker settings made, with a progress
bar; another model is refused in one line; a cancelled ingestion leaves no document pending."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from test_cli_ingest import run

PARAGRAPHS = [
    f"Paragraph {i} is about subject {i}: " + " ".join(f"term{i}n{j}" for j in range(30)) + "."
    for i in range(6)
]


def test_backfill_model_refusal_and_cancel(tmp_path: Path) -> None:
    db = ("--db", f"sqlite:///{tmp_path / 'docs.db'}")
    long_md, note = tmp_path / "long.md", tmp_path / "note.md"
    long_md.write_text("# Long\n\n" + "\n\n".join(PARAGRAPHS) + "\n")
    note.write_text("# Note\n\nA note about lighthouses.\n")

    def show(path: Path) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(run(*db, "documents", "show", str(path), "--json").stdout)
        return found

    run(*db, "ingest", str(long_md), "--wait")
    proc = run(*db, "backfill", "--wait", INGESTQ_CHUNK_TOKENS="24")
    assert "Backfilling" in proc.stdout  # the progress bar
    summary = re.search(r"indexed 1 of 1 documents: (\d+) chunks, (\d+) embedded", proc.stdout)
    assert summary is not None, proc.stdout
    chunks, embedded = map(int, summary.groups())
    doc = show(long_md)
    assert (doc["version"], doc["chunk_count"]) == (2, chunks)
    assert embedded > 0

    local = {"INGESTQ_EMBEDDER": "local"}
    proc = run(*db, "search", "anything", ok=False, **local)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: collection 'default' was embedded with fake/hash; this query would be embedded with "
        "sentence-transformers/all-MiniLM-L6-v2 (set INGESTQ_EMBEDDER to match)"
    )
    proc = run(*db, "backfill", ok=False, **local)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert "holds fake/hash vectors" in line

    # a cancelled ingestion that was never indexed fails with the reason, and ingesting again works
    run(*db, "ingest", str(note))
    (job,) = json.loads(run(*db, "jobs", "list", "--state", "queued", "--json").stdout)["jobs"]
    assert show(note)["status"] == "pending"
    run(*db, "jobs", "cancel", str(job["id"]))
    listing = json.loads(run(*db, "documents", "list", "--json").stdout)["documents"]
    assert sorted((Path(d["id"]).name, d["status"], d["error"]) for d in listing) == [
        ("long.md", "indexed", None),
        ("note.md", "failed", "cancelled before it was indexed"),
    ]
    run(*db, "ingest", str(note), "--wait")
    assert show(note)["status"] == "indexed"
