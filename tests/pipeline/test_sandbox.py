"""Hostile inputs through the sandboxed parser pool: each ends as a result, the caller survives,
time and memory stay within the limits, and the pool keeps serving the next file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from docgen import (
    make_docx,
    make_many_pages_pdf,
    make_nested_html,
    make_pdf,
    make_slow_pdf,
    make_zip_bomb_docx,
    truncate,
)

from ingestq.pipeline.errors import DocumentTooLarge, ParserCrashed
from ingestq.pipeline.model import ParseOptions, SourceDocument
from ingestq.pipeline.sandbox import ParserPool, SandboxLimits, _Child, _PipeConnection

GOOD = SourceDocument(make_pdf([["Still serving."]]), "good.pdf")


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def assert_still_serving(pool: ParserPool) -> None:
    result = pool.parse(GOOD)
    assert result.ok, result.reason
    assert result.unwrap().blocks[0].text == "Still serving."


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b"", "empty.docx", "empty file (0 bytes)"),
        (os.urandom(4096), "random.pdf", None),
        (os.urandom(4096), "random.docx", None),
        (truncate(make_docx(), 0.4), "truncated.docx", "corrupt DOCX: "),
        (truncate(make_pdf([["x"]] * 5), 0.3), "truncated.pdf", None),
        (b"%PDF-1.7\n%%EOF\n", "header-only.pdf", "corrupt PDF: "),
    ],
)
def test_bad_files_fail_with_one_line_reason(
    pool: ParserPool, data: bytes, name: str, reason: str | None
) -> None:
    result = pool.parse(SourceDocument(data, name))
    if result.ok:  # PDFium may honestly recover a truncated file
        assert result.unwrap().blocks
    else:
        assert result.reason
        assert "\n" not in result.reason
        assert not result.quarantine
        if reason is not None:
            assert result.reason.startswith(reason)
        with pytest.raises(type(result.error())):
            result.unwrap()
    assert_still_serving(pool)


def test_invalid_utf8_with_nuls_is_recovered(pool: ParserPool) -> None:
    data = b"Caf\xe9\x00 au lait \xff\xfe\x00 and\x00 more text\n\nSecond paragraph.\x00\n"
    result = pool.parse(SourceDocument(data, "mixed.txt"))
    document = result.unwrap()
    assert "\x00" not in document.text
    assert "au lait" in document.text
    assert "Second paragraph." in document.text


def test_over_size_limit_is_refused_before_parsing() -> None:
    with ParserPool(1, SandboxLimits(max_input_bytes=1024)) as small:
        result = small.parse(SourceDocument(b"a" * 2048, "big.txt"))
        assert not result.ok
        assert result.reason == "file is 2.0 KiB, over the 1.0 KiB limit"
        assert isinstance(result.error(), DocumentTooLarge)
        assert small.stats.children_started == 0  # never reached a child


def test_hundred_thousand_page_pdf_is_refused_by_page_limit(pool: ParserPool) -> None:
    result = pool.parse(SourceDocument(make_many_pages_pdf(100_000), "huge.pdf"))
    assert not result.ok
    assert result.reason == "PDF has 100,000 pages, over the 5,000-page limit"
    assert isinstance(result.error(), DocumentTooLarge)
    assert_still_serving(pool)


def test_time_limit_kills_a_slow_parse_and_the_pool_recovers() -> None:
    limits = SandboxLimits(time_limit=1.0, memory_limit=512 * 1024**2)
    with ParserPool(1, limits) as pool:
        result = pool.parse(
            SourceDocument(make_slow_pdf(50_000), "slow.pdf"), ParseOptions(max_pages=1_000_000, ocr=False)
        )
        assert not result.ok
        assert result.timed_out
        assert result.quarantine
        assert result.reason == "parser timed out after 1 s"
        assert isinstance(result.error(), ParserCrashed)
        assert result.seconds < limits.time_limit + 5  # killed at the limit, not when parsing ended
        assert_still_serving(pool)
        assert pool.stats.timed_out == 1
        assert pool.stats.children_started == 2


def test_zip_bomb_docx_is_refused_from_its_directory(pool: ParserPool) -> None:
    result = pool.parse(SourceDocument(make_zip_bomb_docx(300), "bomb.docx"))
    assert not result.ok
    assert result.reason.startswith("DOCX expands to 301 MiB, over the 256 MiB limit (zip bomb?)")
    assert_still_serving(pool)


def test_memory_limit_stops_a_bomb_that_gets_past_the_checks() -> None:
    bomb = SourceDocument(make_zip_bomb_docx(400), "bomb.docx")
    unchecked = ParseOptions(max_unpacked_bytes=1 << 40)
    with ParserPool(1, SandboxLimits(memory_limit=384 * 1024**2)) as pool:
        before = rss_mib()
        result = pool.parse(bomb, unchecked)
        assert not result.ok
        assert result.crashed
        assert result.quarantine
        assert "memory" in result.reason  # MemoryError answer, or a native abort/kill under the cap
        assert rss_mib() - before < 100  # the caller never held the unpacked bytes
        assert_still_serving(pool)
        assert pool.stats.crashed == 1


def test_deeply_nested_html_ends_cleanly(pool: ParserPool) -> None:
    result = pool.parse(SourceDocument(make_nested_html(100_000), "deep.html"))
    if result.ok:
        assert "bottom" in result.unwrap().text
    else:
        assert result.reason
        assert "\n" not in result.reason
    assert_still_serving(pool)


def test_a_child_killed_mid_parse_is_reported_as_a_crash_and_replaced() -> None:
    with ParserPool(1, SandboxLimits(time_limit=120)) as pool:
        assert_still_serving(pool)
        (pid,) = pool.child_pids()
        slow = SourceDocument(make_slow_pdf(50_000), "slow.pdf")
        killer = threading.Timer(0.5, os.kill, (pid, signal.SIGSEGV))
        killer.start()
        try:
            result = pool.parse(slow, ParseOptions(max_pages=1_000_000, ocr=False))
        finally:
            killer.cancel()
        assert not result.ok
        assert result.crashed
        assert not result.timed_out
        assert result.reason == "parser process crashed with SIGSEGV"
        assert_still_serving(pool)
        assert pool.child_pids() != [pid]


def test_one_child_serves_many_documents_until_it_is_recycled() -> None:
    docs = [SourceDocument(make_pdf([[f"Document {i}."]]), f"{i}.pdf") for i in range(7)]
    with ParserPool(1, SandboxLimits(max_tasks_per_child=3)) as pool:
        pids = []
        for i, doc in enumerate(docs):
            assert pool.parse(doc).unwrap().blocks[0].text == f"Document {i}."
            pids += pool.child_pids()
        # no interpreter start-up per document: one child per 3 documents, then a fresh one
        assert [pids.index(pid) for pid in pids] == [0, 0, 0, 3, 3, 3, 6]
        assert pool.stats.children_started == 3


def test_limits_hold_in_the_children_that_replace_killed_ones() -> None:
    # ~10 ms of PDFium work per page and no text: minutes of parsing on any machine, memory flat
    slow = SourceDocument(make_slow_pdf(50_000), "slow.pdf")
    endless = ParseOptions(max_pages=1_000_000, ocr=False)
    bomb = SourceDocument(make_zip_bomb_docx(400), "bomb.docx")
    unchecked = ParseOptions(max_unpacked_bytes=1 << 40)
    # 5 s: long enough for the bomb to reach the memory cap first on a busy machine
    with ParserPool(1, SandboxLimits(time_limit=5.0, memory_limit=384 * 1024**2)) as pool:
        assert pool.parse(slow, endless).timed_out
        assert_still_serving(pool)  # the next document parses, in a new child
        crashed = pool.parse(bomb, unchecked)  # that child still has the memory cap
        assert crashed.crashed
        assert "memory" in crashed.reason
        assert_still_serving(pool)
        assert pool.parse(slow, endless).timed_out  # and its successor the time limit
        assert_still_serving(pool)
        assert (pool.stats.timed_out, pool.stats.crashed) == (2, 1)
        assert pool.stats.children_started >= 3


async def test_async_parses_run_side_by_side() -> None:
    docs = [SourceDocument(make_pdf([[f"Document {i}."]]), f"{i}.pdf") for i in range(4)]
    with ParserPool(2) as pool:
        results = await asyncio.gather(*(pool.aparse(doc) for doc in docs))
    assert [r.unwrap().blocks[0].text for r in results] == [f"Document {i}." for i in range(4)]


def test_children_outlive_the_thread_that_started_them() -> None:
    # Pools are used from executor threads (asyncio.to_thread) that come and go.
    with ParserPool(1) as pool:
        starter = threading.Thread(target=assert_still_serving, args=(pool,))
        starter.start()
        starter.join()
        (pid,) = pool.child_pids()
        assert_still_serving(pool)
        assert pool.child_pids() == [pid]
        assert pool.stats.crashed == 0


def test_children_exit_when_the_parent_dies(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        "from ingestq.pipeline.model import SourceDocument\n"
        "from ingestq.pipeline.sandbox import ParserPool\n"
        "pool = ParserPool(1)\n"
        "assert pool.parse(SourceDocument(b'hello', 'a.txt')).ok\n"
        "print(pool.child_pids()[0], flush=True)\n"
        "os._exit(0)  # no cleanup: the child must notice on its own\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    child = int(done.stdout.strip())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_child_killed_by_two_threads_at_once_closes_its_pipes_once() -> None:
    """The pool closing while its start-up check starts a child: the closer and the starter's failure
    path both kill that child. Its pipe fds were closed twice, and the second os.close raised EBADF out
    of the pool's close (CI: `ingestq worker` stopped by SIGTERM during its check exited 1 with
    "error: [Errno 9] Bad file descriptor"), or could have closed an fd reused meanwhile."""
    closes: list[int] = []

    class SlowClose(_PipeConnection):
        def close(self) -> None:
            closes.append(threading.get_ident())
            time.sleep(0.1)  # the other thread's kill arrives while this close is under way
            super().close()

    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child = _Child(process, SlowClose(from_child_r, to_child_w))
    try:
        threads = [threading.Thread(target=child.kill) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(closes) == 1
        assert process.poll() is not None
    finally:
        os.close(to_child_r)
        os.close(from_child_w)
