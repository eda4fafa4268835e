"""The Ollama and OpenAI-compatible embedders against a real local HTTP server (http_embed_server)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from http_embed_server import EmbedServer, vector_for

from ingestq.clock import ManualClock
from ingestq.errors import PermanentError, RetryableError
from ingestq.pipeline.embed.errors import (
    EmbedderConfigError,
    EmbedRequestRejected,
    EmbedResponseInvalid,
    EmbedServiceUnavailable,
)
from ingestq.pipeline.embed.http import HttpEmbedder, RetryPolicy, backoff_delay, parse_retry_after
from ingestq.pipeline.embed.ollama import OllamaEmbedder
from ingestq.pipeline.embed.openai import OpenAIEmbedder
from ingestq.pipeline.embed.ratelimit import BucketRateLimiter, MemoryBucketStore, RateLimits, capacity


@pytest.fixture
def server() -> Iterator[EmbedServer]:
    with EmbedServer(dimension=8) as srv:
        yield srv


class Sleeps:
    """Records the pauses the embedder asks for, and takes them shortened (the server is real, the
    backoff arithmetic is checked on the recorded values)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def ollama(server: EmbedServer, sleeps: Sleeps | None = None, **kw: object) -> OllamaEmbedder:
    return OllamaEmbedder(
        base_url=server.url,
        model="nomic-embed-text",
        max_tokens=512,
        sleep=sleeps or Sleeps(),
        **kw,  # type: ignore[arg-type]
    )


def openai(server: EmbedServer, sleeps: Sleeps | None = None, **kw: object) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        base_url=server.url + "/v1",
        model="text-embedding-3-small",
        max_tokens=8191,
        sleep=sleeps or Sleeps(),
        **kw,  # type: ignore[arg-type]
    )


async def test_ollama_embeds_in_order(server: EmbedServer) -> None:
    embedder = ollama(server)
    try:
        vectors = await embedder.embed(["alpha", "beta", "gamma"])
    finally:
        await embedder.aclose()
    assert vectors == [vector_for(t, 8) for t in ["alpha", "beta", "gamma"]]
    assert embedder.dimension == 8
    assert embedder.model_id == "ollama/nomic-embed-text"
    (request,) = server.requests
    assert request.path == "/api/embed"
    assert request.body == {
        "model": "nomic-embed-text",
        "input": ["alpha", "beta", "gamma"],
        "truncate": False,
    }


async def test_openai_sorts_by_index_and_sends_the_key() -> None:
    with EmbedServer(dimension=4, api_key="sk-test", reverse_order=True) as srv:
        embedder = openai(srv, api_key="sk-test", request_dimensions=4)
        try:
            vectors = await embedder.embed(["one", "two", "three"])
        finally:
            await embedder.aclose()
    assert vectors == [vector_for(t, 4) for t in ["one", "two", "three"]]
    assert srv.requests[0].path == "/v1/embeddings"
    assert srv.requests[0].body["dimensions"] == 4
    assert srv.requests[0].headers["authorization"] == "Bearer sk-test"


async def test_wrong_api_key_is_permanent_and_not_retried() -> None:
    with EmbedServer(api_key="right") as srv:
        embedder = openai(srv, api_key="wrong")
        try:
            with pytest.raises(EmbedRequestRejected, match="HTTP 401") as info:
                await embedder.embed(["x"])
        finally:
            await embedder.aclose()
    assert isinstance(info.value, PermanentError)
    assert info.value.status == 401
    assert len(srv.requests) == 1


async def test_429_honours_retry_after_then_succeeds(server: EmbedServer) -> None:
    server.fail_next(2, status=429, retry_after="3")
    sleeps = Sleeps()
    embedder = ollama(server, sleeps)
    try:
        vectors = await embedder.embed(["hello"])
    finally:
        await embedder.aclose()
    assert vectors == [vector_for("hello", 8)]
    assert sleeps.calls == [3.0, 3.0]
    assert len(server.requests) == 3


async def test_5xx_backs_off_exponentially_then_succeeds(server: EmbedServer) -> None:
    server.fail_next(3, status=503)
    sleeps = Sleeps()
    embedder = openai(server, sleeps, retry=RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=30))
    try:
        await embedder.embed(["hello"])
    finally:
        await embedder.aclose()
    assert len(sleeps.calls) == 3
    # full jitter between half and all of 1, 2, 4 seconds
    for pause, ceiling in zip(sleeps.calls, [1.0, 2.0, 4.0], strict=True):
        assert ceiling / 2 <= pause <= ceiling


async def test_exhausted_retries_raise_retryable_with_the_server_hint(server: EmbedServer) -> None:
    server.fail_next(3, status=429, retry_after="7")
    embedder = ollama(server, retry=RetryPolicy(max_attempts=3))
    try:
        with pytest.raises(EmbedServiceUnavailable, match="after 3 attempts") as info:
            await embedder.embed(["x"])
    finally:
        await embedder.aclose()
    assert isinstance(info.value, RetryableError)
    assert info.value.retry_after == 7.0


