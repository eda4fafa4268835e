"""One delivery attempt over HTTP: POST the body to the checked address, read a bounded answer.

The request goes to the address `target.resolve_checked` approved (the name in the Host header and TLS
SNI), redirects are not followed, the whole attempt (resolving included) is bounded by `timeout`, and at
most `max_response_bytes` of the answer are read: a hostile receiver can neither hold a worker's slot
nor fill its memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ingestq.webhooks.target import TargetUnavailable, check_url, resolve_checked

EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class Limits:
    timeout: float = 10.0
    max_response_bytes: int = 64 * 1024
    allow_private: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    retry_after: float | None
    """Seconds, from a Retry-After header (delta or HTTP date); None if absent or unreadable."""
    excerpt: str
    """The start of the body, on one line, for the delivery's last error."""


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


async def post(url: str, headers: dict[str, str], body: bytes, limits: Limits) -> Answer:
    """Send one attempt. Raises TargetRefused (permanent), or TargetUnavailable (retryable) when the name
    does not resolve, the connection fails or no complete answer comes within the time limit."""
    import httpx  # only workers that deliver pay for the import

    target = check_url(url)
    try:
        async with asyncio.timeout(limits.timeout):
            address = await resolve_checked(target, limits.allow_private)
            parsed = httpx.URL(url)
            pinned = parsed.copy_with(host=address)
            host_header = target.host if parsed.port is None else f"{target.host}:{parsed.port}"
            async with httpx.AsyncClient(
                follow_redirects=False, timeout=limits.timeout, trust_env=False
            ) as client:
                request = client.build_request(
                    "POST",
                    pinned,
                    content=body,
                    headers={**headers, "host": host_header},
                    extensions={"sni_hostname": target.host},
                )
                response = await client.send(request, stream=True)
                try:
                    data = await _bounded(response, limits.max_response_bytes)
                finally:
                    await response.aclose()
    except TimeoutError:
        raise TargetUnavailable(
            f"no complete answer from {target.host} within {limits.timeout:g} s"
        ) from None
    except httpx.TransportError as exc:
        raise TargetUnavailable(
            f"{target.host}: {type(exc).__name__}: {str(exc) or 'connection failed'}"
        ) from None
    excerpt = " ".join(data[: EXCERPT_CHARS * 4].decode("utf-8", "replace").split())[:EXCERPT_CHARS]
    retry_after = retry_after_seconds(response.headers.get("retry-after"), datetime.now(UTC))
    return Answer(response.status_code, retry_after, excerpt)


async def _bounded(response: object, max_bytes: int) -> bytes:
    import httpx

    assert isinstance(response, httpx.Response)
    chunks: list[bytes] = []
    total = 0
    async for piece in response.aiter_raw():  # raw: a compressed answer is not inflated
        chunks.append(piece[: max_bytes - total])
        total += len(piece)
        if total >= max_bytes:
            break  # the rest is dropped unread: only the status code counts
    return b"".join(chunks)
