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

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ingestq.errors import PermanentError, RetryableError

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


def _allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve_checked(target: Target, allow_private: bool) -> str:
    """The one address to connect to, or TargetRefused if any address of the name is not public (unless
    `allow_private`), or TargetUnavailable if the name does not resolve."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise TargetUnavailable(f"cannot resolve {target.host}: {exc.strerror or exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TargetUnavailable(f"cannot resolve {target.host}")
    if not allow_private:
        for address in addresses:
            if not _allowed(ipaddress.ip_address(address.split("%", 1)[0])):
                raise TargetRefused(
                    f"refusing to deliver to {target.host}: it resolves to {address}, a non-public address "
                    "(set INGESTQ_WEBHOOK_ALLOW_PRIVATE=true to allow)"
                )
    return addresses[0]
