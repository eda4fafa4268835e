"""Uploads are spooled, not held in memory: a real `ingestq serve` receives a 50 MB file (64 MB cap)
and its peak RSS (VmHWM in /proc) rises by far less than the file's size; the bytes are stored whole."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service import Service, serving

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "acceptance")]
from workers import run_store  # noqa: E402

MB = 1024**2
BIG = 50 * MB
CAP = 64 * MB
BOUND = 20 * MB
"""Generous: the whole file read into memory once (what the server did before spooling) adds ≥ 50 MB,
twice as it did (a growing bytearray, then a bytes copy) ≥ 100 MB."""

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


@pytest.fixture(autouse=True)
def fake_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTQ_EMBEDDER", "fake")


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def multipart(name: str, size: int, seed: bytes) -> tuple[Iterator[bytes], str, str]:
    """A streamed multipart body of `size` pseudo-random bytes; its content type and the file's sha256
    (the body is generated twice, never held whole by the test either)."""
    boundary = "spool-test-boundary"

    def blocks() -> Iterator[bytes]:
        block = hashlib.sha256(seed).digest() * (MB // 32)
        for k in range(size // MB):
            yield block[k % 32 :] + block[: k % 32]

    digest = hashlib.sha256()
    for b in blocks():
        digest.update(b)

    def body() -> Iterator[bytes]:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'
        yield head.encode()
        yield from blocks()
        yield f"\r\n--{boundary}--\r\n".encode()

    return body(), f"multipart/form-data; boundary={boundary}", digest.hexdigest()


def upload(service: Service, name: str, size: int) -> tuple[httpx.Response, str]:
    body, ctype, digest = multipart(name, size, name.encode())
    r = httpx.post(service.url + "/v1/documents", content=body, headers={"content-type": ctype}, timeout=120)
    return r, digest


def test_a_large_upload_does_not_raise_the_server_rss_by_its_size(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    env = {"INGESTQ_UPLOAD_MAX_BYTES": str(CAP)}
    with serving(url, tmp_path / "serve.log", env=env) as service:
        warm, _ = upload(service, "warm.bin", 4 * MB)  # every code path of an upload, and a spooled one
        assert warm.status_code == 202, warm.text
        before = peak_rss(service.process.pid)
        r, digest = upload(service, "big.bin", BIG)
        assert r.status_code == 202, r.text
        grown = peak_rss(service.process.pid) - before
        assert grown < BOUND, f"peak RSS grew by {grown / MB:.1f} MB for a {BIG / MB:.0f} MB upload"
        assert r.json()["document_id"] == f"big.bin@{digest[:12]}"
        stored = run_store(url, "blob_get", digest)
        assert isinstance(stored, bytes)
        assert len(stored) == BIG
        assert hashlib.sha256(stored).hexdigest() == digest
