"""A separate process that uses a SqliteStore on a given file (for the SQLite integration tests).

python sqlite_child.py enqueue-then-die DB N     insert N jobs, then SIGKILL itself at once
python sqlite_child.py enqueue DB N              insert N jobs and exit normally
python sqlite_child.py drain DB WORKER           claim until empty; print the claimed ids
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from ingestq.model.job import ClaimRequest, NewJob, Outcome, OutcomeKind
from ingestq.store.sqlite.store import SqliteStore


async def main(command: str, db: str, arg: str) -> None:
    store = SqliteStore(Path(db))
    await store.open()
    now = datetime.now(UTC)
    if command in ("enqueue", "enqueue-then-die"):
        await store.job_insert_many([NewJob(kind="k", payload={"i": i}) for i in range(int(arg))], now)
        if command == "enqueue-then-die":
            os.kill(os.getpid(), signal.SIGKILL)  # no close, no atexit: the commit alone must hold
    elif command == "drain":
        # Start together: say "ready", then wait for the parent's line on stdin.
        # Then claim one batch, say "first" and wait again: every process holds jobs before the race, so
        # a process that the scheduler starts late still takes part in it (and cannot find the queue empty).
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        claimed: list[int] = []
        first = True
        while True:
            jobs = await store.job_claim(ClaimRequest(worker_id=arg, limit=3, lease_seconds=60), now)
            if first:
                print("first", flush=True)
                await asyncio.to_thread(sys.stdin.readline)
                first = False
            if not jobs:
                break
            claimed.extend(j.id for j in jobs)
            outcomes = [Outcome(j.id, arg, j.attempt, OutcomeKind.SUCCEEDED) for j in jobs]
            await store.job_finish_many(outcomes, now)
        print(" ".join(map(str, claimed)))
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
