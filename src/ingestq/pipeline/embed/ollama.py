"""Ollama's `/api/embed` (batch input; `truncate: false` so an over-long input is an error, not a
silently shortened vector — the chunker already keeps every text inside the window)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingestq.pipeline.embed.base import Vector
from ingestq.pipeline.embed.errors import EmbedResponseInvalid
from ingestq.pipeline.embed.http import HttpEmbedder


class OllamaEmbedder(HttpEmbedder):
    path = "/api/embed"
    kind = "ollama"

    def __init__(self, *, truncate: bool = False, keep_alive: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.truncate = truncate
        self.keep_alive = keep_alive

    def request_body(self, texts: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "input": list(texts), "truncate": self.truncate}
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        return body

    def parse_vectors(self, body: Any, count: int) -> list[Vector]:
        vectors = body.get("embeddings") if isinstance(body, dict) else None
        if not isinstance(vectors, list) or len(vectors) != count:
            got = len(vectors) if isinstance(vectors, list) else "no"
            raise EmbedResponseInvalid(f"{self.model_id}: expected {count} embeddings, got {got}")
        return [[float(x) for x in v] for v in vectors]
