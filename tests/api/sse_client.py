"""A small Server-Sent Events reader for the service tests: a thread that parses a real HTTP stream."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass(frozen=True)
class Sse:
    name: str
    id: str | None
    data: str

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Stream:
    """Reads `url` in a thread; every event (and comment, as name ':') lands in `events`."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    events: queue.Queue[Sse | None] = field(default_factory=queue.Queue)
    status: int | None = None
    content_type: str | None = None
    headers_in: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    _conn: http.client.HTTPConnection | None = None
    _opened: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def open(self, timeout: float = 30) -> Stream:
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._opened.wait(timeout), "the stream did not answer"
        return self

    def _read(self) -> None:
        # http.client, not httpx: close() shuts the socket down, which wakes a read blocked in this thread
        parts = urlsplit(self.url)
        target = parts.path + ("?" + urlencode(self.params, doseq=True) if self.params else "")
        try:
            self._conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
            self._conn.request("GET", target, headers={"Accept": "text/event-stream", **self.headers})
            response = self._conn.getresponse()
            self.status = response.status
            self.content_type = response.getheader("content-type")
            self.headers_in = dict(response.getheaders())
            self.body = b"" if response.status == 200 else response.read()
            self._opened.set()
            if response.status != 200:
                return
            name: str = "message"
            ident: str | None = None
            data: list[str] = []
            while True:
                raw = response.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        self.events.put(Sse(name, ident, "\n".join(data)))
                    name, ident, data = "message", None, []
                elif line.startswith(":"):
                    self.events.put(Sse(":", None, line[1:].strip()))
                else:
                    key, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if key == "event":
                        name = value
                    elif key == "id":
                        ident = value
                    elif key == "data":
                        data.append(value)
        except (OSError, http.client.HTTPException, ValueError, AttributeError):
            pass  # closed by close() or by the server
        finally:
            if self._conn is not None:
                self._conn.close()
            self._opened.set()
            self.events.put(None)  # the end of the stream

    def next(self, timeout: float = 30, skip_comments: bool = True) -> Sse | None:
        """The next event (None: the stream ended); fails after `timeout` seconds without one."""
        while True:
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no event within {timeout}s from {self.url}") from None
            if event is None or not (skip_comments and event.name == ":"):
                return event

    def close(self) -> None:
        conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)  # the reader thread wakes and closes the connection
        if self._thread is not None:
            self._thread.join(10)
