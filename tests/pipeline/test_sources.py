"""Sources: files and directories with globs, uploaded bytes, and URL fetching against a real local
HTTP server (size limit, redirect cap, non-public addresses refused unless the setting allows them)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingestq.errors import PermanentError
from ingestq.pipeline.sources import (
    FetchLimits,
    FetchRefused,
    FetchUnavailable,
    SourceError,
    SourceTooLarge,
    expand_paths,
    fetch_url,
    from_bytes,
    read_file,
)

BODY = b"# Hello\n\nA small markdown document served over real HTTP.\n"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        return

    def do_GET(self) -> None:
        path = self.path
        if path.startswith("/redirect/"):
            n = int(path.rsplit("/", 1)[1])
            self.send_response(302)
            self.send_header("Location", f"/redirect/{n - 1}" if n > 1 else "/doc.md")
            self.end_headers()
            return
        if path == "/doc.md":
            self._send(200, BODY)
        elif path == "/big":
            self._send(200, b"x" * 5000)
        elif path == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(10):
                piece = b"y" * 1000
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/host":
            self._send(200, (self.headers.get("Host") or "").encode())
        elif path == "/down":
            self._send(503, b"busy")
        else:
            self._send(404, b"no")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


ALLOW = FetchLimits(allow_private=True, timeout=10)


async def test_fetch_returns_the_body_and_a_name_hint(server: str) -> None:
    doc = await fetch_url(f"{server}/doc.md", ALLOW)
    assert doc.data == BODY
    assert doc.name == "doc.md"
    assert doc.source == f"{server}/doc.md"


async def test_the_request_goes_to_the_checked_address_with_the_name_as_host(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    doc = await fetch_url(f"http://localhost:{port}/host", ALLOW)
    assert doc.data.decode() == f"localhost:{port}"


async def test_loopback_is_refused_by_default_by_address_and_by_name(server: str) -> None:
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.1.*non-public"):
        await fetch_url(f"{server}/doc.md", FetchLimits())
    port = server.rsplit(":", 1)[1]
    with pytest.raises(FetchRefused, match="localhost"):
        await fetch_url(f"http://localhost:{port}/doc.md", FetchLimits())
    for url in ("http://169.254.169.254/latest", "http://10.1.2.3/x", "http://[::1]/x"):
        with pytest.raises(FetchRefused):
            await fetch_url(url, FetchLimits(timeout=5))


async def test_redirects_are_followed_up_to_the_cap(server: str) -> None:
    doc = await fetch_url(f"{server}/redirect/3", FetchLimits(allow_private=True, max_redirects=3))
    assert doc.data == BODY
    with pytest.raises(SourceError, match="more than 2 redirects"):
        await fetch_url(f"{server}/redirect/3", FetchLimits(allow_private=True, max_redirects=2))


async def test_size_limit_with_and_without_content_length(server: str) -> None:
    limits = FetchLimits(allow_private=True, max_bytes=4000)
    with pytest.raises(SourceTooLarge, match="over the 4000 bytes limit"):
        await fetch_url(f"{server}/big", limits)
    with pytest.raises(SourceTooLarge, match="more than the 4000 bytes limit"):
        await fetch_url(f"{server}/big-chunked", limits)
    assert len((await fetch_url(f"{server}/big-chunked", ALLOW)).data) == 10_000


async def test_server_errors_are_retryable_client_errors_permanent(server: str) -> None:
    with pytest.raises(FetchUnavailable, match="503"):
        await fetch_url(f"{server}/down", ALLOW)
    with pytest.raises(SourceError, match="404") as info:
        await fetch_url(f"{server}/missing", ALLOW)
    assert isinstance(info.value, PermanentError)
    with pytest.raises(SourceError, match="only http and https"):
        await fetch_url(f"{server}/redirect/0".replace("http://", "ftp://"), ALLOW)


def test_directories_expand_recursively_with_globs(tmp_path: Path) -> None:
    (tmp_path / "docs" / "guides").mkdir(parents=True)
    (tmp_path / "docs" / ".git").mkdir()
    for name in ("a.md", "b.txt", "guides/c.md", "guides/draft.md", ".git/config"):
        (tmp_path / "docs" / name).write_text(name)
    single = tmp_path / "single.pdf"
    single.write_bytes(b"%PDF-")
    found = expand_paths([tmp_path / "docs", single], include=["*.md"], exclude=["*draft*"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "docs/a.md",
        "docs/guides/c.md",
        "single.pdf",
    ]
    assert len(expand_paths([tmp_path / "docs", tmp_path / "docs" / "a.md"])) == 4  # no duplicates
    with pytest.raises(SourceError, match="no such file or directory"):
        expand_paths([tmp_path / "nope"])


def test_files_and_uploads_respect_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"12345")
    assert read_file(path, 5).data == b"12345"
    with pytest.raises(SourceTooLarge, match="over the 4 bytes limit"):
        read_file(path, 4)
    with pytest.raises(SourceError, match="no such file"):
        read_file(tmp_path / "missing.txt", 10)
    assert from_bytes(b"abc", "x.md", 3).source == "upload:x.md"
    with pytest.raises(SourceTooLarge):
        from_bytes(b"abcd", "x.md", 3)
