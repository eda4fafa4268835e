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
closed loop of `concurrency` requests in flight (the max rate). In-flight requests are bounded either
way: thousands of pending requests in one httpx pool spin the client's CPU instead of measuring.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def body(raw: bytes, i: int, tag: str) -> tuple[bytes, str]:
    return multipart(raw + f"\n%bench {tag} {i}\n".encode(), f"doc-{tag}-{i}.pdf")


async def run(spec: dict[str, Any], raw: bytes) -> dict[str, Any]:
    url: str = spec["url"]
    seconds = float(spec["seconds"])
    rate: float | None = spec.get("rate")
    concurrency = int(spec.get("concurrency", 64 if rate else 32))
    n = int(rate * seconds) if rate else int(spec.get("max_requests", 20_000))
    tag = str(spec.get("tag", "x"))
    paths: list[str] = spec.get("paths", [])
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    answers: list[Any] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int, since: float) -> None:
            try:
                if spec["mode"] == "upload":
                    content, ctype = body(raw, i, tag)
                    r = await client.post(url, content=content, headers={"content-type": ctype})
                else:
                    r = await client.get(url + paths[i % len(paths)])
                key = str(r.status_code)
                if spec.get("keep_answers") and r.status_code < 300:
                    answers.append(r.json())
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            latencies.append((time.perf_counter() - since) * 1000)
            statuses[key] = statuses.get(key, 0) + 1

        t0 = time.perf_counter()
        stop = t0 + seconds
        counter = iter(range(n))

        async def lane() -> None:
            for i in counter:
                if rate:
                    at = t0 + i / rate  # the schedule, whatever the earlier requests did
                    delay = at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await one(i, at)
                elif time.perf_counter() >= stop:
                    return
                else:
                    await one(i, time.perf_counter())

        await asyncio.gather(*(lane() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {"latencies_ms": latencies, "statuses": statuses, "wall_s": wall, "answers": answers}


if __name__ == "__main__":
    given = json.loads(sys.argv[1])
    pdf = Path(given["pdf"]).read_bytes() if given["mode"] == "upload" else b""
    print(json.dumps(asyncio.run(run(given, pdf))))
