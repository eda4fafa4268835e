"""The embed benchmark's own logic: which files, which paragraph it edits, how results become verdicts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is beside src/, not installed
from bench.embed_bench import edit_one_paragraph, pick_files
from bench.goals import embed_verdicts
from bench.report import render


def test_pick_files_spreads_over_the_sorted_tree(tmp_path: Path) -> None:
    for section in ("a", "b", "c", "d"):
        for i in range(5):
            (tmp_path / section).mkdir(exist_ok=True)
            (tmp_path / section / f"{i}.md").write_text("x")
    (tmp_path / "a" / "skip.txt").write_text("x")
    picked = pick_files(tmp_path, 4)
    assert [p.parts[0] for p in picked] == ["a", "b", "c", "d"]
    assert len(pick_files(tmp_path, None)) == 20
    assert len(pick_files(tmp_path, 100)) == 20


def test_edit_changes_one_prose_line_outside_front_matter_and_code(tmp_path: Path) -> None:
    long = "Words " * 20
    text = (
        "---\ntitle: A long front matter line that would count if it were not front matter at all\n---\n"
        f"{long}one\n\n```\n{long}in code\n```\n\n{long}two\n\n{long}three\n"
    )
    (tmp_path / "short.md").write_text(f"{long}only\n")
    (tmp_path / "long.md").write_text(text)
    file, where = edit_one_paragraph(tmp_path)
    assert file.name == "long.md"
    changed = [
        (old, new)
        for old, new in zip(text.splitlines(), file.read_text().splitlines(), strict=True)
        if old != new
    ]
    assert len(changed) == 1
    assert changed[0][0] == f"{long}two"
    assert changed[0][1].startswith(f"{long}two This sentence")
    assert where == "long.md line 10"


def _results(ours_cps: float, again_s: float, embedded: int) -> dict[str, Any]:
    load = {"load_before": [1.0, 1.0, 1.0], "load_after": [1.2, 1.0, 1.0]}
    run = {
        "raw": {"chunks": 3000, "chunks_per_s": 40.0, "encode_s": 75.0, "documents": 991, **load},
        "ingestq": {
            "cold": {"chunks": 3000, "chunks_per_s": ours_cps, "wall_s": 3000 / ours_cps, "over_window": 0},
            "again": {"chunks": 3000, "wall_s": again_s, "embedded": 0},
            "edit": {"chunks": 3000, "wall_s": 5.0},
        },
        "llamaindex": {
            "cold": {"chunks": 2600, "chunks_per_s": 25.0, "wall_s": 104.0, "over_window": 1300},
            "again": {"chunks": 0, "wall_s": 6.0},
            "edit": {"chunks": 20, "wall_s": 9.0},
        },
        "edit": {
            "file": "x.md line 3",
            "chunks_before": 20,
            "chunks_after": 20,
            "changed_chunks": 1,
            "ingestq_embedded": embedded,
            "ingestq_reused": 20 - embedded,
            "llamaindex_embedded": 20,
        },
        "vectors": {
            "texts": 48,
            "cosine_min": 0.99999999,
            "max_abs_diff": 1e-7,
            "peer_norm_min": 1.0,
            "peer_norm_max": 1.0,
        },
    }
    return {"embed": {"files": 992, "corpus_files": 992, "runs": [run], "command": "python -m bench.run"}}


@pytest.mark.parametrize(
    ("ours_cps", "again_s", "embedded", "expected"),
    [
        (38.0, 2.0, 1, [True, True, True, True, True, True]),
        (20.0, 20.0, 3, [False, False, True, True, False, False]),
    ],
)
def test_embed_verdicts(ours_cps: float, again_s: float, embedded: int, expected: list[bool]) -> None:
    verdicts = embed_verdicts(_results(ours_cps, again_s, embedded))
    assert [v.ok for v in verdicts] == expected


def test_report_renders_an_embed_only_run() -> None:
    results = {
        **_results(38.0, 2.0, 1),
        "command": "python -m bench.run --only-section embed",
        "started": "2026-11-22 20:00 UTC",
        "finished": "2026-11-22 20:40 UTC",
        "duration_s": 2400.0,
        "machine": {"cores": 2, "cpu": "cpu", "memory_gb": 1, "kernel": "k", "python": "3.11"},
        "postgresql": "not measured",
        "versions": {"llama-index-core": "0.14.25"},
        "load_start": "1.00",
        "load_end": "1.00",
        "throughput": [],
        "pickup": [],
        "baselines": {},
        "flat": {},
    }
    text = render(results)
    assert "## Ingestion: ingestq end to end vs the raw model and LlamaIndex" in text
    assert "| embed: ingestq ≥ 1.2× LlamaIndex IngestionPipeline chunks/s (cold) | 38.0 vs 25.0" in text
    assert "pgqueuer" not in text  # no queue section ran: no queue goals, tables or analysis
    assert "**1 embedded, 19 reused**" in text
