"""The embedding peer: LlamaIndex's IngestionPipeline over a folder of Markdown, run in .bench-venv.

    python -m bench.drivers.embed_llamaindex ingest CORPUS --persist DIR --model PATH [--again]
    python -m bench.drivers.embed_llamaindex vectors --sample FILE --model PATH

`ingest`: SimpleDirectoryReader (one document per file, id = file path, so its docstore can tell an
unchanged file), then IngestionPipeline([SentenceSplitter(chunk_size=256, chunk_overlap=0),
HuggingFaceEmbedding]) with a SimpleDocumentStore; persisted to DIR. `--again` loads DIR first
(docstore + transformation cache) and runs the same pipeline over the folder again: what a LlamaIndex
user does to re-ingest. Prints one JSON line with the chunk count, how many chunks exceed the model's
window in the model's own tokenizer (the text as embedded, metadata included, and the chunk text
alone), and phase timings.

`vectors`: embeds the sample texts written by bench/drivers/embed_raw.py with HuggingFaceEmbedding and
prints the cosine similarity to ingestq's vectors (same text, same model: should be 1.0).

This module runs only in .bench-venv: it never imports ingestq, and ingestq never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

CHUNK_SIZE = 256
# ingestq's chunks do not overlap. LlamaIndex's default overlap (200 tokens of 256) would embed most
# text 4-5 times (5,951 chunks on the full markdown set instead of 2,599), so the peer gets none either.
CHUNK_OVERLAP = 0
# LlamaIndex's HuggingFaceEmbedding batches 10 texts by default; ingestq's model batch is 32 and
# batch size moves CPU throughput (bench/embed_throughput.py), so the peer gets the same batch.
EMBED_BATCH = 32


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _offline() -> None:
    # The model is a local folder: nothing may reach for the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _embedding(model: str) -> Any:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=model, device="cpu", embed_batch_size=EMBED_BATCH)


def _counter(model: str) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def _window(model: str) -> int:
    return int(json.loads((Path(model) / "sentence_bert_config.json").read_text())["max_seq_length"])


def ingest(corpus: Path, persist: Path, model: str, again: bool) -> dict[str, Any]:
    t_start = time.perf_counter()
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from llama_index.core.storage.docstore import SimpleDocumentStore

    import_s = time.perf_counter() - t_start
    t0 = time.perf_counter()
    embed = _embedding(model)
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    reader = SimpleDirectoryReader(str(corpus), recursive=True, required_exts=[".md"], filename_as_id=True)
    documents = reader.load_data()
    read_s = time.perf_counter() - t0

    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP), embed],
        docstore=SimpleDocumentStore(),
        # without a vector store LlamaIndex applies this anyway (and warns): skip unchanged documents
        docstore_strategy=DocstoreStrategy.DUPLICATES_ONLY,
    )
    if again:
        pipeline.load(str(persist))
    cpu0, t0 = _cpu(), time.perf_counter()
    nodes = pipeline.run(documents=documents)
    run_s = time.perf_counter() - t0
    run_cpu_s = _cpu() - cpu0
    t0 = time.perf_counter()
    pipeline.persist(str(persist))
    persist_s = time.perf_counter() - t0
    done_at = time.time()  # the orchestrator's clock started at launch: its wall time ends here

    tok = _counter(model)
    window = _window(model)
    embedded_texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    plain_texts = [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
    embedded_tokens = [len(e.ids) for e in tok.encode_batch(embedded_texts)] if nodes else []
    plain_tokens = [len(e.ids) for e in tok.encode_batch(plain_texts)] if nodes else []
    return {
        "documents": len(documents),
        "chunks": len(nodes),
        "window": window,
        "over_window": sum(t > window for t in embedded_tokens),
        "over_window_text_only": sum(t > window for t in plain_tokens),
        "max_tokens": max(embedded_tokens, default=0),
        "tokens": sum(embedded_tokens),
        # what the model computes: it truncates every text to its window
        "tokens_embedded": sum(min(t, window) for t in embedded_tokens),
        "import_s": import_s,
        "load_s": load_s,
        "read_s": read_s,
        "run_s": run_s,
        "run_cpu_s": run_cpu_s,
        "persist_s": persist_s,
        "embed_batch_size": EMBED_BATCH,
        "chunk_overlap": CHUNK_OVERLAP,
        "done_at": done_at,
    }


def vectors(sample: Path, model: str) -> dict[str, Any]:
    import numpy as np

    data = json.loads(sample.read_text())
    texts: list[str] = data["texts"]
    ours = np.asarray(data["vectors"], dtype=np.float64)
    theirs = np.asarray(_embedding(model).get_text_embedding_batch(texts), dtype=np.float64)
    norms = np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    cosine = (ours * theirs).sum(axis=1) / norms
    return {
        "texts": len(texts),
        "cosine_min": float(cosine.min()),
        "cosine_mean": float(cosine.mean()),
        "max_abs_diff": float(np.abs(ours - theirs).max()),
        "peer_norm_min": float(np.linalg.norm(theirs, axis=1).min()),
        "peer_norm_max": float(np.linalg.norm(theirs, axis=1).max()),
    }


def main(argv: list[str] | None = None) -> None:
    _offline()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_ingest = sub.add_parser("ingest")
    p_ingest.add_argument("corpus", type=Path)
    p_ingest.add_argument("--persist", type=Path, required=True)
    p_ingest.add_argument("--model", required=True)
    p_ingest.add_argument("--again", action="store_true")
    p_vectors = sub.add_parser("vectors")
    p_vectors.add_argument("--sample", type=Path, required=True)
    p_vectors.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "ingest":
        result = ingest(args.corpus, args.persist, args.model, args.again)
    else:
        result = vectors(args.sample, args.model)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
