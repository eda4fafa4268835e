"""Memory of the corpus run's worker process: RSS over the run, by documents finished.

`python -m bench.corpus` runs the worker in its own process, so its RSS is the worker's. A sampler reads
/proc every half second; the run tells it how many documents have finished, so the report can say what
the peak was over the first thousand documents and over the whole run, and what RSS was when the last
document finished: "does not grow" means the last two stay at the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

CHECKPOINT = 1000
"""The early window: peak RSS over the first this-many documents."""


def rss_kib(pid: int | str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[str]:
    found: list[str] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += (task / "children").read_text().split()
    return found


def smaps_rollup(pid: int) -> dict[str, int]:
    """Anonymous (heap, arenas, tensors) vs file-backed (libraries, the mmapped model) resident KiB."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Anonymous", "Pss_File", "Pss_Anon"):
                found[key] = int(rest.split()[0])
    return found


def thread_count(pid: int) -> int:
    with contextlib.suppress(OSError):
        return len(list(Path(f"/proc/{pid}/task").iterdir()))
    return 0


@dataclass
class Memory:
    done: int = 0
    """Documents finished so far (set by the run)."""
    peak_self_kib: int = 0
    peak_total_kib: int = 0
    peak_first_kib: int = 0
    """Peak worker RSS while fewer than CHECKPOINT documents had finished."""
    last_kib: int = 0
    """Worker RSS at the last sample (the run takes one when its last document finishes)."""
    timeline: list[tuple[int, int, int]] = field(default_factory=list)
    """(documents finished, worker RSS, worker + children RSS) whenever another 250 have finished."""

    def sample(self) -> None:
        me = os.getpid()
        own = rss_kib(me)
        total = own + sum(rss_kib(c) for c in children(me))
        self.peak_self_kib = max(self.peak_self_kib, own)
        self.peak_total_kib = max(self.peak_total_kib, total)
        if self.done < CHECKPOINT:
            self.peak_first_kib = max(self.peak_first_kib, own)
        self.last_kib = own
        if not self.timeline or self.done >= self.timeline[-1][0] + 250:
            self.timeline.append((self.done, own, total))


async def sample_memory(memory: Memory, stop: asyncio.Event, interval: float = 0.5) -> None:
    while not stop.is_set():
        memory.sample()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
