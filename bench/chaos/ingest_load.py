"""What the ingestion scenarios share: documents to ingest (generated, or the shared corpora), the
workers' environment, waiting for every job to settle, and the figures read from the job and document
rows (ingestion jobs write no probe markers, so "run twice" is read from the documents: a document
indexed more than once has a version above 1)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.chaos.harness import Figures, all_jobs
from ingestq.model.document import Document, DocumentFilter, DocumentRef
from ingestq.model.job import Job, JobState
from ingestq.pipeline.ingest.enqueue import index_store, register_and_enqueue
from ingestq.store.base import Store

COLLECTION = "chaos"
CORPORA = (Path(__file__).resolve().parents[3] / "shared" / "corpora", Path("/work/shared/corpora"))
_WORDS = ("queue", "lease", "worker", "parser", "vector", "chunk", "batch", "retry", "outage", "limit")


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set variables for the worker processes `Cluster.start` spawns (it copies os.environ)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def generate_documents(where: Path, n: int) -> list[Path]:
    """Small Markdown documents, one chunk each, every one with text of its own (so the embedding cache
    never answers for another document)."""
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        words = " ".join(_WORDS[(i * 7 + k) % len(_WORDS)] for k in range(40))
        path = where / f"doc{i:05d}.md"
        path.write_text(f"# Document {i}\n\nDocument number {i} of the fault suite. {words}.\n")
        paths.append(path)
    return paths


def corpus_documents(n: int, sets: tuple[str, ...] = ("html", "markdown")) -> list[Path]:
    """`n` real files from the shared corpora (cycled when fewer), HTML first: those take the parser
    longest, so a killed child is more likely to be mid-document."""
    root = next((p for p in CORPORA if (p / "MANIFEST.md").is_file()), None)
    if root is None:
        raise RuntimeError(f"shared corpora not found (looked in {', '.join(map(str, CORPORA))})")
    files = [f for s in sets for f in sorted((root / s).rglob("*")) if f.is_file() and not _blank(f)]
    return [files[i % len(files)] for i in range(n)]


def _blank(path: Path) -> bool:
    """A Markdown file with nothing but front matter and comments: it fails (no text) whatever the
    faults, so it would count as lost."""
    if path.suffix != ".md":
        return False
    text = path.read_text(errors="replace").strip()
    if text.startswith("---"):
        text = text[3:].partition("\n---")[2]
    return not re.sub(r"<!--.*?-->", "", text, flags=re.S).strip()


async def enqueue(store: Store, sources: list[Path], ids: list[str] | None = None) -> dict[int, str]:
    """Register one document per source and queue its ingestion job: job id -> document id."""
    refs = [
        DocumentRef(COLLECTION, ids[i] if ids else f"d{i:05d}", str(path)) for i, path in enumerate(sources)
    ]
    out: dict[int, str] = {}
    for start in range(0, len(refs), 500):
        pairs = await register_and_enqueue(index_store(store), refs[start : start + 500], datetime.now(UTC))
        out.update((job.id, doc.id) for doc, job in pairs)
    return out


async def wait_settled(store: Store, total: int, within: float) -> float | None:
    """Poll until `total` jobs are finished (any final state): monotonic time, or None after `within`."""
    deadline = time.monotonic() + within
    final = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            stats = await store.stats(datetime.now(UTC))
            if sum(s.counts.get(state, 0) for s in stats for state in final) >= total:
                return time.monotonic()
        await asyncio.sleep(0.2)
    return None


async def documents(store: Store) -> dict[str, Document]:
    found: dict[str, Document] = {}
    after: str | None = None
    while True:
        page = await index_store(store).document_list(
            DocumentFilter(collection=COLLECTION, after_id=after, limit=1000)
        )
        if not page:
            return found
        found.update((d.id, d) for d in page)
        after = page[-1].id


@dataclass
class IngestRows:
    jobs: dict[int, Job]
    docs: dict[str, Document]
    job_of: dict[int, str]
    expected_to_fail: set[int] = field(default_factory=set)


async def read_rows(store: Store, job_of: dict[int, str], expected_to_fail: set[int]) -> IngestRows:
    return IngestRows(await all_jobs(store), await documents(store), job_of, expected_to_fail)


def figures(rows: IngestRows, elapsed: float) -> Figures:
    """lost: jobs that should have succeeded and did not, or whose document is not indexed;
    finished_twice: documents indexed more than once (version > 1, or a succeeded job that found its
    document already served); attempts burned: over the succeeded jobs. Ingestion writes no probe
    markers: same-attempt and concurrent re-runs are not observed here (left 0; the probe scenarios
    measure the queue's fence)."""
    ids = [i for i in rows.job_of if i not in rows.expected_to_fail]
    fig = Figures(jobs=len(rows.job_of))
    ok = [
        i
        for i in ids
        if i in rows.jobs
        and rows.jobs[i].state is JobState.SUCCEEDED
        and rows.docs.get(rows.job_of[i]) is not None
        and rows.docs[rows.job_of[i]].status.value == "indexed"
    ]
    fig.lost = len(ids) - len(ok)
    fig.missing = sum(1 for i in ids if i not in rows.jobs)
    fig.unfinished = sum(
        1 for i in ids if i in rows.jobs and rows.jobs[i].state in (JobState.QUEUED, JobState.RUNNING)
    )
    # a second commit of other bytes bumps the version; of the same bytes, the later run finds them
    # served already and says `unchanged` in its result
    again = {
        rows.job_of[i]
        for i in ok
        if isinstance(rows.jobs[i].result, dict) and rows.jobs[i].result.get("unchanged")
    }
    fig.finished_twice = len(again | {d.id for d in rows.docs.values() if d.version > 1})
    fig.attempts_burned = sum(max(0, rows.jobs[i].attempt - 1) for i in ok)
    fig.elapsed = max(0.001, elapsed)
    fig.throughput = len(ok) / fig.elapsed
    return fig
