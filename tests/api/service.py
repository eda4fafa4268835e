"""Helpers for the service tests: a real `ingestq serve` process on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

INGESTQ = str(Path(sys.executable).parent / "ingestq")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serving(
    database_url: str,
    log: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
) -> Iterator[Service]:
    """`ingestq serve` until the block ends (SIGTERM, then a wait); yields once /healthz answers."""
    port = free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [INGESTQ, "--db", database_url, "serve", "--host", host, "--port", str(port), *args],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    service = Service(f"http://{host}:{port}", process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"ingestq serve exited {process.returncode}:\n{service.logged()}")
            try:
                if httpx.get(service.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"ingestq serve did not answer:\n{service.logged()}")
            time.sleep(0.05)
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
