"""procrastinate (psycopg 3). The worker is its own CLI,
`procrastinate --app=bench.drivers.procrastinate_driver.app worker`, at the default concurrency (1);
`--one-shot` drains the queue and exits."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import procrastinate

from bench.drivers.common import CHUNK, paced, parser, timed_chunks
from bench.drivers.workload import record

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_DSN", "")))


@app.task(name="noop")  # type: ignore[untyped-decorator]  # peer not in the main venv: mypy sees Any
async def noop(i: int, ts: float) -> None:
    record(i, ts)


async def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    async with app.open_async():
        if args.cmd == "setup":
            await app.schema_manager.apply_schema_async()
        elif args.cmd == "enqueue":

            async def send(start: int, count: int) -> None:
                if args.single:
                    for i in range(start, start + count):
                        await noop.defer_async(i=i, ts=time.time())
                else:
                    ts = time.time()
                    await noop.batch_defer_async(*({"i": i, "ts": ts} for i in range(start, start + count)))

            await timed_chunks(args.n, CHUNK, send)
        elif args.cmd == "latency":

            async def send_one(i: int, ts: float) -> None:
                await noop.defer_async(i=i, ts=ts)

            await paced(args.n, args.interval, args.start, send_one)
        elif args.cmd == "worker":
            await app.run_worker_async()


if __name__ == "__main__":
    # Re-import under the module's real name so that task names match the worker's (not "__main__.x").
    from bench.drivers import procrastinate_driver as driver

    asyncio.run(driver.main(sys.argv[1:]))
