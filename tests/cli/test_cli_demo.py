"""`make demo` end to end with the real default model: the project's docs plus a generated PDF and DOCX
are ingested into a fresh SQLite store, and every question finds hits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingestq.cli.demo import make_pdf, run


@pytest.mark.slow
async def test_demo_ingests_docs_pdf_and_docx_and_finds_hits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(tmp_path) == 0
    out = capsys.readouterr().out
    assert re.search(r"indexed (\d+) of \1 documents", out)
    assert "failed" not in out
    assert "Word documents in ingestq" in out  # the generated DOCX is searchable
    assert (tmp_path / "demo.db").is_file()


def test_generated_pdf_is_a_pdf() -> None:
    data = make_pdf([["hello world"]])
    assert data.startswith(b"%PDF-1.4")
    assert data.rstrip().endswith(b"%%EOF")
