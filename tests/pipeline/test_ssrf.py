"""SSRF through URL ingestion, against real listeners on loopback: redirects to internal addresses, every
spelling of 127.0.0.1, IPv6 forms that embed an IPv4 address, local names, userinfo and other schemes,
and DNS that answers differently on the second lookup (rebinding).

A "public" server is needed that is in fact local: `allow_networks` (INGESTQ_FETCH_ALLOW_NETWORKS) lets
127.0.0.2 through and nothing else, so the tests also prove that this seam opens exactly what it names.
Every refused URL must be a permanent error, and the trap listeners on 127.0.0.1 and [::1] must see no
connection at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestq.errors import PermanentError
from ingestq.outbound import OutboundPolicy, address_allowed, embedded_ipv4, parse_networks
from ingestq.pipeline.sources import FetchLimits, FetchRefused, fetch_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from traps import PUBLIC_STANDIN, Listener

LIMITS = FetchLimits(timeout=10, allow_networks=parse_networks(f"{PUBLIC_STANDIN}/32"))


@pytest.fixture(scope="module")
def started() -> Iterator[dict[str, Listener]]:
    made = {"public": Listener(PUBLIC_STANDIN), "v4": Listener("127.0.0.1"), "v6": Listener("::1")}
    for listener in made.values():
        listener.start()
    try:
        yield made
    finally:
        for listener in made.values():
            listener.stop()


@pytest.fixture
def listeners(started: dict[str, Listener]) -> dict[str, Listener]:
    for listener in started.values():
        listener.seen.clear()
    return started


def _spellings(port: int) -> list[str]:
    """127.0.0.1 (and this machine) as an attacker writes it."""
    return [
        f"http://127.0.0.1:{port}/",
        f"http://2130706433:{port}/",  # decimal
        f"http://0x7f000001:{port}/",  # hex
        f"http://0x7f.1:{port}/",  # hex, short form
        f"http://0177.0.0.1:{port}/",  # octal
        f"http://127.1:{port}/",  # short form
        f"http://0.0.0.0:{port}/",  # "this host": Linux connects it to loopback
        f"http://localhost:{port}/",
        f"http://localhost.:{port}/",  # trailing dot
        f"http://LocalHost..:{port}/",
        f"http://api.localhost:{port}/",  # RFC 6761: always loopback
        f"http://public.example@127.0.0.1:{port}/",  # userinfo
        f"http://{PUBLIC_STANDIN}@127.0.0.1:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped
        f"http://[::ffff:7f00:1]:{port}/",
        f"http://[::127.0.0.1]:{port}/",  # IPv4-compatible (deprecated)
        f"http://[64:ff9b::127.0.0.1]:{port}/",  # NAT64
        f"http://[64:ff9b:1::7f00:1]:{port}/",  # local-use NAT64
        f"http://[2002:7f00:1::1]:{port}/",  # 6to4 around 127.0.0.1
        f"http://[::1]:{port}/",
        f"http://[::]:{port}/",
    ]


def _refused(*urls: str) -> list[str]:
    """The one-line messages of the permanent errors fetching each of `urls` raises (one event loop)."""

    async def each(url: str) -> str:
        with pytest.raises(PermanentError) as caught:
            await fetch_url(url, LIMITS)
        message = str(caught.value)
        assert "\n" not in message
        return message

    async def every() -> list[str]:
        return [await each(url) for url in urls]

    return asyncio.run(every())


def test_the_public_standin_is_fetched(listeners: dict[str, Listener]) -> None:
    doc = asyncio.run(fetch_url(listeners["public"].base + "/doc.md", LIMITS))
    assert doc.data == f"served by {PUBLIC_STANDIN}".encode()


def test_every_spelling_of_loopback_is_refused_without_a_connection(listeners: dict[str, Listener]) -> None:
    urls = _spellings(listeners["v4"].port) + _spellings(listeners["v6"].port)
    for url, message in zip(urls, _refused(*urls), strict=True):
        assert "refusing to fetch" in message or "invalid URL" in message, (url, message)
        # the answer never tells a client what an internal name resolves to
        assert "resolves to 127" not in message, message
        assert "resolves to ::" not in message, message
    assert listeners["v4"].seen == []
    assert listeners["v6"].seen == []


@pytest.mark.parametrize("scheme", ["file:///etc/passwd", "gopher://127.0.0.1:70/_x", "ftp://example.com/f"])
def test_other_schemes_are_refused(scheme: str) -> None:
    assert "only http and https" in _refused(scheme)[0]


def test_a_redirect_to_an_internal_address_is_refused_at_that_hop(listeners: dict[str, Listener]) -> None:
    public = listeners["public"].base
    targets = [
        *(_spellings(listeners["v4"].port)[:7]),
        f"http://[::1]:{listeners['v6'].port}/",
        f"http://[::ffff:127.0.0.1]:{listeners['v4'].port}/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # the same through NAT64
        "http://[fd00:ec2::254]/latest/meta-data/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
    ]
    for message in _refused(*(f"{public}/to/{target}" for target in targets)):
        assert "refusing to fetch" in message or "only http and https" in message or "invalid URL" in message
    assert [p for p, _ in listeners["public"].seen] == [f"/to/{t}" for t in targets]  # each first hop ran
    assert listeners["v4"].seen == []
    assert listeners["v6"].seen == []


def _name(host: Any) -> Any:
    return host.decode() if isinstance(host, bytes) else host  # httpx's resolver passes IDNA bytes


def test_a_rebinding_name_is_fetched_from_the_address_that_was_checked(
    listeners: dict[str, Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS answers the allowed address first and 127.0.0.1 on every later lookup. The fetch must reach
    the address it checked: were the name looked up again when connecting, 127.0.0.1 would see it."""
    lookups: list[str] = []
    real = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if _name(host) == "rebind.test":
            lookups.append(host)
            host = PUBLIC_STANDIN if len(lookups) == 1 else "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = listeners["public"].port
    trap = Listener("127.0.0.1", port).start()  # the same port: a second lookup would connect here
    try:
        doc = asyncio.run(fetch_url(f"http://rebind.test:{port}/doc.md", LIMITS))
    finally:
        trap.stop()
    assert trap.seen == []
    assert doc.data == f"served by {PUBLIC_STANDIN}".encode()
    assert lookups == ["rebind.test"]  # looked up once: the connection used the checked address
    assert listeners["public"].seen == [("/doc.md", f"rebind.test:{port}")]  # the name still in Host


