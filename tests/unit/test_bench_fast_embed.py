"""The fast-embedder benchmark's own logic: its corpus, how a run becomes a verdict and a table row."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is beside src/, not installed
from bench.fast_embed import clean_everywhere, section, small_markdown, write_markdown
from bench.goals import CEILING_GOAL, evaluate


def run(backend: str, procs: int, **over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "backend": backend,
        "procs": procs,
        "preloaded_chunks": 12_000,
        "jobs": 8_000,
        "succeeded": 8_000,
        "at_attempt_1": 8_000,
        "max_attempt": 1,
        "lease_errors": 0,
        "chunks": 56_000,
        "wall_s": 100.0,
        "docs_per_s": 80.0,
        "chunks_per_s": 560.0,
        "cpu_s": [90.0],
        "server_cpu_s": 10.0,
        "most_running_one_worker": 64,
        "load_before": (2.0, 2.0, 2.0),
        "load_after": (2.5, 2.0, 2.0),
        "all_at_attempt_1": True,
    }
    r.update(over)
    return r


def ceiling(*runs: dict[str, Any]) -> dict[str, Any]:
    return {
        "docs": 8_000,
        "pre_docs": 120,
        "chunk_tokens": 64,
        "dimension": 384,
        "postgresql": "PG",
        "runs": list(runs),
        "command": "python -m bench.fast_embed",
        "started": "today",
    }


def test_the_corpus_is_deterministic_and_every_note_differs(tmp_path: Path) -> None:
    assert small_markdown(7) == small_markdown(7)
    assert small_markdown(7) != small_markdown(8)
    folder = write_markdown(tmp_path / "docs", 5, start=10)
    assert sorted(p.name for p in folder.iterdir()) == [f"note-{i:06d}.md" for i in range(10, 15)]


def test_the_goal_needs_both_backends_and_every_job_at_attempt_1() -> None:
    clean = ceiling(run("sqlite", 1), run("postgresql", 1))
    assert clean_everywhere(clean)[1] is True
    assert clean_everywhere(ceiling(run("sqlite", 1)))[1] is None  # PostgreSQL not measured: n/a
    retried = run(
        "postgresql", 2, at_attempt_1=7_000, max_attempt=3, lease_errors=1_000, all_at_attempt_1=False
    )
    assert clean_everywhere(ceiling(run("sqlite", 1), retried))[1] is False
    broken = ceiling(run("sqlite", 1), run("postgresql", 1), {"backend": "sqlite", "procs": 2, "error": "x"})
    assert clean_everywhere(broken)[1] is False
    assert clean_everywhere(ceiling())[1] is None
    verdicts = {v.goal: v for v in evaluate({"ceiling": clean})}
    assert verdicts[CEILING_GOAL].ok is True


def test_the_table_says_yes_or_what_went_wrong() -> None:
    retried = run(
        "postgresql", 2, at_attempt_1=7_000, max_attempt=3, lease_errors=1_000, all_at_attempt_1=False
    )
    text = "\n".join(section(ceiling(run("sqlite", 1), retried)))
    assert "## Ingestion ceiling: a fast embedder" in text
    assert (
        "| SQLite | 1 | 12,000 | 8,000 | 56,000 | 100.0 | 80.0 | 560 | yes | 1 | 64 | 90.0 | 10.0 |" in text
    )
    assert "**no**: 0 failed, 1,000 past attempt 1, 1,000 with a lease error" in text
