"""A small, real HTTP server that speaks Ollama's `/api/embed` and OpenAI's `/v1/embeddings`.

It runs in a thread on 127.0.0.1 with an ephemeral port. Tests script failures ahead of time with
`fail_next(...)`: the next requests get that status (and Retry-After), or hang past the client's
timeout, before the server answers normally again. `hold(n)` parks the n-th embedding request until the
test releases it, so a test can look at a job stopped mid-embedding. Every request is recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Fault:
    status: int = 500
    retry_after: str | None = None
    body: str = '{"error": "scripted failure"}'
    delay: float = 0.0
    """Seconds to stall before answering (longer than the client's timeout: a timeout)."""


@dataclass(frozen=True)
class Gate:
    """`arrived` is set when the held request comes in; it is answered once `release` is set."""

    number: int
    arrived: threading.Event
    release: threading.Event


@dataclass(frozen=True)
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


def vector_for(text: str, dimension: int) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    while len(digest) < dimension:
        digest += hashlib.sha256(digest).digest()
    return [round(b / 255.0, 6) for b in digest[:dimension]]


class EmbedServer:
    def __init__(
        self,
        dimension: int = 8,
        api_key: str | None = None,
        reverse_order: bool = False,
        *,
        port: int = 0,
        record: bool = True,
    ) -> None:
        self.dimension = dimension
        self.record = record
        self.api_key = api_key
        self.reverse_order = reverse_order
        """OpenAI protocol: list `data` in reverse (clients must sort by `index`)."""
        self.requests: list[Recorded] = []
        self._faults: deque[Fault] = deque()
        self._gates: dict[int, Gate] = {}
        self._every_gate: list[Gate] = []
        self._embed_requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, count: int = 1, **fault: Any) -> None:
        with self._lock:
            self._faults.extend(Fault(**fault) for _ in range(count))

    def hold(self, number: int) -> Gate:
        """Park the `number`-th embedding request (1-based) until `gate.release` is set."""
        gate = Gate(number, threading.Event(), threading.Event())
        with self._lock:
            self._gates[number] = gate
            self._every_gate.append(gate)
        return gate

    def _gate_for_next(self) -> Gate | None:
        with self._lock:
            self._embed_requests += 1
            return self._gates.pop(self._embed_requests, None)

    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def __enter__(self) -> EmbedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            for gate in self._every_gate:
                gate.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _answer(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"message": "invalid api key"}}
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            return 400, {"error": "input must be a string or a list of strings"}
        if not body.get("model"):
            return 400, {"error": "model is required"}
        vectors = [vector_for(t, self.dimension) for t in inputs]
        if path == "/api/embed":
            return 200, {"model": body["model"], "embeddings": vectors, "prompt_eval_count": len(inputs)}
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        if self.reverse_order:
            data.reverse()
        usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
        return 200, {"object": "list", "data": data, "model": body["model"], "usage": usage}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

            def _send(self, status: int, payload: str, extra: dict[str, str] | None = None) -> None:
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                if server.record:
                    server.requests.append(Recorded(self.path, body, headers, time.monotonic()))
                if self.path not in ("/api/embed", "/v1/embeddings"):
                    self._send(404, '{"error": "not found"}')
                    return
                gate = server._gate_for_next()
                if gate is not None:
                    gate.arrived.set()
                    gate.release.wait(timeout=300)  # bounded: a failed test must not hang the server
                fault = server._take_fault()
                if fault is not None:
                    if fault.delay:
                        time.sleep(fault.delay)
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                    # the client may have given up (timeout) before the answer
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self._send(fault.status, fault.body, extra)
                    return
                status, answer = server._answer(self.path, body, headers)
                self._send(status, json.dumps(answer))

        return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve /v1/embeddings and /api/embed on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free one)")
    parser.add_argument("--dimension", type=int, default=8, help="vector length (default 8)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with EmbedServer(dimension=args.dimension, port=args.port, record=False) as server:
        print(server.url, flush=True)
        stop.wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
