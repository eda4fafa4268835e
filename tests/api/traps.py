"""Real HTTP listeners for the SSRF tests: a redirector that plays a public server, and traps on the
addresses no fetch may reach, each recording every request it sees."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PUBLIC_STANDIN = "127.0.0.2"
"""Plays a public server: the one address INGESTQ_FETCH_ALLOW_NETWORKS names in these tests."""


@dataclass
class Listener:
    """`GET /to/<url>` answers 302 to <url>; any other path answers 200 `served by <host>`."""

    host: str
    port: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Listener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                listener.seen.append((self.path, self.headers.get("Host") or ""))
                if self.path.startswith("/to/"):
                    self.send_response(302)
                    self.send_header("Location", self.path[len("/to/") :])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = f"served by {listener.host}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        self.server = Server((self.host, self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
