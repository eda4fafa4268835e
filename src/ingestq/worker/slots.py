"""A worker's slots: how many jobs it may claim now, overall and per kind. Bookkeeping only (no I/O, no
event loop), so every rule is tested on its own (tests/unit/test_worker_slots.py).

A slot is taken from a job's claim until its outcome is committed (`take` / `give_back`), or reserved
while a claim is in flight (`reserve` / `unreserve`: as many as that claim may return, overall and of
each capped kind). A kind may have a cap of its own (TaskSpec.concurrency), and a kind this machine
cannot serve now (`unavailable`) is left out of claims altogether.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ingestq.model.job import ClaimRequest, Job


class Slots:
    def __init__(self, concurrency: int, caps: Mapping[str, int] | None = None) -> None:
        self.concurrency = concurrency
        self._caps = dict(caps or {})
        self._kind_taken = dict.fromkeys(self._caps, 0)  # taken or reserved, per capped kind
        self.taken = 0  # jobs claimed whose outcome is not yet committed
        self.reserved = 0  # slots a claim in flight may fill
        self.unavailable: dict[str, str] = {}  # kind -> why this machine cannot run it now

    def free(self, freeing: int = 0) -> int:
        """Slots a claim may fill now; `freeing`: taken slots that the same transaction gives back
        (outcomes committed together with the claim)."""
        return self.concurrency - self.taken - self.reserved + freeing

    def take(self, kind: str) -> None:
        self.taken += 1
        if kind in self._kind_taken:
            self._kind_taken[kind] += 1

    def give_back(self, kind: str) -> None:
        self.taken -= 1
        if kind in self._kind_taken:
            self._kind_taken[kind] -= 1

    def size(self, request: ClaimRequest, free: int) -> ClaimRequest | None:
        """The claim for `free` slots: kinds at their cap or unavailable left out, the other capped kinds
        limited to their room. None when no kind the worker runs may be claimed."""
        if not self._caps and not self.unavailable:
            return replace(request, limit=free)
        left_out: list[str] = list(self.unavailable)
        limits: dict[str, int] = {}
        for kind, cap in self._caps.items():
            room = cap - self._kind_taken[kind]
            if room <= 0:
                left_out.append(kind)
            elif room < free:
                limits[kind] = room
        kinds = request.kinds
        if left_out and kinds is not None:
            kinds = tuple(k for k in kinds if k not in left_out)
            if not kinds:
                return None
        return replace(request, limit=free, kinds=kinds, kind_limits=limits or None)

    def reserve(self, request: ClaimRequest, sign: int = 1) -> None:
        """Hold `request.limit` slots (and each capped kind's share) until the claim's answer."""
        self.reserved += sign * request.limit
        if self._caps:
            limits = request.kind_limits or {}
            for kind in self._caps if request.kinds is None else request.kinds:
                if kind in self._caps:
                    self._kind_taken[kind] += sign * limits.get(kind, request.limit)

    def unreserve(self, request: ClaimRequest) -> None:
        self.reserve(request, -1)

    def maybe_more(self, request: ClaimRequest, jobs: Sequence[Job]) -> bool:
        """Whether more jobs may be due after this claim's answer: it was full, or a kind's cap may have
        cut it short (jobs of other kinds may be waiting)."""
        if len(jobs) >= request.limit:
            return True
        if not request.kind_limits:
            return False
        counts = Counter(job.kind for job in jobs)
        return any(counts[kind] >= n for kind, n in request.kind_limits.items())
