"""Where a delivery may go: the SSRF guard for callback URLs.

A callback URL comes from whoever may call the API, and the worker that delivers sits inside the
deployment's network: without a guard, a callback to http://169.254.169.254/ or http://10.0.0.5:5432/ turns
every worker into a probe of that network. So the name is resolved here, every address it resolves to
is checked (an attacker's name may answer with a public and a private one), and the request is sent to
the checked address itself, with the name in the Host header and TLS SNI: a second lookup, which a
rebinding DNS server could answer differently, never happens. Redirects are not followed at all.
`webhook_allow_private` (INGESTQ_WEBHOOK_ALLOW_PRIVATE) lifts the address check, for tests and intranets.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ingestq import outbound
from ingestq.errors import PermanentError, RetryableError
from ingestq.outbound import OutboundPolicy, OutboundRefused, OutboundUnresolved

MAX_URL_LENGTH = 2048


class TargetRefused(PermanentError):
    """The callback URL is malformed or points at an address deliveries may not reach."""


class TargetUnavailable(RetryableError):
    """The name did not resolve (now): worth another attempt."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int


def check_url(url: str) -> Target:
    """The URL's parts, or TargetRefused (one line) unless it is an absolute http(s) URL with a host and
    no credentials. Runs where a URL is registered and again before each attempt."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"callback URL longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise TargetRefused("callback URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"callback URL {url!r} is invalid: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"callback URL {url!r} must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused(f"callback URL {url!r} must not carry credentials (sign deliveries instead)")
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))


async def resolve_checked(target: Target, allow_private: bool) -> str:
    """The one address to connect to, or TargetRefused if the name is local or any address it resolves
    to is not public (unless `allow_private`), or TargetUnavailable if it does not resolve. The rules are
    URL ingestion's (ingestq/outbound.py: embedded IPv4, NAT64, 6to4, local names); the refusal does not
    say what the name resolved to (a client could map internal DNS with it)."""
    try:
        return await outbound.resolve_checked(target.host, target.port, OutboundPolicy(allow_private))
    except OutboundUnresolved as exc:
        raise TargetUnavailable(str(exc)) from None
    except OutboundRefused:
        raise TargetRefused(
            f"refusing to deliver to {target.host}: a local name or a non-public address "
            "(set INGESTQ_WEBHOOK_ALLOW_PRIVATE=true to allow)"
        ) from None