async def test_long_retry_after_hands_the_wait_to_the_queue(server: EmbedServer) -> None:
    server.fail_next(1, status=429, retry_after="3600")
    sleeps = Sleeps()
    embedder = ollama(server, sleeps)
    try:
        with pytest.raises(EmbedServiceUnavailable) as info:
            await embedder.embed(["x"])
    finally:
        await embedder.aclose()
    assert sleeps.calls == []  # no worker slot held for an hour
    assert info.value.retry_after == 3600.0


async def test_400_is_permanent(server: EmbedServer) -> None:
    server.fail_next(1, status=400, body='{"error": "input length exceeds context length"}')
    embedder = ollama(server)
    try:
        with pytest.raises(EmbedRequestRejected, match="exceeds context length"):
            await embedder.embed(["x"])
    finally:
        await embedder.aclose()
    assert len(server.requests) == 1


async def test_timeout_is_retried(server: EmbedServer) -> None:
    server.fail_next(1, status=200, delay=1.0)
    embedder = ollama(server, timeout=0.2)
    try:
        vectors = await embedder.embed(["slow"])
    finally:
        await embedder.aclose()
    assert vectors == [vector_for("slow", 8)]
    assert len(server.requests) == 2


async def test_unreachable_server_is_retryable() -> None:
    with EmbedServer() as srv:
        url = srv.url
    embedder = OllamaEmbedder(
        base_url=url, model="m", max_tokens=512, retry=RetryPolicy(max_attempts=2), sleep=Sleeps()
    )
    try:
        with pytest.raises(EmbedServiceUnavailable, match="cannot reach"):
            await embedder.embed(["x"])
    finally:
        await embedder.aclose()


async def test_garbage_answer_is_typed(server: EmbedServer) -> None:
    server.fail_next(1, status=200, body='{"embeddings": [[1.0]]}')
    embedder = ollama(server)
    try:
        with pytest.raises(EmbedResponseInvalid, match="expected 2 embeddings, got 1"):
            await embedder.embed(["a", "b"])
    finally:
        await embedder.aclose()


async def test_dimension_change_is_refused(server: EmbedServer) -> None:
    embedder = ollama(server, dimension=16)
    try:
        with pytest.raises(EmbedResponseInvalid, match="8-dimensional vectors, expected 16"):
            await embedder.embed(["a"])
    finally:
        await embedder.aclose()


def test_unknown_dimension_and_bad_url_say_so() -> None:
    with pytest.raises(EmbedderConfigError, match="must start with http"):
        OllamaEmbedder(base_url="localhost:11434", model="m", max_tokens=512)
    embedder = OllamaEmbedder(base_url="http://127.0.0.1:9", model="m", max_tokens=512)
    with pytest.raises(EmbedderConfigError, match="dimension unknown"):
        _ = embedder.dimension


async def test_rate_limiter_paces_requests(server: EmbedServer) -> None:
    sleeps = Sleeps()
    # a clock that stands still: the pacing comes from the limiter alone, not from how fast HTTP is
    limiter = BucketRateLimiter(MemoryBucketStore(ManualClock()), "test", RateLimits(60), sleep=sleeps)
    embedder = ollama(server, rate_limiter=limiter)
    try:
        for _ in range(62):
            await embedder.embed(["x"])
    finally:
        await embedder.aclose()
    # the bucket holds one request; each next one waits one more refill (59 a minute after the first)
    assert sleeps.calls == pytest.approx([k * 60 / 59 for k in range(1, 62)])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("soon", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0


@pytest.mark.parametrize(
    ("attempt", "hint", "jitter", "expected"),
    [
        (1, None, 1.0, 0.5),
        (2, None, 1.0, 1.0),
        (3, None, 0.5, 1.0),
        (10, None, 1.0, 30.0),  # capped
        (1, 12.0, 0.5, 12.0),  # the server's word wins, unjittered
    ],
)
def test_backoff_delay(attempt: int, hint: float | None, jitter: float, expected: float) -> None:
    assert backoff_delay(attempt, RetryPolicy(base_delay=0.5, max_delay=30.0), hint, jitter) == expected


def test_http_embedders_share_one_base() -> None:
    assert issubclass(OllamaEmbedder, HttpEmbedder)
    assert issubclass(OpenAIEmbedder, HttpEmbedder)


async def test_every_retry_takes_its_share_of_the_rate_limit(server: EmbedServer) -> None:
    # The provider counts failed requests too: a limiter taken once per call let the retries of a
    # failing service go past the shared requests-per-minute limit (one take for three requests here).
    store = MemoryBucketStore(ManualClock())
    limiter = BucketRateLimiter(store, "test", RateLimits(requests_per_minute=100), sleep=Sleeps())
    embedder = ollama(server, rate_limiter=limiter)
    server.fail_next(2, status=500)
    try:
        await embedder.embed(["x"])
    finally:
        await embedder.aclose()
    embed_requests = [r for r in server.requests if r.path == "/api/embed"]
    assert len(embed_requests) == 3
    taken = capacity(100) - store._states["test"].requests
    assert taken == pytest.approx(3)
