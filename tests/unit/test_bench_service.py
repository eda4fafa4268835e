"""`python -m bench.service` writes its section of BENCHMARKS.md between markers, and `python -m bench.run`
(which rewrites the rest of the file) keeps that section as it was."""

from __future__ import annotations

import sys
from pathlib import Path

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
