"""ingestq, through its public client (`enqueue_many` for bulk, `enqueue` one by one for latency). The
database comes from INGESTQ_DATABASE_URL, which the harness sets; workers are `ingestq worker` processes."""

from __future__ import annotations

import asyncio
import sys
import time

from bench.drivers.common import CHUNK, paced, parser, timed_chunks
from bench.drivers.ingestq_app import NOOP_KIND, registry
from ingestq.client.client import Client
from ingestq.settings import Settings


async def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.cmd == "worker":
        raise SystemExit("run `ingestq worker --app bench.drivers.ingestq_app:registry`")
    client = await Client.connect(Settings(), registry=registry)
    async with client:
        if args.cmd == "enqueue":

            async def send(start: int, count: int) -> None:
                if args.single:
                    for i in range(start, start + count):
                        await client.enqueue(NOOP_KIND, {"i": i, "ts": time.time()})
                else:
                    ts = time.time()
                    # ids only, like the peers' bulk calls (pgqueuer returns ids)
                    await client.enqueue_many(
                        NOOP_KIND,
                        ({"i": i, "ts": ts} for i in range(start, start + count)),
                        return_jobs=False,
                    )

            await timed_chunks(args.n, CHUNK, send)
        elif args.cmd == "latency":

            async def send_one(i: int, ts: float) -> None:
                await client.enqueue(NOOP_KIND, {"i": i, "ts": ts})

            await paced(args.n, args.interval, args.start, send_one)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
