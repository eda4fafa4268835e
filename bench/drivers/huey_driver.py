"""huey with SqliteHuey. The worker is its own consumer, `huey_consumer bench.drivers.huey_driver.huey`
(default: one worker thread; `-k process -w 2` for two processes). huey has no bulk enqueue: `enqueue`
calls one `enqueue` per job inside a loop."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from huey import SqliteHuey

from bench.drivers.common import CHUNK, paced, parser, timed_chunks
from bench.drivers.workload import record

huey = SqliteHuey("bench", filename=os.environ.get("BENCH_DB", "/tmp/bench-huey.db"))


@huey.task(name="noop")  # type: ignore[untyped-decorator]  # peer not in the main venv: mypy sees Any
def noop(i: int, ts: float) -> None:
    record(i, ts)


async def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.cmd == "setup":
        huey.storage  # noqa: B018 — creating the storage creates the tables
    elif args.cmd == "enqueue":

        async def send(start: int, count: int) -> None:
            ts = time.time()
            for i in range(start, start + count):
                noop(i, time.time() if args.single else ts)

        await timed_chunks(args.n, CHUNK, send)
    elif args.cmd == "latency":

        async def send_one(i: int, ts: float) -> None:
            noop(i, ts)

        await paced(args.n, args.interval, args.start, send_one)
    elif args.cmd == "worker":
        raise SystemExit("run huey_consumer bench.drivers.huey_driver.huey")


if __name__ == "__main__":
    # Re-import under the module's real name so that task names match the worker's (not "__main__.x").
    from bench.drivers import huey_driver as driver

    asyncio.run(driver.main(sys.argv[1:]))
