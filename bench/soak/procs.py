"""The processes under soak: `ingestq serve` (real uvicorn) and their resident memory, read from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import machine
from bench.chaos.harness import INGESTQ

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_serve(db_url: str, log: Path, env: dict[str, str], within: float = 90) -> Served:
    """`ingestq serve` on a free loopback port; returns once /readyz answers 200 (schema migrated)."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [INGESTQ, "--db", db_url, "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )
    served = Served(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ingestq serve exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(served.url + "/readyz", timeout=2).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"ingestq serve did not become ready:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes], within: float = 40) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(within)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def rss_mb(pid: int) -> float | None:
    """Resident set size of one process (VmRSS in /proc/<pid>/statm, pages), None once it is gone."""
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident * PAGE_MB


def children(pid: int) -> list[int]:
    """Live descendants of `pid` (a worker's parser processes)."""
    return machine.descendants(pid)
