"""Where documents come from: a file, a directory (recursive, include/exclude globs), uploaded bytes, a URL.

Every source ends as a `SourceDocument` (bytes + a name hint + the source string), bounded in size.

Paths are risky when whoever names them is not whoever runs the worker (a client of the HTTP API): a
path is the worker's whole filesystem. `roots` (Settings.ingest_path_roots) confines them: a path is
resolved first (symlinks and `..` followed, with `Path.resolve`), then must lie under a resolved root.
The check runs where documents are registered (`expand_paths`) and again where a worker reads one
(`read_file`), since a document row may come from an older client, a reprocess or another
configuration. A refused path is a PermanentError (never retried) whose message names the path as given,
not what it resolves to, and says nothing about whether it exists. See docs/security.md.

URL fetching is the risky one: a URL given by a user must not reach the worker's own network (cloud
metadata at 169.254.169.254, a database on 127.0.0.1, anything on 10/8). So every hop is resolved
here, each resolved address is checked, and the request is sent to that checked address (the name
goes in the Host header and TLS SNI): a DNS answer that changes between the check and the connection
(rebinding) cannot slip through. Redirects are followed by hand, each hop checked the same way. The
address rules (embedded IPv4 in IPv6 forms, allowed networks) live in `ingestq/outbound.py`.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ingestq.errors import PermanentError, RetryableError
from ingestq.outbound import (
    IPNetwork,
    OutboundPolicy,
    OutboundRefused,
    OutboundUnresolved,
)
from ingestq.outbound import resolve_checked as _resolve_checked
from ingestq.pipeline.model import SourceDocument

if TYPE_CHECKING:
    import httpx

_REDIRECTS = {301, 302, 303, 307, 308}


class SourceError(PermanentError):
    """The source cannot be read, and reading it again will not help."""


class SourceTooLarge(SourceError):
    pass


class PathRefused(SourceError):
    """The path is outside the directories path ingestion may read (Settings.ingest_path_roots)."""


class FetchRefused(SourceError, OutboundRefused):
    """The URL points at an address ingestq will not contact (loopback, private, link-local...)."""


class FetchUnavailable(RetryableError):
    """The server could not be reached or answered 5xx/429: worth another attempt later."""


@dataclass(frozen=True, slots=True)
class FetchLimits:
    max_bytes: int = 100 * 1024**2
    timeout: float = 30.0
    """Seconds for the whole fetch, redirects included."""
    max_redirects: int = 5
    allow_private: bool = False
    """Allow loopback, private, link-local and other non-public addresses (tests, intranets)."""
    allow_networks: tuple[IPNetwork, ...] = ()
    """Allow these networks only, even though they are not public (INGESTQ_FETCH_ALLOW_NETWORKS)."""

    @property
    def policy(self) -> OutboundPolicy:
        return OutboundPolicy(self.allow_private, self.allow_networks)


def _size(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB" if n >= 1024**2 else f"{n} bytes"


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


# --- files and directories ------------------------------------------------------------------------


def check_path(path: str | Path, roots: Sequence[str] | None) -> Path:
    """`path` resolved (symlinks and `..` followed), or PathRefused unless it lies under one of `roots`
    (resolved the same way). `roots` None: no restriction (the path comes back as given)."""
    if roots is None:
        return Path(path)
    if not roots:
        raise PathRefused(f"{path}: path ingestion is disabled here (INGESTQ_INGEST_PATH_ROOTS is empty)")
    # resolve, not the strict kind: a missing file is refused like an existing one, so the answer tells
    # nothing about what exists outside the roots
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        if resolved.is_relative_to(Path(root).expanduser().resolve()):
            return resolved
    raise PathRefused(f"{path}: outside the directories ingestion may read (INGESTQ_INGEST_PATH_ROOTS)")


def read_file(path: str | Path, max_bytes: int, roots: Sequence[str] | None = None) -> SourceDocument:
    """The file's bytes, bounded by `max_bytes`; a path outside `roots` (when given) is refused before
    anything is read (see check_path)."""
    # the resolved path is what is opened: a symlink swapped in after the check cannot redirect it
    # (a directory swapped in above it can, which only whoever writes inside a root can do)
    p = check_path(path, roots)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise SourceError(f"{p}: not a regular file")
        if size > max_bytes:
            raise SourceTooLarge(f"{p}: file is {_size(size)}, over the {_size(max_bytes)} limit")
        with p.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise SourceError(f"{p}: no such file") from None
    except PermissionError:
        raise SourceError(f"{p}: permission denied") from None
    except IsADirectoryError:
        raise SourceError(f"{p}: is a directory") from None
    except OSError as exc:
        raise SourceError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:  # grew since stat
        raise SourceTooLarge(f"{p}: file is over the {_size(max_bytes)} limit")
    return SourceDocument(data=data, name=p.name, source=str(Path(path)))  # as given, not as resolved


def _matches(relative: str, patterns: Sequence[str]) -> bool:
    name = PurePosixPath(relative).name
    return any(fnmatch.fnmatch(relative, pat) or fnmatch.fnmatch(name, pat) for pat in patterns)


def expand_paths(
    paths: Iterable[str | Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    roots: Sequence[str] | None = None,
) -> list[Path]:
    """Files named directly, plus every file under each directory (recursive, sorted, hidden entries
    skipped). Globs match the path relative to its directory, or the file name alone: `*.md`,
    `guides/*`. Include filters directory contents only: a file named explicitly is always kept.
    With `roots`, each path is checked before it is looked at, and each file found (resolved) again:
    a symlink inside a root that leads out of it is refused, not skipped."""
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        check_path(raw, roots)  # before exists(): a refusal must not reveal what exists outside
        root = Path(raw).expanduser()
        if not root.exists():
            raise SourceError(f"{root}: no such file or directory")
        if root.is_file():
            candidates = [(root, root.name, False)]
        else:
            candidates = [
                (p, p.relative_to(root).as_posix(), True)
                for p in sorted(root.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
            ]
        for path, relative, from_dir in candidates:
            if from_dir and include and not _matches(relative, include):
                continue
            if exclude and _matches(relative, exclude):
                continue
            resolved = path.resolve()
            if from_dir:  # a file named directly was checked above
                check_path(path, roots)
            if resolved not in seen:
                seen.add(resolved)
                found.append(resolved)
    return found


def from_bytes(data: bytes, name: str, max_bytes: int, source: str = "") -> SourceDocument:
    if len(data) > max_bytes:
        raise SourceTooLarge(f"{name or 'upload'}: {_size(len(data))}, over the {_size(max_bytes)} limit")
    return SourceDocument(data=data, name=name, source=source or f"upload:{name}")


# --- URLs -------------------------------------------------------------------------------------------


async def resolve_checked(host: str, port: int, policy: OutboundPolicy) -> str:
    """The checked address to connect to for `host` (see ingestq/outbound.py), with this module's
    errors: FetchRefused (permanent) or FetchUnavailable (DNS may answer later)."""
    try:
        return await _resolve_checked(host, port, policy)
    except OutboundRefused as exc:
        raise FetchRefused(str(exc)) from None
    except OutboundUnresolved as exc:
        raise FetchUnavailable(str(exc)) from None


def _name_of(url: str) -> str:
    path = PurePosixPath(unquote(url.split("?", 1)[0].split("#", 1)[0]))
    return path.name if path.name and "." in path.name else ""


async def fetch_url(url: str, limits: FetchLimits) -> SourceDocument:
    import httpx  # only workers that fetch URLs pay for the import

    try:
        async with asyncio.timeout(limits.timeout):
            async with httpx.AsyncClient(follow_redirects=False, timeout=limits.timeout) as client:
                return await _fetch(client, url, limits)
    except TimeoutError:
        raise FetchUnavailable(f"{url}: no complete answer within {limits.timeout:g} s") from None
    except httpx.InvalidURL as exc:
        raise SourceError(f"{url}: invalid URL ({exc})") from None
    except httpx.TransportError as exc:
        raise FetchUnavailable(f"{url}: {type(exc).__name__}: {exc or 'connection failed'}") from None


async def _fetch(client: httpx.AsyncClient, url: str, limits: FetchLimits) -> SourceDocument:
    import httpx

    current = httpx.URL(url)
    for _hop in range(limits.max_redirects + 1):
        if current.scheme not in ("http", "https") or not current.host:
            raise SourceError(f"{current}: only http and https URLs can be fetched")
        port = current.port or (443 if current.scheme == "https" else 80)
        address = await resolve_checked(current.host, port, limits.policy)
        pinned = current.copy_with(host=address)
        host_header = current.host if current.port is None else f"{current.host}:{current.port}"
        request = client.build_request(
            "GET",
            pinned,
            headers={"Host": host_header, "User-Agent": "ingestq"},
            extensions={"sni_hostname": current.host},
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.RemoteProtocolError as exc:
            # httpx parses a redirect's Location even when it does not follow it; a Location it cannot
            # parse (`http://0177.0.0.1/`) is the server's answer, and asking again will not change it
            if "location header" not in str(exc).lower():
                raise
            raise SourceError(f"{current}: redirects to an invalid URL") from None
        try:
            if response.status_code in _REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise SourceError(f"{current}: redirect without a Location")
                current = current.join(location)
                continue
            return await _body(response, str(current), limits)
        finally:
            await response.aclose()
    raise SourceError(f"{url}: more than {limits.max_redirects} redirects")


async def _body(response: httpx.Response, url: str, limits: FetchLimits) -> SourceDocument:
    status = response.status_code
    if status == 429 or status >= 500:
        raise FetchUnavailable(f"{url}: server answered {status}")
    if status >= 400:
        raise SourceError(f"{url}: server answered {status}")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise SourceTooLarge(f"{url}: {_size(int(declared))}, over the {_size(limits.max_bytes)} limit")
    chunks: list[bytes] = []
    total = 0
    # decoded bytes: a gzip bomb counts at its real size
    async for piece in response.aiter_bytes():
        total += len(piece)
        if total > limits.max_bytes:
            raise SourceTooLarge(f"{url}: more than the {_size(limits.max_bytes)} limit")
        chunks.append(piece)
    return SourceDocument(data=b"".join(chunks), name=_name_of(url), source=url)
