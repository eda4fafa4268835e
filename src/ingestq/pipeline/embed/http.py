"""What the HTTP embedders share: one httpx client, timeouts, typed errors, and retries.

429, 408 and 5xx answers and transport failures (refused, reset, timed out) are retried in the call
with exponential backoff, honouring the server's Retry-After; each request, retries included, first
takes its share of the rate limits. When the server asks for a longer pause
than the call is allowed to wait (`max_retry_wait`), or the attempts run out, the call raises
`EmbedServiceUnavailable` carrying that hint, so the job is rescheduled instead of holding a worker
slot. Any other 4xx is the request's own fault and raises `EmbedRequestRejected` at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ingestq.pipeline.embed.base import Embedder, Vector
from ingestq.pipeline.embed.errors import (
    EmbedderConfigError,
    EmbedRequestRejected,
    EmbedResponseInvalid,
    EmbedServiceUnavailable,
)
from ingestq.pipeline.embed.ratelimit import NoRateLimit, RateLimiter
from ingestq.pipeline.embed.tokenizer import EstimatingTokenizer, HuggingFaceTokenizer, Tokenizer

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_wait: float = 60.0
    """Longest single pause taken inside a call; a longer Retry-After ends the call (retryable)."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(attempt: int, policy: RetryPolicy, retry_after: float | None, jitter: float = 1.0) -> float:
    """Pause before retry number `attempt` (1-based): the server's Retry-After when given, else
    `base * 2**(attempt-1)` scaled by `jitter` (0..1, full jitter) and capped at `max_delay`."""
    if retry_after is not None:
        return retry_after
    return float(min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1)) * jitter)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HttpEmbedder(Embedder):
    """Base of the remote embedders: subclasses build the request body and read the answer."""

    path: str
    kind: str

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        max_tokens: int,
        dimension: int | None = None,
        tokenizer_path: str | None = None,
        batch_size: int = 64,
        max_batch_tokens: int | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise EmbedderConfigError(
                f"{self.kind} base_url must start with http:// or https://: {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = f"{self.kind}/{model}"
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self._dimension = dimension
        self._tokenizer: Tokenizer = (
            HuggingFaceTokenizer(tokenizer_path) if tokenizer_path else EstimatingTokenizer()
        )
        self.retry = retry or RetryPolicy()
        self.rate_limiter: RateLimiter = rate_limiter or NoRateLimit()
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers=headers or {},
            follow_redirects=False,
        )

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise EmbedderConfigError(
                f"{self.model_id}: dimension unknown until the first call (set `dimension` in the config)"
            )
        return self._dimension

    async def aclose(self) -> None:
        await self._client.aclose()

    def request_body(self, texts: Sequence[str]) -> dict[str, Any]:
        raise NotImplementedError

    def parse_vectors(self, body: Any, count: int) -> list[Vector]:
        raise NotImplementedError

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        tokens = sum(self._tokenizer.count_tokens_batch(texts))
        body = await self._post(self.request_body(texts), tokens)
        vectors = self.parse_vectors(body, len(texts))
        self._check_dimension(vectors)
        return vectors

    def _check_dimension(self, vectors: list[Vector]) -> None:
        sizes = {len(v) for v in vectors}
        if len(sizes) != 1:
            raise EmbedResponseInvalid(f"{self.model_id} returned vectors of mixed sizes {sorted(sizes)}")
        size = sizes.pop()
        if self._dimension is None:
            self._dimension = size
        elif size != self._dimension:
            raise EmbedResponseInvalid(
                f"{self.model_id} returned {size}-dimensional vectors, expected {self._dimension}"
            )

    async def _post(self, payload: dict[str, Any], tokens: int) -> Any:
        last = "no attempt made"
        hint: float | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            # every request counts against the limits, retries included: the provider counts them too
            await self.rate_limiter.acquire(requests=1, tokens=tokens)
            try:
                response = await self._client.post(self.path, json=payload)
            except httpx.TimeoutException:
                last, hint = f"{self.model_id}: timed out", None
            except httpx.TransportError as exc:
                last, hint = f"{self.model_id}: cannot reach {self.base_url}: {type(exc).__name__}", None
            else:
                status = response.status_code
                if status < 300:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise EmbedResponseInvalid(f"{self.model_id}: answer is not JSON") from exc
                message = f"{self.model_id}: HTTP {status}: {_short(response.text)}"
                if status not in RETRYABLE_STATUS:
                    raise EmbedRequestRejected(message, status=status)
                last, hint = message, parse_retry_after(response.headers.get("retry-after"))
            if attempt == self.retry.max_attempts:
                break
            delay = backoff_delay(attempt, self.retry, hint, jitter=random.uniform(0.5, 1.0))
            if delay > self.retry.max_retry_wait:
                raise EmbedServiceUnavailable(f"{last} (asked to wait {delay:.0f} s)", retry_after=delay)
            await self._sleep(delay)
        raise EmbedServiceUnavailable(f"{last} (after {self.retry.max_attempts} attempts)", retry_after=hint)
