"""Ingest all of ../shared/corpora with the defaults and write docs/corpus-report.md.

    python -m bench.corpus [--corpora DIR] [--out docs/corpus-report.md] [--sets markdown,pdf,...]
                           [--concurrency 8] [--db .ingestq/corpus.db]

One fresh SQLite store, one in-process worker (the same code as `ingestq ingest --wait`), the default
local model. Per file: set, media type, pages, chunks, seconds, outcome (indexed, failed or quarantined
with the reason). Also: chunks over the model's window (must be 0), peak RSS of the worker process
and of worker + parser children, end-to-end chunks/s, re-ingest time of the unchanged markdown set,
and recall@5 of the 20 questions of queries.md over the full markdown set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ingestq.cli.ingest import wait_for_jobs
from ingestq.core.client import Client
from ingestq.core.document import DocumentStatus
from ingestq.core.documents import Documents
from ingestq.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SETS = ("pdf", "pdf-broken", "docx", "docx-broken", "html", "markdown", "text")
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


def _rss_kib(pid: int | str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[str]:
    found: list[str] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += (task / "children").read_text().split()
    return found


@dataclass
class Memory:
    peak_self_kib: int = 0
    peak_total_kib: int = 0
    first_quarter_kib: int = 0


async def sample_memory(memory: Memory, stop: asyncio.Event) -> None:
    import os

    me = os.getpid()
    while not stop.is_set():
        own = _rss_kib(me)
        total = own + sum(_rss_kib(c) for c in _children(me))
        memory.peak_self_kib = max(memory.peak_self_kib, own)
        memory.peak_total_kib = max(memory.peak_total_kib, total)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


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


async def run(args: argparse.Namespace) -> int:
    corpora = Path(args.corpora) if args.corpora else find_corpora()
    if corpora is None:
        print("corpora not found (expected ../shared/corpora)", file=sys.stderr)
        return 2
    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        stale.unlink(missing_ok=True)
    settings = Settings(database_url=f"sqlite:///{db}", concurrency=args.concurrency)
    console = Console(stderr=True)
    memory = Memory()
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(memory, stop))
    rows: list[Row] = []
    over = 0
    recall: float | None = None
    reingest: tuple[float, int, int] | None = None
    async with Client.connect(settings) as client:
        docs = Documents(client, settings)
        window = docs.embedder.max_tokens
        started = time.monotonic()
        set_seconds: dict[str, float] = {}
        set_chunks: dict[str, int] = {}
        for name in args.sets:
            folder = corpora / name
            if not folder.is_dir():
                continue
            t0 = time.monotonic()
            batch = await docs.ingest([folder], collection=name, metadata={"set": name})
            await wait_for_jobs(client, settings, [b.job for b in batch], out=console, label=name)
            set_seconds[name] = time.monotonic() - t0
            chunks = 0
            for b in batch:
                job = await client.get(b.job.id)
                doc = await docs.get(b.document.id, name)
                result = job.result if isinstance(job.result, dict) else {}
                chunks += int(result.get("chunks", 0))
                outcome = doc.status.value
                rows.append(
                    Row(
                        name,
                        Path(doc.id).relative_to(folder.resolve()).as_posix(),
                        str(result.get("media_type") or doc.media_type or ""),
                        result.get("pages"),
                        int(result.get("chunks", 0)),
                        float(result.get("seconds", 0.0)),
                        outcome,
                        "" if doc.status is DocumentStatus.INDEXED else (doc.error or job.last_error or ""),
                    )
                )
            set_chunks[name] = chunks
            if not memory.first_quarter_kib and len(rows) >= 250:
                memory.first_quarter_kib = memory.peak_total_kib
            for doc in await docs.list(name, DocumentStatus.INDEXED, limit=100_000):
                chunk_rows = await docs.store.document_chunks(name, doc.id)
                over += sum(1 for c in chunk_rows if c.token_count > window)
            if name == "markdown" and (corpora / "queries.md").is_file():
                queries = parse_queries((corpora / "queries.md").read_text(encoding="utf-8"))
                root = folder.resolve()
                found = 0
                for question, files in queries:
                    hits = await docs.search(question, k=5, collection="markdown")
                    got = {Path(h.document_id).relative_to(root).as_posix() for h in hits}
                    found += bool(got & files)
                recall = found / len(queries)
                t0 = time.monotonic()
                again = await docs.ingest([folder], collection="markdown", metadata={"set": name})
                jobs = [b.job for b in again]
                summary = await wait_for_jobs(client, settings, jobs, out=console, label="again")
                reingest = (time.monotonic() - t0, summary.embedded, summary.reused)
            # written after every set, so a long run leaves a report of what it has done so far
            peak_self = max(memory.peak_self_kib, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            notes = ["", f"Sets done: {', '.join(set_seconds)}."]
            write_report(
                Path(args.out),
                rows,
                set_seconds,
                set_chunks,
                time.monotonic() - started,
                over,
                window,
                peak_self,
                memory,
                recall,
                reingest,
                notes,
            )
    stop.set()
    await sampler
    print(f"wrote {args.out}: {len(rows)} files, {over} chunks over the window, recall@5 {recall}")
    return 0 if over == 0 else 1


def write_report(
    out: Path,
    rows: list[Row],
    set_seconds: dict[str, float],
    set_chunks: dict[str, int],
    total_seconds: float,
    over: int,
    window: int,
    peak_self_kib: int,
    memory: Memory,
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
        f"- peak RSS: worker process {peak_self_kib / 1024:.0f} MiB, worker + parser children "
        f"{memory.peak_total_kib / 1024:.0f} MiB (at the end of the set that passed 250 files: "
        f"{memory.first_quarter_kib / 1024:.0f} MiB)",
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
    lines += [
        "",
        "## Per file",
        "",
        "| set | file | type | pages | chunks | seconds | outcome |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        outcome = r.outcome + (f": {r.reason}" if r.reason else "")
        outcome = outcome.replace("|", "\\|")
        media = r.media_type.rsplit("/", 1)[-1]
        pages = "" if r.pages is None else str(r.pages)
        lines.append(f"| {r.set} | {r.path} | {media} | {pages} | {r.chunks} | {r.seconds:.2f} | {outcome} |")
    lines += notes
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", default=None)
    parser.add_argument("--out", default=str(REPO / "docs" / "corpus-report.md"))
    parser.add_argument("--db", default=str(REPO / ".ingestq" / "corpus.db"))
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    args.sets = [s for s in args.sets.split(",") if s]
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
