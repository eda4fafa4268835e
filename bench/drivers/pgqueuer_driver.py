"""pgqueuer (asyncpg). The worker runs through the documented `pgqueuer.run()` API with the defaults of
`pgq run` (batch size 10; drain mode with --drain), because `pgq run` fails at
start-up with the installed typer."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pgqueuer
from pgqueuer import AsyncpgDriver, PgQueuer, Queries
from pgqueuer.domain.types import QueueExecutionMode
from pgqueuer.models import Job

from bench.drivers.common import CHUNK, dsn, paced, parser, timed_chunks
from bench.drivers.workload import record

ENTRYPOINT = "noop"


@asynccontextmanager
async def create_pgqueuer() -> AsyncIterator[PgQueuer]:
    conn = await asyncpg.connect(dsn())
    pgq = PgQueuer(AsyncpgDriver(conn))

    @pgq.entrypoint(ENTRYPOINT)  # type: ignore[untyped-decorator]  # peer not in the main venv: mypy sees Any
    async def noop(job: Job) -> None:
        assert job.payload is not None
        i, ts = job.payload.split()
        record(int(i), float(ts))

    try:
        yield pgq
    finally:
        await conn.close()


def _payload(i: int, ts: float) -> bytes:
    return f"{i} {ts:.6f}".encode()


async def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.cmd == "worker":
        mode = QueueExecutionMode.drain if args.drain else QueueExecutionMode.continuous
        await pgqueuer.run(create_pgqueuer, mode=mode)
        return
    conn = await asyncpg.connect(dsn())
    queries = Queries(AsyncpgDriver(conn))
    try:
        if args.cmd == "setup":
            await queries.install()
        elif args.cmd == "enqueue":

            async def send(start: int, count: int) -> None:
                ts = time.time()
                if args.single:
                    for i in range(start, start + count):
                        await queries.enqueue(ENTRYPOINT, _payload(i, time.time()))
                else:
                    await queries.enqueue(
                        [ENTRYPOINT] * count,
                        [_payload(i, ts) for i in range(start, start + count)],
                        [0] * count,
                    )

            await timed_chunks(args.n, CHUNK, send)
        elif args.cmd == "latency":

            async def send_one(i: int, ts: float) -> None:
                await queries.enqueue(ENTRYPOINT, _payload(i, ts))

            await paced(args.n, args.interval, args.start, send_one)
    finally:
        await conn.close()


if __name__ == "__main__":
    # Re-import under the module's real name so that task names match the worker's (not "__main__.x").
    from bench.drivers import pgqueuer_driver as driver

    asyncio.run(driver.main(sys.argv[1:]))
