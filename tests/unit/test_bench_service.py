"""`python -m bench.service` writes its section of BENCHMARKS.md between markers, and `python -m bench.run`
(which rewrites the rest of the file) keeps that section as it was."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is beside src/, not installed
from bench.service.report import BEGIN, END, insert, keep


def block(text: str) -> str:
    return f"{BEGIN}\n{text}\n{END}"


def test_the_section_goes_before_method_and_is_replaced_in_place() -> None:
    first = insert("# Benchmarks\n\n## Goals\n\n## Method\nhow\n", block("one"))
    assert first.index(BEGIN) < first.index("## Method")
    second = insert(first, block("two"))
    assert "one" not in second
    assert second.count(BEGIN) == 1
    assert second.replace("two", "one") == first


def test_a_bench_run_rewrite_keeps_the_service_section() -> None:
    old = insert("# Benchmarks\nold run\n\n## Method\nhow\n", block("service figures"))
    new = keep(old, "# Benchmarks\nnew run\n\n## Method\nhow\n")
    assert "new run" in new
    assert "old run" not in new
    assert block("service figures") in new
    assert keep("# Benchmarks\nno section\n", "# fresh\n") == "# fresh\n"


def test_the_median_run_is_reported_with_every_run_beside_it() -> None:
    from bench.service.report import _runs
    from bench.service.uploads import _median

    runs = [{"p99_ms": 46.0, "n": 1}, {"p99_ms": 18.3, "n": 2}, {"p99_ms": 25.1, "n": 3}]
    chosen = _median(runs, "p99_ms")
    assert chosen["n"] == 3  # 25.1: the middle one, not the best
    assert chosen["runs"] == [46.0, 18.3, 25.1]  # in run order
    assert _runs(chosen, "p99 ms") == " (median of 3 runs; p99 ms of each: 46, 18.3, 25.1)"
    assert _runs({"p99_ms": 1.0}, "p99 ms") == ""


def test_sections_not_measured_again_come_from_the_earlier_run_and_the_report_says_so() -> None:
    from bench.service.__main__ import _reuse

    earlier = {
        "started": "2026-12-05 12:19 UTC",
        "finished": "2026-12-05 12:44 UTC",
        "command": "python -m bench.service",
        "load_start": "0.3 0.9 1.0",
        "postgresql": "PostgreSQL 18",
        "uploads": {"sqlite": "old"},
        "polls": {"sqlite": "kept"},
        "flat": {},
        "sse": {"sqlite": "kept too"},
    }
    now: dict[str, Any] = {"uploads": {"sqlite": "new"}, "polls": {}, "flat": {}, "sse": {}}
    _reuse(now, earlier, ["uploads"])
    assert now["uploads"] == {"sqlite": "new"}
    assert now["polls"] == {"sqlite": "kept"}
    assert now["sse"] == {"sqlite": "kept too"}
    assert now["flat"] == {}  # nothing there to take
    (note,) = now["notes"]
    assert note.startswith("uploads measured by this command; polls, sse from the run of 2026-12-05 12:19")
