"""A parser process that cannot start, or a local model that does not load, is this machine's fault:
`ParserUnavailable` before any document is sent (never a crash of the document), one line naming the
cause and the fix, no respawn loop, and `IngestRuntime.health_check` raising `Unavailable` until mended.

The breakage is real: a package shadowing trafilatura (which the HTML parser imports) fails to import
in the parser children, exactly as the lxml.html.clean split once did.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from breakage import LXML_CLEAN, mend, pythonpath, shadow

from ingestq.errors import Unavailable
from ingestq.pipeline.errors import ParserUnavailable
from ingestq.pipeline.ingest.runtime import IngestRuntime
from ingestq.pipeline.model import SourceDocument
from ingestq.pipeline.sandbox import ParserPool
from ingestq.settings import Settings
from ingestq.store import open_store

DOC = SourceDocument(b"# Title\n\nSome text.\n", "doc.md")


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """trafilatura fails to import in every parser child started from now on."""
    folder = tmp_path / "broken"
    package = shadow(folder, "trafilatura", LXML_CLEAN)
    monkeypatch.setenv("PYTHONPATH", pythonpath(folder))
    return package


def test_a_child_that_cannot_start_is_reported_in_one_line_and_not_respawned(broken: Path) -> None:
    with ParserPool(1) as pool:
        with pytest.raises(ParserUnavailable) as info:
            pool.parse(DOC)
        reason = str(info.value)
        assert reason.startswith(f"parser process failed to start: ImportError: {LXML_CLEAN}; "), reason
        assert "repair the parser libraries" in reason
        assert "\n" not in reason
        assert pool.unavailable == reason
        started = time.monotonic()
        for _ in range(50):  # callers that keep asking get the answer at once, with no new child
            with pytest.raises(ParserUnavailable, match=r"lxml\.html\.clean"):
                pool.parse(DOC)
        assert time.monotonic() - started < 1.0
        assert pool.stats.children_started == 1
        # no document was parsed, failed or crashed: the start failure is nobody's document's
        assert (pool.stats.parsed, pool.stats.failed, pool.stats.crashed) == (0, 0, 0)

        mend(broken)
        pool.check()  # at once, within the backoff
        assert pool.unavailable is None
        assert pool.parse(DOC).ok
        assert pool.stats.children_started == 2


def test_the_start_backoff_doubles(broken: Path) -> None:
    with ParserPool(1) as pool:
        for expected in (1.0, 2.0, 4.0):
            with pytest.raises(ParserUnavailable):
                pool.check()  # check always tries a child
            assert pool._start_backoff == expected
        assert pool.stats.children_started == 3


async def test_the_health_check_raises_unavailable_until_mended(broken: Path, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}", embedder="fake")
    store = open_store(settings)
    await store.open()
    try:
        async with IngestRuntime(store, settings) as runtime:
            with pytest.raises(Unavailable) as info:
                await runtime.health_check()
            assert info.value.reason.startswith("parser process failed to start: ImportError: lxml.html")
            assert str(info.value) == info.value.reason
            with pytest.raises(Unavailable):
                await info.value.recheck()
            mend(broken)
            await info.value.recheck()  # mended: returns
            await runtime.health_check()
    finally:
        await store.close()


def test_a_child_that_dies_before_it_can_say_why_is_unavailable_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that fails before the sandbox's own code runs (here its stdlib import of multiprocessing)
    cannot report the error: the reason names the exit status and where the traceback went."""
    folder = tmp_path / "broken"
    shadow(folder, "multiprocessing", "broken on purpose")
    monkeypatch.setenv("PYTHONPATH", pythonpath(folder))
    with ParserPool(1) as pool, pytest.raises(ParserUnavailable) as info:
        pool.parse(DOC)
    assert str(info.value) == (
        "parser process failed to start: exited unexpectedly with status 1; "
        "see the parser process's traceback in the worker's log"
    )
    assert pool.stats.crashed == 0
