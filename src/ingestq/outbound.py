"""Which addresses an outbound HTTP request from a worker may reach, and the resolve-then-pin step.

Reusable by anything that contacts a URL chosen by a client (URL ingestion today; webhooks could use
it): `resolve_checked(host, port, policy)` resolves the name once, refuses it unless every address it
resolves to is allowed, and returns the address to connect to. The caller then connects to that very
address (the name goes in `Host` and TLS SNI), so a second DNS answer (rebinding) is never asked for.

An address is allowed when it is public (`is_global`, not multicast) and so is any IPv4 address it
embeds: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
`2002::/16` and Teredo. Python 3.11 calls several of those "global" even when they carry 127.0.0.1 or
169.254.169.254, and a NAT64 or 6to4 gateway would forward them there. The local-use NAT64 prefix
`64:ff9b:1::/48` is refused outright. `OutboundPolicy.allow_networks` lets named networks through (an
intranet host, a test listener) without opening every private range as `allow_private` does.

Refusals never say what a name resolved to: behind the HTTP service that would let a client map
internal DNS through the error message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from ingestq.errors import ConfigError, PermanentError, RetryableError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class OutboundRefused(PermanentError):
    """The destination is an address ingestq will not contact (loopback, private, link-local...)."""


class OutboundUnresolved(RetryableError):
    """The name did not resolve (DNS may answer later)."""


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    allow_private: bool = False
    """Any address at all (tests, intranets): the address check is off."""
    allow_networks: tuple[IPNetwork, ...] = ()
    """These networks are allowed even though they are not public (INGESTQ_FETCH_ALLOW_NETWORKS)."""


def parse_networks(text: str | None, setting: str = "INGESTQ_FETCH_ALLOW_NETWORKS") -> tuple[IPNetwork, ...]:
    """`10.1.2.3/32, fd00::/8` -> networks; a comma-separated list, empty or None for none."""
    found: list[IPNetwork] = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            found.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise ConfigError(f"{setting}: {item!r} is not a network ({exc})") from None
    return tuple(found)


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries by a standard translation (none for IPv4)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):  # not :: or ::1 themselves
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def _public(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast


def address_allowed(ip: IPAddress, policy: OutboundPolicy) -> bool:
    if policy.allow_private:
        return True
    if any(ip in net for net in policy.allow_networks if net.version == ip.version):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip in _NAT64_LOCAL:
        return False
    return _public(ip) and all(_public(v4) for v4 in embedded_ipv4(ip))


def _parse(address: str) -> IPAddress:
    return ipaddress.ip_address(address.split("%", 1)[0])  # a scope id (fe80::1%eth0) is no part of it


def _local_name(host: str) -> bool:
    """`localhost`, `x.localhost` (RFC 6761), with any trailing dots: local whatever DNS says, and
    refused before a lookup, so that a resolver without them cannot turn this into a retried error."""
    name = host.rstrip(".").lower()
    return not name or name == "localhost" or name.endswith(".localhost")


async def resolve_checked(host: str, port: int, policy: OutboundPolicy) -> str:
    """The address to connect to for `host`; refuses a name when any address it resolves to is not
    allowed (an attacker's name may answer with a public and a private one)."""
    if not policy.allow_private and _local_name(host):
        raise OutboundRefused(f"refusing to fetch {host}: a local name")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundUnresolved(f"cannot resolve {host}: {exc.strerror or exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OutboundUnresolved(f"cannot resolve {host}")
    if not all(address_allowed(_parse(a), policy) for a in addresses):
        raise OutboundRefused(
            f"refusing to fetch {host}: it resolves to a non-public address "
            "(INGESTQ_FETCH_ALLOW_NETWORKS or INGESTQ_FETCH_ALLOW_PRIVATE=true would allow it)"
        )
    return addresses[0]
