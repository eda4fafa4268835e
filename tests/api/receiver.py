"""A small webhook receiver for the tests: a real HTTP server on 127.0.0.1 that verifies each delivery's
Standard Webhooks signature and answers from a script of status codes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ingestq.webhooks.signing import parse_secret, verify

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, base64
"""The signing secret the tests give their services and workers."""


@dataclass(frozen=True)
class Received:
    message_id: str
    timestamp: str
    signature_valid: bool
    body: bytes
    answered: int


@dataclass
class Receiver:
    url: str
    script: list[int]
    """Status codes to answer, in order; the last one repeats."""
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"the receiver got {len(self.received)} deliveries, not {count}")
            return list(self.received)


@contextmanager
def receiving(
    script: Sequence[int], secret: str = SECRET, headers: dict[str, str] | None = None, body_bytes: int = 2
) -> Iterator[Receiver]:
    """Serve on 127.0.0.1 until the block ends. Each answer carries `headers` (e.g. Location, Retry-After)
    and a body of `body_bytes`."""
    key = parse_secret(secret)
    receiver = Receiver("", list(script))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            message_id = self.headers.get("webhook-id", "")
            timestamp = self.headers.get("webhook-timestamp", "")
            valid = verify(key, message_id, timestamp, body, self.headers.get("webhook-signature", ""))
            with receiver.arrived:
                n = len(receiver.received)
                status = receiver.script[min(n, len(receiver.script) - 1)] if valid else 401
                receiver.received.append(Received(message_id, timestamp, valid, body, status))
                receiver.arrived.notify_all()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("content-length", str(body_bytes))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client stopped reading at its cap: expected
                self.wfile.write(b"x" * body_bytes)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
