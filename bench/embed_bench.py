"""The `embed` section of `make bench`: ingestq's ingestion side by side with the raw model and LlamaIndex.

On a copy of ../shared/corpora/markdown (all 992 files, or an evenly spread subset), each run measures,
every system in its own process and interleaved:

1. raw: ingestq's parser + default chunker (untimed), then one sentence-transformers `encode` of every
   chunk text at ingestq's batch size (bench/drivers/embed_raw.py): the ceiling for end to end.
2. ingestq cold: a fresh SQLite store, `ingestq ingest DIR` then `ingestq worker --once`; wall time from
   launching the first command to the worker's exit (interpreters, imports, model load included).
3. LlamaIndex cold: IngestionPipeline([SentenceSplitter(chunk_size=256), HuggingFaceEmbedding(same
   local model folder)]) with a docstore, in .bench-venv (bench/drivers/embed_llamaindex.py); wall time
   from launch to its pipeline persisted (the token counting after that is not timed).
4. re-ingest of the unchanged folder: ingestq `ingest` + `worker --once` again (its embedding cache);
   LlamaIndex the same pipeline again after loading its persisted docstore and cache.
5. one paragraph of a long document edited, the whole folder ingested again by both: ingestq's job for
   that document says how many chunks it embedded and how many it reused, checked against how many
   chunk texts actually changed; LlamaIndex's run returns the nodes it re-embedded.

Plus once: LlamaIndex's HuggingFaceEmbedding against ingestq's vectors for the same texts (cosine).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import CHILD_PYTHONPATH, OUT, ROOT
from bench.machine import loadavg
from bench.markdown_chunks import MARKDOWN
from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.job import Job, JobFilter, JobState
from ingestq.pipeline.embed.sentence_transformers import SentenceTransformerEmbedder, bundled_model_path
from ingestq.pipeline.ingest.kinds import INGEST_KIND
from ingestq.settings import Settings

COLLECTION = "bench"
QUICK_FILES = 100
_EDIT = " This sentence was added by the benchmark to change one paragraph."
Log = Callable[[str], None]


def _ingestq_bin() -> str:
    exe = Path(sys.executable).parent / "ingestq"
    return str(exe if exe.exists() else ROOT / ".venv" / "bin" / "ingestq")


def pick_files(root: Path, files: int | None) -> list[Path]:
    """Every file, or `files` of them spread evenly over the sorted tree (every section represented)."""
    every = sorted(p.relative_to(root) for p in root.rglob("*.md"))
    if files is None or files >= len(every):
        return every
    step = len(every) / files
    return [every[int(i * step)] for i in range(files)]


def copy_corpus(root: Path, files: list[Path], dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)
    return dest


def _prose_lines(lines: list[str]) -> list[int]:
    """Indices of plain paragraph lines: outside front matter and code fences, starting with a word."""
    found: list[int] = []
    fenced = front = False
    for i, line in enumerate(lines):
        if i == 0 and line.strip() == "---":
            front = True
            continue
        if front:
            front = line.strip() != "---"
            continue
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced and len(line) > 80 and re.match(r"[A-Za-z]", line):
            found.append(i)
    return found


def edit_one_paragraph(corpus: Path) -> tuple[Path, str]:
    """Append a sentence to the middle paragraph of the file with the most prose; returns the file."""
    best: tuple[int, Path] | None = None
    for file in sorted(corpus.rglob("*.md")):
        n = len(_prose_lines(file.read_text(encoding="utf-8").splitlines()))
        if best is None or n > best[0]:
            best = (n, file)
    if best is None or best[0] == 0:
        raise RuntimeError(f"no paragraph to edit under {corpus}")
    file = best[1]
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    prose = _prose_lines([ln.rstrip("\n") for ln in lines])
    i = prose[len(prose) // 2]
    lines[i] = lines[i].rstrip("\n") + _EDIT + "\n"
    file.write_text("".join(lines), encoding="utf-8")
    return file, f"{file.relative_to(corpus)} line {i + 1}"


def _last_json(stdout: str) -> dict[str, Any]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError("the driver printed no JSON result")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _run(argv: list[str], env: dict[str, str], log_file: Path, timeout: float) -> str:
    """Run to completion, stderr to `log_file`; its stdout."""
    with log_file.open("ab") as err:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    if proc.returncode != 0:
        tail = log_file.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"`{' '.join(argv[:4])} ...` exited {proc.returncode}:\n{tail}")
    return stdout.decode(errors="replace")


def _wait_cpu(proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Wait for `proc`; its user+system CPU seconds (from wait4)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        time.sleep(0.01)
    proc.kill()
    raise TimeoutError(f"worker still running after {timeout:g} s")


class Ingestq:
    """ingestq end to end through its CLI, on one SQLite file kept across the phases of a run."""

    def __init__(self, workdir: Path, timeout: float) -> None:
        self.db = workdir / "ingestq.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)
        self.log = workdir / "ingestq.log"
        self.timeout = timeout
        self.env = {
            **os.environ,
            "INGESTQ_DATABASE_URL": f"sqlite:///{self.db}",
            "PYTHONPATH": CHILD_PYTHONPATH,
        }
        self.settings = Settings(database_url=f"sqlite:///{self.db}")

    def ingest(self, corpus: Path) -> dict[str, Any]:
        before = asyncio.run(self._last_job_id())
        load_before = loadavg()
        t0 = time.monotonic()
        _run([_ingestq_bin(), "ingest", str(corpus), "-C", COLLECTION, "--json"], self.env, self.log, 600)
        enqueue_s = time.monotonic() - t0
        with self.log.open("ab") as out:
            worker = subprocess.Popen(
                [_ingestq_bin(), "worker", "--once"], env=self.env, cwd=ROOT, stdout=out, stderr=out
            )
            worker_cpu_s = _wait_cpu(worker, self.timeout)
        wall_s = time.monotonic() - t0
        if worker.returncode != 0:
            raise RuntimeError(f"ingestq worker exited {worker.returncode} (see {self.log})")
        jobs = asyncio.run(self._jobs_after(before))
        summary = summarise(jobs)
        summary.update(
            wall_s=wall_s,
            enqueue_s=enqueue_s,
            worker_cpu_s=worker_cpu_s,
            chunks_per_s=summary["chunks"] / wall_s,
            load_before=load_before,
            load_after=loadavg(),
        )
        return summary

    async def _last_job_id(self) -> int:
        async with Client.connect(self.settings) as client:
            newest = await client.list(JobFilter(kinds=(INGEST_KIND,), limit=1))
            return newest[0].id if newest else 0

    async def _jobs_after(self, job_id: int) -> list[Job]:
        found: list[Job] = []
        async with Client.connect(self.settings) as client:
            before: int | None = None
            while True:
                page = await client.list(JobFilter(kinds=(INGEST_KIND,), before_id=before, limit=500))
                fresh = [j for j in page if j.id > job_id]
                found += fresh
                if len(fresh) < len(page) or len(page) < 500:
                    return found
                before = page[-1].id

    def chunk_texts(self, document_id: str) -> list[str]:
        async def read() -> list[str]:
            async with Client.connect(self.settings) as client:
                rows = await Documents(client, self.settings).store.document_chunks(COLLECTION, document_id)
                return [r.text for r in rows]

        return asyncio.run(read())


def summarise(jobs: list[Job]) -> dict[str, Any]:
    results = [j.result if isinstance(j.result, dict) else {} for j in jobs]
    window = SentenceTransformerEmbedder().max_tokens  # read from the model folder; no torch import
    failed = [f"{j.document_id}: {j.last_error}" for j in jobs if j.state is not JobState.SUCCEEDED]
    return {
        "documents": len(jobs),
        "succeeded": len(jobs) - len(failed),
        "failed": sorted(failed)[:5],
        "chunks": sum(int(r.get("chunks", 0) or 0) for r in results),
        "embedded": sum(int(r.get("embedded", 0) or 0) for r in results),
        "reused": sum(int(r.get("reused", 0) or 0) for r in results),
        "max_tokens": max((int(r.get("max_tokens", 0) or 0) for r in results), default=0),
        "over_window": sum(int(r.get("max_tokens", 0) or 0) > window for r in results),
        "per_document": {
            str(j.document_id): {k: r.get(k) for k in ("chunks", "embedded", "reused")}
            for j, r in zip(jobs, results, strict=True)
        },
    }


def _peer_python() -> Path:
    from bench.peers import PY

    return PY


def llamaindex(corpus: Path, persist: Path, log_file: Path, again: bool, timeout: float) -> dict[str, Any]:
    argv = [str(_peer_python()), "-m", "bench.drivers.embed_llamaindex", "ingest", str(corpus)]
    argv += ["--persist", str(persist), "--model", str(bundled_model_path())]
    env = {**os.environ, "PYTHONPATH": CHILD_PYTHONPATH}
    load_before = loadavg()
    t0 = time.time()
    stdout = _run([*argv, *(["--again"] if again else [])], env, log_file, timeout)
    result = _last_json(stdout)
    # to the pipeline persisted, from the launch: the token counting afterwards is not the peer's cost
    result["wall_s"] = result["done_at"] - t0
    result["chunks_per_s"] = result["chunks"] / result["wall_s"]
    result.update(load_before=load_before, load_after=loadavg())
    return result


def raw(corpus: Path, sample: Path, log_file: Path, timeout: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.drivers.embed_raw", str(corpus), "--sample", str(sample)]
    stdout = _run(argv, {**os.environ, "PYTHONPATH": CHILD_PYTHONPATH}, log_file, timeout)
    return _last_json(stdout)


def same_vectors(sample: Path, log_file: Path) -> dict[str, Any]:
    argv = [str(_peer_python()), "-m", "bench.drivers.embed_llamaindex", "vectors"]
    argv += ["--sample", str(sample), "--model", str(bundled_model_path())]
    stdout = _run(argv, {**os.environ, "PYTHONPATH": CHILD_PYTHONPATH}, log_file, 600)
    return _last_json(stdout)


def _guarded(name: str, log: Log, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        result = fn()
    except Exception as exc:  # one failing system must not cost the others' figures
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        log(f"embed {name}: ERROR {type(exc).__name__}: {first}")
        return {"error": f"{type(exc).__name__}: {first}"}
    keys = ("chunks", "wall_s", "encode_s", "chunks_per_s", "embedded", "reused", "over_window")
    shown = " ".join(
        f"{k}={result[k]:,}" if isinstance(result[k], int) else f"{k}={result[k]:,.1f}"
        for k in keys
        if isinstance(result.get(k), int | float)
    )
    log(f"embed {name}: {shown}")
    return result


def one_run(index: int, files: list[Path], timeout: float, log: Log) -> dict[str, Any]:
    """Every system through every phase once, interleaved; odd runs start with the peer."""
    # A short path like the shared corpus's own: LlamaIndex embeds each file's path with its chunks.
    workdir = Path(tempfile.mkdtemp(prefix="ingestq-embed-"))
    try:
        return _phases(index, workdir, files, timeout, log)
    finally:
        logs = OUT / "embed"
        logs.mkdir(parents=True, exist_ok=True)
        for name in ("ingestq.log", "llamaindex.log"):
            if (workdir / name).exists():
                shutil.copy(workdir / name, logs / f"run{index}-{name}")
        shutil.rmtree(workdir, ignore_errors=True)


def _phases(index: int, workdir: Path, files: list[Path], timeout: float, log: Log) -> dict[str, Any]:
    corpus = copy_corpus(MARKDOWN, files, workdir / "markdown")
    sample = workdir / "sample.json"
    persist = workdir / "llamaindex"
    ours = Ingestq(workdir, timeout)
    run: dict[str, Any] = {"raw": _guarded("raw model", log, lambda: raw(corpus, sample, ours.log, timeout))}
    # what a long run has measured so far, should it be stopped before the report is written
    partial = OUT / "embed" / f"run{index}-partial.json"
    partial.parent.mkdir(parents=True, exist_ok=True)

    def peer(again: bool) -> dict[str, Any]:
        return llamaindex(corpus, persist, workdir / "llamaindex.log", again, timeout)

    systems: dict[str, Callable[[str], dict[str, Any]]] = {
        "ingestq": lambda phase: ours.ingest(corpus),
        "llamaindex": lambda phase: peer(phase != "cold"),
    }
    names = list(systems) if index % 2 == 0 else list(systems)[::-1]
    for phase in ("cold", "again"):
        for name in names:
            run.setdefault(name, {})[phase] = _guarded(
                f"{name} {phase}", log, functools.partial(systems[name], phase)
            )
            partial.write_text(json.dumps(run, default=str))

    edited, where = edit_one_paragraph(corpus)
    doc_id = str(edited.resolve())
    before = ours.chunk_texts(doc_id)
    for name in names:
        run[name]["edit"] = _guarded(f"{name} edit", log, functools.partial(systems[name], "edit"))
        partial.write_text(json.dumps(run, default=str))
    after = ours.chunk_texts(doc_id)
    mine = run["ingestq"]["edit"].get("per_document", {}).get(doc_id, {})
    run["edit"] = {
        "file": where,
        "chunks_before": len(before),
        "chunks_after": len(after),
        "changed_chunks": len(set(after) - set(before)),
        "ingestq_embedded": mine.get("embedded"),
        "ingestq_reused": mine.get("reused"),
        "llamaindex_embedded": run["llamaindex"]["edit"].get("chunks"),
    }
    log(f"embed edit {where}: {json.dumps(run['edit'])}")
    for phase in run["ingestq"].values():
        phase.pop("per_document", None)  # a thousand rows nobody reads in the report
    if sample.exists():
        run["vectors"] = _guarded("same vectors", log, lambda: same_vectors(sample, ours.log))
    return run


def measure(files: int | None, runs: int, log: Log, timeout: float = 7200) -> dict[str, Any]:
    chosen = pick_files(MARKDOWN, files)
    log(f"embed: {len(chosen)} Markdown files from {MARKDOWN}, {runs} run(s)")
    return {
        "files": len(chosen),
        "corpus_files": len(pick_files(MARKDOWN, None)),
        "model": str(bundled_model_path()),
        "runs": [one_run(i, chosen, timeout, log) for i in range(runs)],
    }
