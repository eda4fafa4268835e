"""Ingest all of ../shared/corpora with the defaults and write docs/corpus-report.md.

    python -m bench.corpus [--corpora DIR] [--out docs/corpus-report.md] [--sets markdown,pdf,...]
                           [--concurrency N] [--db .ingestq/corpus.db]

One fresh SQLite store, one in-process worker (the same code as `ingestq ingest --wait`), the default
local model. Per file: set, media type, pages, chunks, seconds, outcome (indexed, failed or quarantined
with the reason). Also: chunks over the model's window (must be 0), peak RSS of the worker process
and of worker + parser children, end-to-end chunks/s, re-ingest time of the unchanged markdown set,
and recall@5 of the 20 questions of queries.md over the full markdown set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from bench import known_failures
from bench.corpus_memory import CHECKPOINT, Memory, sample_memory, smaps_rollup, thread_count
from ingestq.client.client import Client
from ingestq.client.documents import Documents, Ingested
from ingestq.model.document import DocumentStatus
from ingestq.pipeline.ingest.kinds import INGEST_QUEUE
from ingestq.pipeline.ingest.runtime import IngestRuntime
from ingestq.settings import Settings
from ingestq.worker import Worker, WorkerConfig

REPO = Path(__file__).resolve().parents[1]
# markdown first: its 992 small files pass the first-thousand memory checkpoint early; pdf (OCR) last
SETS = ("markdown", "text", "html", "docx", "docx-broken", "pdf-broken", "pdf")
_POLL = 0.5
_ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*)\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def find_corpora() -> Path | None:
    for path in (REPO.parent / "shared" / "corpora", Path("/work/shared/corpora")):
        if (path / "MANIFEST.md").is_file():
            return path
    return None


def parse_queries(text: str) -> list[tuple[str, set[str]]]:
    found = []
    for line in text.splitlines():
        m = _ROW.match(line)
        if m:
            found.append((m.group(2).strip(), {m.group(3), *re.findall(r"`([^`]+)`", m.group(4))}))
    return found


@dataclass
class Row:
    set: str
    path: str
    media_type: str
    pages: int | None
    chunks: int
    seconds: float
    outcome: str
    reason: str

    @property
    def indexed(self) -> bool:
        return self.outcome == DocumentStatus.INDEXED.value


async def wait_for_set(docs: Documents, name: str, total: int, memory: Memory, done_before: int) -> None:
    """Until no document of the set is pending; counts what has finished for the memory timeline.
    One count query per look, not one query per job: the run should measure the worker, not itself."""
    while True:
        pending = (await docs.counts(name)).get(DocumentStatus.PENDING, 0)
        memory.done = done_before + total - pending
        if not pending:
            memory.sample()  # RSS as the set's last document finished
            return
        await asyncio.sleep(_POLL)


def corpus_files(folder: Path, limit: int | None) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return files if limit is None else files[:limit]


async def run(args: argparse.Namespace) -> int:
    corpora = Path(args.corpora) if args.corpora else find_corpora()
    if corpora is None:
        print("corpora not found (expected ../shared/corpora)", file=sys.stderr)
        return 2
    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        stale.unlink(missing_ok=True)
    # The defaults a deployed worker gets, unless --concurrency says otherwise.
    overrides = {"ingest_concurrency": args.concurrency} if args.concurrency else {}
    settings = Settings(database_url=f"sqlite:///{db}", **overrides)
    console = Console(stderr=True)
    known = known_failures.load()
    memory = Memory()
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(memory, stop))
    if args.tracemalloc:
        tracemalloc.start(10)
    rows: list[Row] = []
    over = 0
    recall: float | None = None
    reingest: tuple[float, int, int] | None = None
    check = known_failures.Check()
    async with Client.connect(settings) as client, IngestRuntime(client.store, settings) as runtime:
        docs = Documents(client, settings)
        window = docs.embedder.max_tokens
        # One worker for the whole run, as a deployed worker would see the corpus: memory that grows
        # from set to set is then the worker's, not a fresh runtime's per set.
        config = WorkerConfig.from_settings(
            settings, concurrency=settings.ingest_concurrency, queues=(INGEST_QUEUE,)
        )
        worker = Worker(client.store, runtime.registry(), config, client.clock)
        worker_task = asyncio.create_task(worker.run())
        started = time.monotonic()
        set_seconds: dict[str, float] = {}
        set_chunks: dict[str, int] = {}
        try:
            for name in args.sets:
                folder = corpora / name
                if not folder.is_dir():
                    continue
                files = corpus_files(folder, args.limit)
                t0 = time.monotonic()
                console.print(f"{name}: {len(files)} files")
                batch = await docs.ingest(files, collection=name, metadata={"set": name})
                await wait_for_set(docs, name, len(batch), memory, memory.done)
                set_seconds[name] = time.monotonic() - t0
                got = await set_rows(client, docs, name, folder, batch)
                rows += got
                chunks = sum(r.chunks for r in got)
                set_chunks[name] = chunks
                for doc in await docs.list(name, DocumentStatus.INDEXED, limit=100_000):
                    chunk_rows = await docs.store.document_chunks(name, doc.id)
                    over += sum(1 for c in chunk_rows if c.token_count > window)
                if name == "markdown" and args.limit is None and (corpora / "queries.md").is_file():
                    recall = await markdown_recall(docs, corpora, folder)
                    reingest = await reingest_unchanged(client, docs, files, memory)
                check = known_failures.check(
                    (known_failures.Outcome(f"{r.set}/{r.path}", r.indexed, r.reason) for r in rows),
                    known,
                )
                # written after every set, so a long run leaves a report of what it has done so far
                notes = ["", f"Sets done: {', '.join(set_seconds)}."]
                if args.limit is not None:
                    notes.append(f"A subset: the first {args.limit} files of each set (`--limit`).")
                notes += memory_notes(args.tracemalloc)
                write_report(
                    Path(args.out),
                    rows,
                    set_seconds,
                    set_chunks,
                    time.monotonic() - started,
                    over,
                    window,
                    memory,
                    check,
                    known,
                    recall,
                    reingest,
                    notes,
                )
        finally:
            worker.request_stop(graceful=True)
            await worker_task
    stop.set()
    await sampler
    print(
        f"wrote {args.out}: {len(rows)} files, {over} chunks over the window, recall@5 {recall}, "
        f"{check.known} known failures, {len(check.unexpected)} unexpected; peak worker RSS "
        f"{memory.peak_first_kib / 1024:.0f} MiB (first {CHECKPOINT}) / "
        f"{memory.peak_self_kib / 1024:.0f} MiB (all), {memory.last_kib / 1024:.0f} MiB at the last document"
    )
    for outcome in check.unexpected:
        print(f"unexpected failure: {outcome.file}: {outcome.reason}", file=sys.stderr)
    return 0 if over == 0 and not check.unexpected else 1


async def set_rows(
    client: Client, docs: Documents, name: str, folder: Path, batch: list[Ingested]
) -> list[Row]:
    rows: list[Row] = []
    root = folder.resolve()  # noqa: ASYNC240 (once per set)
    for b in batch:
        job = await client.get(b.job.id)
        doc = await docs.get(b.document.id, name)
        result = job.result if isinstance(job.result, dict) else {}
        indexed = doc.status is DocumentStatus.INDEXED
        rows.append(
            Row(
                name,
                Path(doc.id).relative_to(root).as_posix(),
                str(result.get("media_type") or doc.media_type or ""),
                result.get("pages"),
                int(result.get("chunks", 0)),
                float(result.get("seconds", 0.0)),
                doc.status.value,
                "" if indexed else (doc.error or job.last_error or ""),
            )
        )
    return rows


async def reingest_unchanged(
    client: Client, docs: Documents, files: list[Path], memory: Memory
) -> tuple[float, int, int]:
    """The markdown set again, unchanged: every chunk should come from the embedding cache."""
    t0 = time.monotonic()
    again = await docs.ingest(files, collection="markdown", metadata={"set": "markdown"})
    await wait_for_set(docs, "markdown", len(again), memory, memory.done)
    embedded = reused = 0
    for b in again:
        result = (await client.get(b.job.id)).result
        if isinstance(result, dict):
            embedded += int(result.get("embedded", 0))
            reused += int(result.get("reused", 0))
    return time.monotonic() - t0, embedded, reused


async def markdown_recall(docs: Documents, corpora: Path, folder: Path) -> float:
    queries = parse_queries((corpora / "queries.md").read_text(encoding="utf-8"))
    root = folder.resolve()  # noqa: ASYNC240 (once per run)
    found = 0
    for question, files in queries:
        hits = await docs.search(question, k=5, collection="markdown")
        got = {Path(h.document_id).relative_to(root).as_posix() for h in hits}
        found += bool(got & files)
    return found / len(queries)


def memory_notes(traced: bool) -> list[str]:
    """Where the worker's resident memory is: anonymous (heap, arenas, tensors) vs file-backed, and
    with --tracemalloc how much of it the Python heap holds."""
    me = os.getpid()
    rollup = smaps_rollup(me)
    lines = [
        "",
        f"Worker memory now: RSS {rollup.get('Rss', 0) / 1024:.0f} MiB, of which anonymous "
        f"{rollup.get('Anonymous', 0) / 1024:.0f} MiB and file-backed (libraries, the mmapped model) "
        f"{rollup.get('Pss_File', 0) / 1024:.0f} MiB; {thread_count(me)} threads (/proc/self/smaps_rollup).",
    ]
    if traced and tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        lines.append(
            f"Python heap (tracemalloc): {current / 2**20:.0f} MiB now, {peak / 2**20:.0f} MiB peak. "
            "Largest sites:"
        )
        lines.append("")
        for stat in tracemalloc.take_snapshot().statistics("lineno")[:8]:
            lines.append(f"- {stat.size / 2**20:.1f} MiB in {stat.count} blocks: {stat.traceback[0]}")
    return lines


def write_report(
    out: Path,
    rows: list[Row],
    set_seconds: dict[str, float],
    set_chunks: dict[str, int],
    total_seconds: float,
    over: int,
    window: int,
    memory: Memory,
    check: known_failures.Check,
    known: dict[str, known_failures.Known],
    recall: float | None,
    reingest: tuple[float, int, int] | None,
    notes: list[str],
) -> None:
    outcomes = Counter((r.set, r.outcome) for r in rows)
    lines = [
        "# Corpus ingestion report",
        "",
        "Written by `make corpus` (`python -m bench.corpus`): every file of ../shared/corpora through the",
        "whole pipeline (sandboxed parse, chunk, embed with the default all-MiniLM-L6-v2, commit) into one",
        "fresh SQLite store by one in-process worker. Timings depend on the machine's load.",
        "",
        "## Summary",
        "",
        f"- files: {len(rows)}, total {total_seconds:.0f} s",
        f"- chunks over the model's {window}-token window: **{over}**",
        f"- failures: {check.known} known (tests/pipeline/known_failures.toml, each with why), "
        f"**{len(check.unexpected)} unexpected**",
        f"- peak RSS of the worker process: **{memory.peak_first_kib / 1024:.0f} MiB over the first "
        f"{CHECKPOINT} documents, {memory.peak_self_kib / 1024:.0f} MiB over all {memory.done}**, "
        f"{memory.last_kib / 1024:.0f} MiB when the last one finished; worker + parser children "
        f"{memory.peak_total_kib / 1024:.0f} MiB",
    ]
    if recall is not None:
        lines.append(
            f"- recall@5 on markdown/ with queries.md (expected or also-acceptable file): **{recall:.2f}**"
        )
    if reingest is not None:
        first = set_seconds.get("markdown", 0.0)
        lines.append(
            f"- markdown/ re-ingest unchanged: {reingest[0]:.1f} s "
            f"({reingest[1]} embedded, {reingest[2]} reused) "
            f"vs {first:.1f} s first ingest ({first / max(reingest[0], 1e-9):.1f}x faster)"
        )
    lines += [
        "",
        "| set | files | indexed | failed | quarantined | chunks | seconds | chunks/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, seconds in set_seconds.items():
        n = sum(1 for r in rows if r.set == name)
        chunks = set_chunks.get(name, 0)
        lines.append(
            f"| {name} | {n} | {outcomes[(name, 'indexed')]} | {outcomes[(name, 'failed')]} | "
            f"{outcomes[(name, 'quarantined')]} | {chunks} | {seconds:.1f} | "
            f"{chunks / max(seconds, 1e-9):.1f} |"
        )
    lines += ["", "## Failures not in tests/pipeline/known_failures.toml", ""]
    lines += [f"- `{o.file}`: {_cell(o.reason)}" for o in check.unexpected] or ["None."]
    if check.now_ok:
        lines += ["", "Listed as known failures but ingested this time:", ""]
        lines += [f"- `{path}`" for path in check.now_ok]
    lines += [
        "",
        "## Worker RSS by documents finished",
        "",
        "Sampled every 0.5 s; a row whenever another 250 documents have finished (the markdown re-ingest",
        "counts as documents too).",
        "",
        "| documents finished | worker RSS MiB | worker + children MiB |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {done} | {own / 1024:.0f} | {total / 1024:.0f} |" for done, own, total in memory.timeline]
    lines += [
        "",
        "## Per file",
        "",
        "| set | file | type | pages | chunks | seconds | outcome |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        outcome = r.outcome + (f": {r.reason}" if r.reason else "")
        if r.outcome != "indexed" and f"{r.set}/{r.path}" in known:
            outcome += " (known)"
        outcome = _cell(outcome)
        media = r.media_type.rsplit("/", 1)[-1]
        pages = "" if r.pages is None else str(r.pages)
        lines.append(f"| {r.set} | {r.path} | {media} | {pages} | {r.chunks} | {r.seconds:.2f} | {outcome} |")
    lines += notes
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", default=None)
    parser.add_argument("--out", default=str(REPO / "docs" / "corpus-report.md"))
    parser.add_argument("--db", default=str(REPO / ".ingestq" / "corpus.db"))
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="ingestion jobs in flight (default INGESTQ_INGEST_CONCURRENCY)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N files of each set")
    parser.add_argument("--tracemalloc", action="store_true", help="report the Python heap (slower)")
    args = parser.parse_args(argv)
    args.sets = [s for s in args.sets.split(",") if s]
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
