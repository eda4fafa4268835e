"""`make demo` end to end: real worker processes drain the probe jobs with the expected outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestq.demo import DOOMED, run


@pytest.mark.slow
async def test_demo_drains_everything_with_the_expected_dead_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(tmp_path) == 0
    out = capsys.readouterr().out
    assert f"{DOOMED} dead-lettered (expected {DOOMED})" in out
    assert (tmp_path / "demo.db").is_file()
