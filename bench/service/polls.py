"""Status polls while documents are embedded, and what a SIGKILL right after the 202s loses: ingestq
(`ingestq serve` + an `ingestq worker` process, the local model) beside the FastAPI `BackgroundTasks` app
(bench/service/background_app.py, the same pipeline functions in the web process), in the same run."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from bench.harness import OUT
from bench.service import databases, procs, uploads

TERMINAL = {"indexed", "failed", "quarantined"}


class Side(Protocol):
    """How to start one side, where it uploads, and how to read a document's status."""

    name: str

    def start(self) -> procs.Proc: ...
    def upload_url(self, server: procs.Proc) -> str: ...
    def status(self, client: httpx.Client, server: procs.Proc, location: str) -> str: ...
    def stop(self) -> None: ...


class Ingestq:
    name = "ingestq"

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._db = databases.fresh(backend, "polls")
        self.url, _ = self._db.__enter__()
        self.worker = procs.worker(self.url)

    def start(self) -> procs.Proc:
        return procs.serve(self.url)

    def upload_url(self, server: procs.Proc) -> str:
        return server.url + "/v1/documents"

    def status(self, client: httpx.Client, server: procs.Proc, location: str) -> str:
        r = client.get(server.url + location)
        return str(r.json().get("status")) if r.status_code == 200 else f"http {r.status_code}"

    def stop(self) -> None:
        self.worker.stop()
        self._db.__exit__(None, None, None)


class Background:
    name = "FastAPI BackgroundTasks"

    def __init__(self) -> None:
        self.index = OUT / "service-peer-index.db"
        self.index.unlink(missing_ok=True)

    def start(self) -> procs.Proc:
        port = procs.free_port()
        argv = [sys.executable, "-m", "uvicorn", "bench.service.background_app:app", "--port", str(port)]
        argv += ["--log-level", "warning"]
        return procs.start("peer", argv, {"BENCH_PEER_INDEX": str(self.index)}, f"http://127.0.0.1:{port}")

    def upload_url(self, server: procs.Proc) -> str:
        return server.url + "/upload"

    def status(self, client: httpx.Client, server: procs.Proc, location: str) -> str:
        r = client.get(server.url + location)
        return str(r.json().get("status")) if r.status_code == 200 else f"http {r.status_code}"

    def indexed(self) -> set[str]:
        import sqlite3

        with sqlite3.connect(self.index) as conn:
            return {str(r[0]) for r in conn.execute("SELECT id FROM indexed")}

    def stop(self) -> None:
        self.index.unlink(missing_ok=True)


def _upload(side: Side, server: procs.Proc, docs: int, tag: str) -> list[str]:
    r = procs.load(
        {
            "mode": "upload",
            "url": side.upload_url(server),
            "pdf": str(uploads.pdf()),
            "rate": 20,
            "seconds": docs / 20,
            "tag": tag,
            "keep_answers": True,
        }
    )
    return [a["documents"][0]["location"] for a in r["answers"]]


def _wait_all(side: Side, server: procs.Proc, locations: list[str], timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=30) as client:
        while True:
            states = [side.status(client, server, loc) for loc in locations]
            if all(s in TERMINAL or s.startswith(("failed", "http 404")) for s in states):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(1)
    counts: dict[str, int] = {}
    for s in states:
        counts[s] = counts.get(s, 0) + 1
    return counts


def _wait_started(side: Side, server: procs.Proc, locations: list[str], timeout: float) -> float:
    """Seconds until some document has left `pending` (its ingestion runs)."""
    t0 = time.monotonic()
    with httpx.Client(timeout=30) as client:
        while time.monotonic() - t0 < timeout:
            if any(side.status(client, server, loc) != "pending" for loc in locations[:3]):
                break
            time.sleep(0.2)
    return time.monotonic() - t0


def polls(side: Side, docs: int, seconds: float, rate: float, log: Callable[[str], None]) -> dict[str, Any]:
    server = side.start()
    try:
        t0 = time.monotonic()
        locations = _upload(side, server, docs, "polls")
        # the window opens once ingestion has begun (a worker loads its model first): polls while it works
        result_started = _wait_started(side, server, locations, 600)
        spec = {"mode": "poll", "url": server.url, "paths": locations, "rate": rate, "seconds": seconds}
        load_before = procs.loadavg()
        result = procs.load(spec)
        result.update(docs=len(locations), load_before=load_before, load_after=procs.loadavg())
        result["started_after_s"] = result_started
        result["states_after_window"] = _wait_all(side, server, locations, 0)
        result["states_at_end"] = _wait_all(side, server, locations, 600)
        result["all_done_s"] = time.monotonic() - t0
        log(
            f"polls {side.name}: p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms "
            f"{result['statuses']}; after the window {result['states_after_window']}, "
            f"at the end {result['states_at_end']} ({result['all_done_s']:.0f} s)"
        )
        return result
    finally:
        server.stop()


def restart(side: Side, docs: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Upload `docs`, SIGKILL the server the moment the last 202 is in, start it again, wait."""
    server = side.start()
    locations = _upload(side, server, docs, "restart")
    server.stop(signal.SIGKILL)
    server = side.start()
    try:
        if isinstance(side, Background):
            time.sleep(10)  # nothing resumes the lost tasks: give it the chance anyway
            done = side.indexed()
            ids = {loc.rsplit("/", 1)[-1] for loc in locations}
            states = {"indexed": len(ids & done), "never indexed": len(ids - done)}
        else:
            states = _wait_all(side, server, locations, 600)
        lost = len(locations) - states.get("indexed", 0)
        log(f"restart {side.name}: {len(locations)} accepted, after the restart {states}; lost {lost}")
        return {"accepted": len(locations), "states": states, "lost": lost}
    finally:
        server.stop()


def measure(
    backends: list[str], docs: int, seconds: float, rate: float, restart_docs: int, log: Callable[[str], None]
) -> dict[str, Any]:
    out: dict[str, Any] = {"docs": docs, "seconds": seconds, "rate": rate, "restart_docs": restart_docs}
    peer = Background()
    try:
        out["peer"] = {
            "polls": polls(peer, docs, seconds, rate, log),
            "restart": restart(peer, restart_docs, log),
        }
    finally:
        peer.stop()
    for backend in backends:
        side = Ingestq(backend)
        try:
            out[backend] = {
                "polls": polls(side, docs, seconds, rate, log),
                "restart": restart(side, restart_docs, log),
            }
        finally:
            side.stop()
    return out
