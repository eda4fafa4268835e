"""Any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Azure-style proxies, vLLM, LiteLLM, TEI...).

`base_url` is the part before `/embeddings` (e.g. `https://api.openai.com/v1`). Answers are put back in
input order by their `index`, which the protocol does not promise to keep sorted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingestq.pipeline.embed.base import Vector
from ingestq.pipeline.embed.errors import EmbedResponseInvalid
from ingestq.pipeline.embed.http import HttpEmbedder


class OpenAIEmbedder(HttpEmbedder):
    path = "/embeddings"
    kind = "openai"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        request_dimensions: int | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        headers = dict(headers or {})
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        super().__init__(headers=headers, **kwargs)
        self.request_dimensions = request_dimensions

    def request_body(self, texts: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "input": list(texts), "encoding_format": "float"}
        if self.request_dimensions is not None:
            body["dimensions"] = self.request_dimensions
        return body

    def parse_vectors(self, body: Any, count: int) -> list[Vector]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != count:
            got = len(data) if isinstance(data, list) else "no"
            raise EmbedResponseInvalid(f"{self.model_id}: expected {count} embeddings, got {got}")
        try:
            ordered = sorted(data, key=lambda item: int(item["index"]))
            vectors = [[float(x) for x in item["embedding"]] for item in ordered]
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedResponseInvalid(f"{self.model_id}: malformed embeddings list") from exc
        if [int(item["index"]) for item in ordered] != list(range(count)):
            raise EmbedResponseInvalid(f"{self.model_id}: embedding indexes do not cover the inputs")
        return vectors
