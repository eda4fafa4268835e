"""A worker's own HTTP endpoints (`ingestq worker --http-port P`), served on the worker's event loop:

- `/healthz` (liveness): the loop runs timers on time (lag under `MAX_LAG`) and the heartbeat keeps
  trying. A worker whose database went away stays live: restarting it would not bring the database back.
- `/readyz` (readiness): the database answered a heartbeat within one lease, and the worker is not
  stopping.
- `/metrics`: Prometheus text (worker/metrics.py).

Served by the loop itself on purpose: a loop blocked by a handler cannot answer, so liveness fails exactly
when the worker is stuck. A few lines of HTTP/1.1 (GET only, one request per connection) instead of a web
framework keep a worker's start-up and memory as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from ingestq.worker.heartbeat import Heartbeat
    from ingestq.worker.metrics import WorkerMetrics
    from ingestq.worker.runner import Worker

log = logging.getLogger("ingestq.worker")

MAX_LAG = 5.0  # seconds a timer may run late before the loop counts as stuck
LAG_PERIOD = 0.5  # how often the lag is measured
REQUEST_LIMIT = 8192  # bytes of request head read; anything larger is refused


class WorkerEndpoints:
    def __init__(self, worker: Worker, metrics: WorkerMetrics) -> None:
        self.worker = worker
        self.metrics = metrics
        self.lag = 0.0
        self._server: asyncio.Server | None = None
        self._lag_task: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with port 0)."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=REQUEST_LIMIT)
        self._lag_task = asyncio.create_task(self._measure_lag(), name="ingestq-loop-lag")
        sockets = self._server.sockets
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def close(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _measure_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + LAG_PERIOD
            await asyncio.sleep(LAG_PERIOD)
            self.lag = max(0.0, loop.time() - expected)
            self.metrics.loop_lag.set(self.lag)

    # --- checks ----------------------------------------------------------------------------------------
    def _heartbeat(self) -> Heartbeat | None:
        return self.worker.heartbeat

    def live(self) -> tuple[bool, dict[str, object]]:
        hb = self._heartbeat()
        interval = hb.interval if hb is not None else self.worker.config.lease_seconds / 3
        tried = None if hb is None or hb.tried_at is None else time.monotonic() - hb.tried_at
        # the heartbeat loop tries every interval; a try that hangs on a dead database is bounded by the
        # store's own timeouts, so three intervals without a try means the loop is not doing its work
        ok = self.lag < MAX_LAG and (tried is None or tried < 3 * interval + MAX_LAG)
        return ok, {"loop_lag_seconds": round(self.lag, 4), "heartbeat_tried_seconds_ago": _round(tried)}

    def ready(self) -> tuple[bool, dict[str, object]]:
        hb = self._heartbeat()
        answered = None if hb is None or hb.answered_at is None else time.monotonic() - hb.answered_at
        lease = self.worker.config.lease_seconds
        ok = answered is not None and answered < lease and not self.worker.stopping
        details: dict[str, object] = {"heartbeat_answered_seconds_ago": _round(answered)}
        if self.worker.stopping:
            details["stopping"] = True
        if self.worker.unavailable:
            details["unavailable"] = self.worker.unavailable
        return ok, details

    # --- HTTP ------------------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            method, path = _request_line(head)
            status, content_type, body = self._answer(method, path)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            status, content_type, body = 400, "text/plain", b"bad request\n"
        try:
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        path = path.split("?", 1)[0]
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        if path in ("/healthz", "/readyz"):
            ok, details = self.live() if path == "/healthz" else self.ready()
            body = json.dumps({"status": "ok" if ok else "fail", **details}).encode() + b"\n"
            return (200 if ok else 503), "application/json", body
        return 404, "text/plain", b"not found\n"


def _request_line(head: bytes) -> tuple[str, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("malformed request line")
    return parts[0], parts[1]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