def test_the_second_answer_of_a_rebinding_name_is_refused_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup that is checked is the one that is used: a fetch that sees 127.0.0.1 stops there."""
    real = socket.getaddrinfo

    def answers(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if _name(host) == "rebind.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", answers)
    with pytest.raises(FetchRefused, match=r"rebind\.test: it resolves to a non-public address"):
        asyncio.run(fetch_url("http://rebind.test/", LIMITS))


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("64:ff9b::8.8.8.8", True),  # NAT64 to a public address: fine
        ("2002:808:808::1", True),
        ("::ffff:127.0.0.1", False),
        ("::127.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),  # 169.254.169.254
        ("64:ff9b::10.0.0.1", False),
        ("64:ff9b:1::a00:1", False),
        ("2002:a9fe:a9fe::1", False),
        ("2002:c0a8:0101::1", False),  # 192.168.1.1
        ("0.0.0.0", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("ff02::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("127.0.0.2", False),  # allowed only when named by allow_networks
    ],
)
def test_the_address_rule(address: str, allowed: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert address_allowed(ip, OutboundPolicy()) is allowed
    if isinstance(ip, ipaddress.IPv6Address) and address.startswith(("64:ff9b::", "2002:", "::")):
        assert embedded_ipv4(ip)


def test_allow_networks_parses_and_names_bad_entries() -> None:
    assert parse_networks(" 10.1.2.3/32, fd00:1::/64 ,") == (
        ipaddress.ip_network("10.1.2.3/32"),
        ipaddress.ip_network("fd00:1::/64"),
    )
    with pytest.raises(Exception, match=r"INGESTQ_FETCH_ALLOW_NETWORKS: '10\.0\.0\.1/8' is not a network"):
        parse_networks("10.0.0.1/8")
