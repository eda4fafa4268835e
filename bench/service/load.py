"""The load generator: a separate process that drives a server over HTTP and prints JSON latencies.

    python -m bench.service.load '{"mode": "upload", "url": ..., "rate": 200, "seconds": 10, ...}'

Modes:
- `upload`: POST a PDF as multipart (`file` part) to `url`; each request carries a unique PDF comment
  after `%%EOF`, so that no two uploads are the same content (ingestq deduplicates by content hash and
  would answer 200 without storing anything).
- `poll`: GET the `paths` (relative to `url`) round-robin.

With `rate`, an open loop the way wrk2 does it: request i is due at t0 + i/rate, `concurrency`
connections send the due requests, and latency counts from the moment each was due (so a stalled server
cannot hide its queue behind a slow client: a request sent late counts its wait). Without `rate`, a
closed loop of `concurrency` requests in flight (the max rate).

The client speaks HTTP/1.1 itself over keep-alive connections (`Conn`), the way wrk does: on this
2-core machine the client shares the cores with the server, and httpx spent about 2 ms of CPU per 200 KB
upload (half of what the server spends on it), so the client's own cost decided part of the figure. The
request bytes are built once per request and written whole; the answer is read by its Content-Length
(or chunks). The client's CPU per request is in the output (`client_cpu_ms_per_request`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 60.0


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def body(raw: bytes, i: int, tag: str) -> tuple[bytes, str]:
    return multipart(raw + f"\n%bench {tag} {i}\n".encode(), f"doc-{tag}-{i}.pdf")


class HttpError(Exception):
    """The server's answer was not HTTP/1.1 as this client reads it."""


class Conn:
    """One keep-alive HTTP/1.1 connection; reopened after the server closes it or an error."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def aclose(self) -> None:
        writer = self.writer
        self.close()
        if writer is not None:
            with contextlib.suppress(OSError):  # the server reset it: closed all the same
                await writer.wait_closed()

    async def request(
        self, method: str, target: str, headers: dict[str, str], data: bytes
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
        assert self.reader is not None
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if data or method == "POST":
            lines.append(f"Content-Length: {len(data)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if data:
            self.writer.write(data)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.decode("latin-1").partition("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"bad status line {status_line[:80]!r}")
        fields: dict[str, str] = {}
        for line in rest.split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        if fields.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunks()
        elif "content-length" in fields:
            content = await self.reader.readexactly(int(fields["content-length"]))
        else:  # no length: the body runs to the end of the connection
            content = await self.reader.read()
            fields["connection"] = "close"
        if fields.get("connection", "").lower() == "close":
            self.close()
        return int(parts[1]), content

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        out = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                while await self.reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return bytes(out)
            out += await self.reader.readexactly(size + 2)
            del out[-2:]


async def run(spec: dict[str, Any], raw: bytes) -> dict[str, Any]:
    url = urlsplit(spec["url"])
    host, port = url.hostname or "127.0.0.1", url.port or 80
    seconds = float(spec["seconds"])
    rate: float | None = spec.get("rate")
    concurrency = int(spec.get("concurrency", 64 if rate else 32))
    n = int(rate * seconds) if rate else int(spec.get("max_requests", 20_000))
    tag = str(spec.get("tag", "x"))
    paths: list[str] = spec.get("paths", [])
    extra: dict[str, str] = dict(spec.get("headers", {}))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    answers: list[Any] = []

    async def one(conn: Conn, i: int, since: float) -> None:
        try:
            async with asyncio.timeout(TIMEOUT_S):
                if spec["mode"] == "upload":
                    content, ctype = body(raw, i, tag)
                    status, answer = await conn.request(
                        "POST", url.path, {**extra, "Content-Type": ctype}, content
                    )
                else:
                    status, answer = await conn.request("GET", url.path + paths[i % len(paths)], extra, b"")
            key = str(status)
            if spec.get("keep_answers") and status < 300:
                answers.append(json.loads(answer))
        except (OSError, EOFError, TimeoutError, ValueError, HttpError) as exc:
            conn.close()  # whatever was half read: start the next request on a new connection
            key = type(exc).__name__
        latencies.append((time.perf_counter() - since) * 1000)
        statuses[key] = statuses.get(key, 0) + 1

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    stop = t0 + seconds
    counter = iter(range(n))

    async def lane() -> None:
        conn = Conn(host, port)
        try:
            for i in counter:
                if rate:
                    at = t0 + i / rate  # the schedule, whatever the earlier requests did
                    delay = at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await one(conn, i, at)
                elif time.perf_counter() >= stop:
                    return
                else:
                    await one(conn, i, time.perf_counter())
        finally:
            await conn.aclose()

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    return {
        "latencies_ms": latencies,
        "statuses": statuses,
        "wall_s": wall,
        "answers": answers,
        "client_cpu_ms_per_request": 1000 * cpu / max(len(latencies), 1),
    }


if __name__ == "__main__":
    given = json.loads(sys.argv[1])
    pdf = Path(given["pdf"]).read_bytes() if given["mode"] == "upload" else b""
    print(json.dumps(asyncio.run(run(given, pdf))))
