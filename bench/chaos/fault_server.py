"""A fault-injecting embedding provider for the fault suite: a real HTTP server (OpenAI's `/v1/embeddings`)
in a thread of the harness, answering deterministic vectors and, inside scripted time windows, failing
the way providers do:

- `timeout`: the answer stalls longer than the client's timeout (then the connection is closed);
- `500`: an internal error;
- `429`: rate limited, with `Retry-After`;
- `cut`: the headers and half the body promised by Content-Length, then the connection is closed.

A window fails each request with probability `rate` (1.0: an outage; less: a flaky service). Every request
is recorded with its time and what it got, so the harness can count requests per minute *at the provider*
(failed ones included: providers count those too) and which texts were embedded more than once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KINDS = ("timeout", "500", "429", "cut")


@dataclass(frozen=True)
class Window:
    start: float  # seconds after `FaultServer.begin()`
    end: float
    kind: str  # one of KINDS
    rate: float = 1.0  # share of the requests in the window that fail
    retry_after: float | None = None  # `429`: the Retry-After sent (None: the server's)


@dataclass(frozen=True)
class Request:
    at: float  # seconds after begin()
    answer: str  # "ok" or a fault kind
    texts: int


@dataclass
class FaultServer:
    dimension: int = 8
    windows: list[Window] = field(default_factory=list)
    stall: float = 3.0  # `timeout`: seconds the answer stalls (longer than the client's timeout)
    retry_after: float = 2.0  # `429`: the Retry-After sent
    seed: int = 0
    requests: list[Request] = field(default_factory=list)
    embedded: Counter[str] = field(default_factory=Counter)  # text hash -> times answered with a vector

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._t0: float | None = None
        self.wall0 = 0.0  # time.time() at begin(), to place the workers' log lines
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def begin(self) -> None:
        """Windows count from now (the harness calls it when the workers start)."""
        self._t0 = time.monotonic()
        self.wall0 = time.time()

    def now(self) -> float:
        return time.monotonic() - self._t0 if self._t0 is not None else 0.0

    def _decide(self, texts: int) -> tuple[str, float]:
        """The answer for a request now, and the Retry-After it carries if it is a 429."""
        with self._lock:
            t = self.now()
            answer, retry_after = "ok", self.retry_after
            for w in self.windows:
                if w.start <= t < w.end and self._rng.random() < w.rate:
                    answer = w.kind
                    retry_after = w.retry_after if w.retry_after is not None else self.retry_after
                    break
            self.requests.append(Request(t, answer, texts))
            return answer, retry_after

    # --- figures ---

    def max_per_window(self, seconds: float = 60.0) -> int:
        """Most requests the provider saw in any `seconds`-long window."""
        times = sorted(r.at for r in self.requests)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def answered(self) -> Counter[str]:
        return Counter(r.answer for r in self.requests)

    def recovery(self) -> list[float]:
        """For each outage window (rate 1.0): seconds from its end to the next request answered ok."""
        delays = []
        for w in self.windows:
            if w.rate < 1.0:
                continue
            after = [r.at for r in self.requests if r.at >= w.end and r.answer == "ok"]
            if after:
                delays.append(min(after) - w.end)
        return delays

    # --- HTTP ---

    def _vectors(self, inputs: list[str]) -> list[list[float]]:
        out = []
        for text in inputs:
            digest = hashlib.sha256(text.encode()).digest()
            while len(digest) < self.dimension:
                digest += hashlib.sha256(digest).digest()
            out.append([round(b / 255.0, 6) for b in digest[: self.dimension]])
        return out

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, data: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _hang_up(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                    inputs = body["input"]
                    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
                except (ValueError, KeyError, TypeError):
                    self._send(400, b'{"error": "bad request"}')
                    return
                answer, retry_after = server._decide(len(inputs))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    if answer == "timeout":
                        time.sleep(server.stall)
                        self._hang_up()
                    elif answer == "500":
                        self._send(500, b'{"error": {"message": "injected internal error"}}')
                    elif answer == "429":
                        extra = {"Retry-After": f"{retry_after:g}"}
                        self._send(429, b'{"error": {"message": "injected rate limit"}}', extra)
                    else:
                        vectors = server._vectors(inputs)
                        data = [
                            {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
                        ]
                        payload = json.dumps({"object": "list", "data": data, "model": body.get("model")})
                        encoded = payload.encode()
                        if answer == "cut":
                            self.send_response(200)
                            self.send_header("Content-Type", "application/json")
                            self.send_header("Content-Length", str(len(encoded)))
                            self.end_headers()
                            self.wfile.write(encoded[: len(encoded) // 2])
                            self._hang_up()
                            return
                        self._send(200, encoded)
                        with server._lock:
                            for text in inputs:
                                server.embedded[hashlib.sha256(text.encode()).hexdigest()] += 1

        return Handler
