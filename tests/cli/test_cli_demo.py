"""`make demo` end to end with the real default model: the project's docs plus a generated PDF and DOCX
are ingested into a fresh SQLite store, and every question finds hits."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ingestq.cli.demo import make_pdf, run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
    # it ends with the one command that serves the dashboard over the demo's database: run it
    command = out.rstrip().splitlines()[-1].split()
    assert command[-1] == "serve", out
    await asyncio.to_thread(_dashboard_answers, command, tmp_path)


def _dashboard_answers(command: list[str], tmp_path: Path) -> None:
    port = free_port()
    with open(tmp_path / "serve.log", "ab") as log:
        server = subprocess.Popen([*command, "--port", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/dashboard/", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert page.status_code == 200
        assert "Overview" in page.text
        documents = httpx.get(f"http://127.0.0.1:{port}/dashboard/documents", timeout=10)
        assert "indexed" in documents.text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def test_generated_pdf_is_a_pdf() -> None:
    data = make_pdf([["hello world"]])
    assert data.startswith(b"%PDF-1.4")
    assert data.rstrip().endswith(b"%%EOF")
