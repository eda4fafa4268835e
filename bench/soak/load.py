"""The steady mixed load and its bookkeeping: probe jobs (POST /v1/jobs) and small documents
(POST /v1/documents, multipart) at fixed rates, every one followed until it ends.

A tracker reads the job rows every 2 s (newest first, down to the oldest job still open) and records
each finished job's pickup latency, `started_at - created_at`, both stamped by the database's clients
on this one machine. Retention prunes succeeded jobs a minute after they finish, long after the tracker
has seen them; failed ones are kept (the soak sets their retention to "forever") so none goes unseen.
Documents are deleted again once indexed, beyond the newest `keep_docs`: the collection stays the same
size, so whatever still grows is not data the load asked to keep."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from bench.corpus import find_corpora
from ingestq.builtin import PROBE_KIND
from ingestq.model.job import Job, JobFilter, JobState
from ingestq.store.base import Store

MAX_DOC_BYTES = 20_000  # small real documents: each is a few chunks
MAX_IN_FLIGHT = 50  # requests of one kind awaiting their answer


@dataclass
class Open:
    id: int
    kind: str  # "probe" or "ingest"
    sent: float  # run clock, seconds
    document: tuple[str, str] | None = None  # (collection, document id)


@dataclass
class Pickup:
    t: float  # run clock at enqueue
    seconds: float  # started_at - created_at
    kind: str


@dataclass
class Tally:
    enqueued: Counter[str] = field(default_factory=Counter)
    succeeded: Counter[str] = field(default_factory=Counter)
    indexed: int = 0  # documents read back over HTTP as `indexed`
    deleted: int = 0
    late_ticks: int = 0  # sends held back because MAX_IN_FLIGHT requests were awaiting their answer
    answers: list[tuple[float, float]] = field(default_factory=list)  # (sent, seconds to the answer)
    workers_succeeded: int | None = None  # the sum of the workers' "stopped: N succeeded" lines
    problems: list[str] = field(default_factory=list)  # refused requests, failed jobs, not indexed


def sources(limit: int = 400) -> list[tuple[str, bytes]]:
    """Small Markdown and HTML files of ../shared/corpora, or generated Markdown without it."""
    root = find_corpora()
    found: list[tuple[str, bytes]] = []
    if root is not None:
        for sub, pattern in (("markdown", "*.md"), ("html", "*.html")):
            files = sorted(p for p in (root / sub).rglob(pattern) if p.stat().st_size <= MAX_DOC_BYTES)
            found.extend((p.name, p.read_bytes()) for p in files[: limit // 2])
    if not found:
        body = "\n\n".join(
            f"## Section {i}\n\nThe queue keeps its promises, paragraph {i}." for i in range(12)
        )
        found = [(f"generated-{i}.md", f"# Generated {i}\n\n{body}\n".encode()) for i in range(50)]
    return found


def unique(name: str, data: bytes, n: int) -> tuple[str, bytes]:
    """The n-th upload: its own content (a document that is already there would be a duplicate)."""
    stem, _, suffix = name.rpartition(".")
    tail = f"\n<p>Soak upload {n}.</p>\n" if suffix == "html" else f"\n\nSoak upload {n}.\n"
    return f"soak-{n}-{stem}.{suffix}", data + tail.encode()


class Load:
    def __init__(
        self,
        http: httpx.AsyncClient,
        store: Store,
        clock: Callable[[], float],
        *,
        job_rate: float,
        doc_rate: float,
        probe_seconds: float,
        keep_docs: int,
    ) -> None:
        self.http = http
        self.store = store
        self.now = clock
        self.job_rate = job_rate
        self.doc_rate = doc_rate
        self.probe_seconds = probe_seconds
        self.keep_docs = keep_docs
        self.docs = sources()
        self.open: dict[int, Open] = {}
        self.pickups: list[Pickup] = []
        self.tally = Tally()
        self._window: deque[tuple[str, str]] = deque()
        # documents whose ingest job succeeded, for `documents` to read back and delete: the tracker
        # hands them over rather than waiting on the API itself (its pass must stay short: a job it has
        # not seen yet may be pruned 60 s after it finished)
        self._indexed_q: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    # --- sending ------------------------------------------------------------------------------------

    async def _at_rate(
        self, rate: float, send: Callable[[int], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        """Open loop: the n-th request leaves at start + n / rate whether or not the earlier ones were
        answered, so a slow API cannot slow the load down and hide itself (at most MAX_IN_FLIGHT at
        once: past that a send waits, and is counted late)."""
        interval = 1 / rate
        start = time.monotonic()
        n = 0
        flying: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            if len(flying) >= MAX_IN_FLIGHT:
                self.tally.late_ticks += 1
                await asyncio.wait(flying, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.create_task(self._guarded(send, n))
            flying.add(task)
            task.add_done_callback(flying.discard)
            n += 1
            wait = start + n * interval - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        if flying:
            await asyncio.gather(*flying)

    async def _guarded(self, send: Callable[[int], Awaitable[None]], n: int) -> None:
        try:
            await send(n)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.tally.problems.append(f"t={self.now():.0f}s send failed: {type(exc).__name__}: {exc}")

    async def send_job(self, n: int) -> None:
        sent = self.now()
        r = await self.http.post(
            "/v1/jobs", json={"kind": PROBE_KIND, "payload": {"seconds": self.probe_seconds}}
        )
        if r.status_code != 201:
            self.tally.problems.append(f"t={sent:.0f}s POST /v1/jobs → {r.status_code} {r.text[:200]}")
            return
        self.tally.answers.append((sent, self.now() - sent))
        job_id = int(r.json()["id"])
        self.open[job_id] = Open(job_id, "probe", sent)
        self.tally.enqueued["probe"] += 1

    async def send_doc(self, n: int) -> None:
        name, data = unique(*self.docs[n % len(self.docs)], n)
        media = "text/html" if name.endswith(".html") else "text/markdown"
        sent = self.now()
        r = await self.http.post("/v1/documents", files={"file": (name, data, media)})
        if r.status_code != 202:
            self.tally.problems.append(
                f"t={sent:.0f}s POST /v1/documents {name} → {r.status_code} {r.text[:200]}"
            )
            return
        self.tally.answers.append((sent, self.now() - sent))
        body = r.json()
        job_id = int(body["job_id"])
        self.open[job_id] = Open(job_id, "ingest", sent, (body["collection"], body["document_id"]))
        self.tally.enqueued["ingest"] += 1

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(
            self._at_rate(self.job_rate, self.send_job, stop),
            self._at_rate(self.doc_rate, self.send_doc, stop),
        )

    # --- following ----------------------------------------------------------------------------------

    async def track_once(self) -> None:
        if not self.open:
            return
        low = min(self.open)
        before: int | None = None
        while True:
            page = await self.store.job_list(JobFilter(before_id=before, limit=500))
            for job in page:
                item = self.open.get(job.id)
                if item is not None and job.state in (
                    JobState.SUCCEEDED,
                    JobState.FAILED,
                    JobState.CANCELLED,
                ):
                    del self.open[job.id]
                    await self._finished(item, job)
            if not page or page[-1].id <= low:
                return
            before = page[-1].id

    async def _finished(self, item: Open, job: Job) -> None:
        if job.state is not JobState.SUCCEEDED:
            self.tally.problems.append(
                f"job {job.id} ({item.kind}) ended {job.state.value}: {job.last_error}"
            )
            return
        self.tally.succeeded[item.kind] += 1
        if job.started_at is not None:
            self.pickups.append(
                Pickup(item.sent, (job.started_at - job.created_at).total_seconds(), item.kind)
            )
        if item.document is not None:
            self._indexed_q.put_nowait(item.document)

    async def _indexed(self, collection: str, document_id: str) -> None:
        r = await self.http.get(f"/v1/documents/{collection}/{document_id}")
        status = r.json().get("status") if r.status_code == 200 else f"HTTP {r.status_code}"
        if status != "indexed":
            self.tally.problems.append(f"document {document_id}: ingest job succeeded, status {status}")
            return
        self.tally.indexed += 1
        self._window.append((collection, document_id))
        while len(self._window) > self.keep_docs:
            old_collection, old_id = self._window.popleft()
            d = await self.http.delete(f"/v1/documents/{old_collection}/{old_id}")
            if d.status_code != 200:
                self.tally.problems.append(f"DELETE document {old_id} → {d.status_code} {d.text[:200]}")
            else:
                self.tally.deleted += 1

    async def documents(self) -> None:
        """Read back and delete the documents the tracker hands over, until cancelled."""
        while True:
            collection, document_id = await self._indexed_q.get()
            try:
                await self._indexed(collection, document_id)
            except (httpx.HTTPError, ValueError) as exc:
                self.tally.problems.append(f"document {document_id}: {type(exc).__name__}: {exc}")
            finally:
                self._indexed_q.task_done()

    async def track(self, stop: asyncio.Event, every: float = 2.0) -> None:
        while not stop.is_set():
            try:
                await self.track_once()
            except (httpx.HTTPError, OSError) as exc:
                self.tally.problems.append(f"t={self.now():.0f}s tracker: {type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    async def drain(self, within: float) -> None:
        """After the load stops: follow the open jobs until none is left or `within` seconds passed."""
        deadline = time.monotonic() + within
        while self.open and time.monotonic() < deadline:
            await self.track_once()
            await asyncio.sleep(1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._indexed_q.join(), max(1.0, deadline - time.monotonic()))

    async def unaccounted(self) -> list[str]:
        """Jobs still open after the drain: gone (no row) or stuck (their state)."""
        out = []
        for job_id, item in sorted(self.open.items()):
            row = await self.store.job_get(job_id)
            out.append(f"job {job_id} ({item.kind}): " + ("no row" if row is None else row.state.value))
        return out
