"""Processes for the service benchmarks: `ingestq serve`, `ingestq worker`, the peer app, the load client."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness import OUT, ROOT

BIN = Path(sys.executable).parent
INGESTQ = str(BIN / "ingestq")


def env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # this checkout's sources first, whatever the venv's editable install points at
    path = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **(extra or {})}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    url: str = ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _log(name: str) -> Any:
    OUT.mkdir(parents=True, exist_ok=True)
    return open(OUT / f"service-{name}.log", "ab")


def start(name: str, argv: Sequence[str], extra_env: Mapping[str, str] | None = None, url: str = "") -> Proc:
    with _log(name) as out:
        process = subprocess.Popen(list(argv), stdout=out, stderr=out, env=env(extra_env), cwd=ROOT)
    proc = Proc(name, process, url)
    if url:
        wait_http(proc, url + "/healthz")
    return proc


def wait_http(proc: Proc, url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited {proc.process.returncode} (see bench/out/service-*.log)")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name} did not answer {url}")
        time.sleep(0.05)


def serve(database_url: str, name: str = "serve", extra_env: Mapping[str, str] | None = None) -> Proc:
    port = free_port()
    argv = [INGESTQ, "--db", database_url, "serve", "--port", str(port)]
    return start(name, argv, extra_env, f"http://127.0.0.1:{port}")


def worker(database_url: str, *args: str, extra_env: Mapping[str, str] | None = None) -> Proc:
    return start("worker", [INGESTQ, "--db", database_url, "worker", *args], extra_env)


def load(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load client in its own process; its JSON result plus percentiles."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.service.load", json.dumps(spec)],
        capture_output=True,
        env=env(),
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load client failed: {done.stderr.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    result.update(summary(result["latencies_ms"]))
    ok = sum(n for k, n in result["statuses"].items() if k.startswith("2"))
    result["ok"] = ok
    result["achieved_per_s"] = ok / result["wall_s"] if result["wall_s"] else 0.0
    del result["latencies_ms"]
    return result


def summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    s = sorted(samples)
    return {
        "n": len(s),
        "p50_ms": statistics.median(s),
        "p99_ms": s[min(len(s) - 1, int(0.99 * len(s)))],
        "max_ms": s[-1],
    }


def loadavg() -> float:
    return os.getloadavg()[0]
