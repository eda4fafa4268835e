"""The service benchmarks' load client (bench/service/load.py) speaks HTTP/1.1 itself: it must read the
answers a server sends (by Content-Length, chunked, closed after), keep its connection alive between
requests, and open a new one after the server closes it. Against a real socket server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is beside src/, not installed
from bench.service.load import Conn, body

ANSWERS = [
    b"HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nfirst",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3;ext=1\r\nond\r\n0\r\n\r\n",
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy",
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
]


async def test_reads_each_framing_and_reconnects_after_a_close() -> None:
    connections: list[int] = []
    received: list[bytes] = []
    answers = iter(ANSWERS)
    handled: list[asyncio.Event] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(received))
        done = asyncio.Event()
        handled.append(done)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            received.append(head + await reader.readexactly(length))
            answer = next(answers)
            writer.write(answer)
            await writer.drain()
            if b"Connection: close" in answer:
                break
        writer.close()
        await writer.wait_closed()
        done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = Conn("127.0.0.1", port)
    try:
        data, ctype = body(b"%PDF-1.4 ...", 7, "t")
        assert await conn.request("POST", "/v1/documents", {"Content-Type": ctype}, data) == (202, b"first")
        assert await conn.request("GET", "/a?x=1", {}, b"") == (200, b"second")
        assert await conn.request("GET", "/b", {}, b"") == (503, b"busy")
        assert await conn.request("GET", "/c", {}, b"") == (404, b"")
    finally:
        await conn.aclose()
        for done in handled:  # each handler saw its connection end
            await asyncio.wait_for(done.wait(), 10)
        server.close()
        await server.wait_closed()
    assert connections == [0, 3]  # one keep-alive connection for three answers, a new one after the close
    assert received[0].startswith(b"POST /v1/documents HTTP/1.1\r\n")
    assert f"Content-Length: {len(data)}".encode() in received[0]
    assert received[0].endswith(data)
    assert received[1].startswith(b"GET /a?x=1 HTTP/1.1\r\n")


def test_every_upload_body_is_a_distinct_file() -> None:
    raw = b"%PDF-1.4 body %%EOF"
    first, second = body(raw, 1, "t"), body(raw, 2, "t")
    assert first[0] != second[0]
    assert raw in first[0]
    assert first[1].startswith("multipart/form-data; boundary=")
