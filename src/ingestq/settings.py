"""One typed settings object: the only reader of the environment (`INGESTQ_*` variables).

CLI flags override fields by constructing `Settings(**overrides)`; nothing else reads `os.environ`.

Plain dataclass plus a small validator rather than pydantic-settings: every worker process reads its
settings before its first job, and importing pydantic + pydantic-settings cost more CPU than the rest of
the worker's start-up together (see bench/analysis.md). The rules are pydantic's lax ones: values from
the environment or from keyword arguments are coerced to the field's type (`"10"` -> 10, `"yes"` ->
True), bounds are checked, and the first bad value raises `InvalidSetting` naming the field.

Unknown names are an error, not ignored: a misspelt `Settings(concurency=4)` or `INGESTQ_CONCURENCY=4`
would otherwise run with the default and nobody would notice. The error suggests the closest field name.
One exception: variables under `INGESTQ_TEST_` are reserved for the test suite and CI (e.g.
`INGESTQ_TEST_PG_URL`, the PostgreSQL server the tests use) and are never read as settings, so that a
CI environment with them set can still run `ingestq`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Self

if TYPE_CHECKING:
    from pydantic import SecretStr

DEFAULT_DATABASE_URL = "sqlite:///./.ingestq/ingestq.db"
ENV_PREFIX = "INGESTQ_"
TEST_ENV_PREFIX = "INGESTQ_TEST_"
"""Reserved for the test suite and CI: never read as settings, never an unknown-setting error."""

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class InvalidSetting(ValueError):
    """A setting (environment variable or override) whose value does not fit its field, or whose name
    is not a field. `message` is the whole one-line report (what `str()` gives, what the CLI prints)."""

    def __init__(self, name: str, message: str, *, unknown: bool = False) -> None:
        self.message = message if unknown else f"invalid setting {name}: {message}"
        super().__init__(self.message)
        self.name = name


def _unknown(name: str, *, env: bool = False) -> InvalidSetting:
    """The error for a name that is no field, with the closest field as a suggestion. `env`: the name is
    an environment variable's, and is reported (and matched) as one."""
    import difflib  # only on this error path: it compiles regexes at import, and start-up counts

    # A variable is matched without its prefix (the shared INGESTQ_ would make every name look close),
    # case-insensitively like Settings.__init__, and reported as spelt.
    bare = name[len(ENV_PREFIX) :].lower() if env else name
    close = difflib.get_close_matches(bare, [f.name for f in _FIELDS], n=1)
    suggestion = (ENV_PREFIX + close[0].upper() if env else close[0]) if close else None
    hint = f" (did you mean {suggestion}?)" if suggestion else ""
    return InvalidSetting(name, f"unknown setting {name}{hint}", unknown=True)


def _bounds(*, ge: float | None = None, gt: float | None = None) -> dict[str, Any]:
    return {"ge": ge, "gt": gt}


# init=False: the __init__ below reads the environment; the generated one would be compiled at every
# start-up only to be discarded.
@dataclass(frozen=True, kw_only=True, init=False)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    """`sqlite:///relative/path`, `sqlite:////absolute/path` or `postgresql://...`."""

    auto_migrate: bool = True
    """Apply pending migrations when a command opens the store."""

    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """NORMAL (WAL): survives a process crash, may lose the last commits on power loss. FULL: fsync on
    every commit, survives power loss, slower (see BENCHMARKS.md)."""

    sqlite_busy_timeout_ms: int = field(default=10_000, metadata=_bounds(ge=0))
    pg_pool_max_size: int = field(default=10, metadata=_bounds(ge=1))

    # worker
    concurrency: int = field(default=100, metadata=_bounds(ge=1))
    """Jobs one worker runs at once (asyncio tasks; sync handlers run in threads). It is also the most a
    worker claims per round trip, so it sets the throughput of short jobs. Kinds can have lower caps of
    their own (TaskSpec.concurrency; the ingestion kinds use ingest_concurrency)."""
    poll_interval: float = field(default=1.0, metadata=_bounds(gt=0))
    """Fallback poll period (seconds) when no wake-up arrives."""
    lease_seconds: float = field(default=15.0, metadata=_bounds(gt=0))
    """A job's lease; heartbeats extend it every lease/3. A killed worker's job is rescued after it."""
    shutdown_grace: float = field(default=30.0, metadata=_bounds(ge=0))
    """On SIGTERM/SIGINT, how long in-flight jobs may run before they are released back to the queue."""
    probe_marker_dir: str | None = None
    """Test-only: the directory where `ingestq.probe` jobs may write their `marker` files (a plain file
    name in the payload). Unset (the default): a probe with a marker fails and writes nothing, so that
    whoever enqueues jobs cannot make a worker append to its files (see builtin.py, docs/security.md)."""

    # retention of finished jobs, seconds (0 or less: keep forever)
    retention_succeeded: float = 24 * 3600.0
    retention_failed: float = 7 * 24 * 3600.0
    retention_cancelled: float = 24 * 3600.0
    embed_cache_retention: float = 30 * 24 * 3600.0
    """Seconds an embedding-cache entry is kept after it was written (0 or less: forever). The cache
    spares a re-ingested unchanged chunk its model call; unpruned it keeps a vector for every chunk ever
    embedded, deleted documents included (the one-hour soak measured it growing by every upload)."""

    # ingestion (see pipeline/ingest.py)
    embedder: Literal["local", "ollama", "openai", "fake"] = "local"
    """local: the bundled all-MiniLM-L6-v2 (offline); ollama / openai: an HTTP service; fake: tests."""
    embedder_model: str | None = None
    """The model name for ollama/openai (their defaults otherwise)."""
    embedder_base_url: str | None = None
    embedder_api_key: SecretStr | None = None
    embedder_dimension: int | None = field(default=None, metadata=_bounds(ge=1))
    embedder_timeout: float | None = field(default=None, metadata=_bounds(gt=0))
    """ollama/openai: seconds one HTTP request may take (unset: 60)."""
    embedder_requests_per_minute: float | None = field(default=None, metadata=_bounds(gt=0))
    """ollama/openai: requests per minute, shared by every worker on the database (every HTTP request
    counts, retries included). Unset: no limit."""
    embedder_tokens_per_minute: float | None = field(default=None, metadata=_bounds(gt=0))
    """ollama/openai: tokens per minute, shared like the requests. Unset: no limit."""
    default_collection: str = "default"
    chunk_tokens: int | None = field(default=None, metadata=_bounds(ge=16))
    """Target chunk size in the embedder's tokens; unset fills chunks up to the model's window. A change
    makes the collection's documents stale for `ingestq backfill`."""
    chunk_overlap_tokens: int = field(default=0, metadata=_bounds(ge=0))
    ocr: bool = True
    """OCR image-only PDF pages (needs the `ocr` extra); `ingestq worker --disable-ocr` clears it."""
    ingest_concurrency: int = field(default=64, metadata=_bounds(ge=1))
    """Ingestion jobs one worker runs at once; the rest stay queued for other workers. Nearly all of them
    wait on the model, and the texts they keep pending are what lets the batcher fill each model call with
    texts of similar length (at 10 in flight, ~30 texts, calls cost the model 1.7x the tokens of
    length-sorted ones; at 64, 1.15x). Each may hold a document of up to upload_max_bytes while it waits
    for a parser process or the embedder: lower it for workers that ingest very large files."""
    parser_processes: int = field(default=1, metadata=_bounds(ge=1))
    parse_time_limit: float = field(default=120.0, metadata=_bounds(gt=0))
    upload_max_bytes: int = field(default=100 * 1024**2, metadata=_bounds(ge=1))
    """Largest document accepted from a file, an upload or a URL."""
    fetch_timeout: float = field(default=30.0, metadata=_bounds(gt=0))
    fetch_max_redirects: int = field(default=5, metadata=_bounds(ge=0))
    fetch_allow_private: bool = False
    """Let URL ingestion reach loopback, private and link-local addresses (off: SSRF protection)."""
    fetch_allow_networks: str | None = None
    """Networks URL ingestion may reach although they are not public, comma-separated CIDRs
    (`10.1.2.3/32, fd00:1::/64`): one intranet host without opening every private range."""

    # webhooks (docs/webhooks.md)
    webhook_secret: SecretStr | None = None
    """The signing key of every delivery (Standard Webhooks): `whsec_` + base64 of 24 to 64 random bytes.
    To rotate, give the new and the old secret (space- or comma-separated, up to 4): each delivery is
    signed with each. Unset: callback URLs are refused where they are registered, and a worker fails
    deliveries at once."""
    webhook_allow_private: bool = False
    """Let deliveries reach loopback, private and link-local addresses (off: SSRF protection)."""
    webhook_timeout: float = field(default=10.0, metadata=_bounds(gt=0))
    """Seconds for one delivery attempt, from resolving the name to the end of the answer."""
    webhook_max_response_bytes: int = field(default=64 * 1024, metadata=_bounds(ge=0))
    """Most of a receiver's answer read (the rest is dropped unread; only the status code counts)."""
    webhook_queue: str = "webhooks"
    """The queue of the delivery jobs of URLs registered by this process."""
    webhook_max_attempts: int = field(default=8, metadata=_bounds(ge=1))
    webhook_backoff_base: float = field(default=5.0, metadata=_bounds(gt=0))
    """Seconds before the second attempt; doubles per attempt (with jitter) up to webhook_backoff_max."""
    webhook_backoff_max: float = field(default=3600.0, metadata=_bounds(gt=0))
    """Longest wait between attempts, also the cap on a 429's Retry-After."""

    # HTTP service (`ingestq serve`, ingestq.api)
    api_tokens: SecretStr | None = None
    """Bearer tokens with their roles, `admin:<token>,read:<token>` (each at least 16 characters). Unset:
    the service answers on a loopback address only, and every request is admin."""
    auth_max_failures: int = field(default=10, metadata=_bounds(ge=0))
    """Wrong tokens (dashboard sign-ins, bearer tokens) one client address may present within
    auth_failure_window; past it, every token from that address gets 429 with Retry-After, uncompared.
    0: no limit. Counted per service process. See api/auth_failures.py."""
    auth_failure_window: float = field(default=300.0, metadata=_bounds(gt=0))
    """Seconds over which auth_max_failures counts (a sliding window)."""
    api_json_max_bytes: int = field(default=1024**2, metadata=_bounds(ge=1))
    """Largest request body the service reads for JSON and form routes (413 beyond, before it is read);
    uploads and `POST /v1/documents` have their own cap, upload_max_bytes. See api/limits.py."""
    dashboard_read_only: bool = False
    """The dashboard (`/dashboard`) shows everything but offers and accepts no action, whatever the
    signed-in token's role (a read token is always read-only)."""
    uploads_in_flight: int = field(default=64, metadata=_bounds(ge=0))
    """`POST /v1/documents` requests one service process receives at once; beyond it a new one gets 503
    `busy` with Retry-After before its body is read. Each holds up to 1 MiB of memory while it streams.
    0: no cap. See api/admission.py."""
    sse_max_streams: int = field(default=500, metadata=_bounds(ge=0))
    """Server-Sent Event streams (`/v1/events`, `/v1/jobs/{id}/events`, the dashboard's) one service
    process holds at once; beyond it a new stream gets 503 with Retry-After. Each costs a connection
    and a little memory, not a database connection (one feed per process serves them all)."""
    ingest_path_roots: tuple[str, ...] | None = None
    """The directories path ingestion may read (files under them, after symlinks and `..` are resolved),
    checked where a document is registered and again where a worker reads it. Unset (the default for the
    library and the CLI): any path the process can read, as a laptop user expects of `ingestq ingest
    ./docs`. Empty (`INGESTQ_INGEST_PATH_ROOTS=`): no path ingestion at all, uploads and URLs only. The
    variable separates directories with `os.pathsep` (`:`; `;` on Windows). Give absolute directories: a
    relative one is resolved against each process's own working directory. See docs/security.md."""

    def __init__(self, **overrides: Any) -> None:
        """Defaults, then `INGESTQ_*` environment variables (names are case-insensitive), then
        `overrides`. An unknown name, keyword or `INGESTQ_*` variable (except the reserved
        `INGESTQ_TEST_*`), raises InvalidSetting."""
        for name in overrides:
            if name not in _BY_NAME:
                raise _unknown(name)
        env = _environment(os.environ)
        for f in _FIELDS:
            if f.name in overrides:
                value = _coerce(f, overrides[f.name])
            elif f.name in env:
                value = _coerce(f, env[f.name])
            else:
                value = f.default
            object.__setattr__(self, f.name, value)

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        """A copy with `update` applied (validated like overrides; the environment is not read again)."""
        copy = object.__new__(type(self))  # not dataclasses.replace: __init__ would read the environment
        copy.__dict__.update(self.__dict__)
        for name, value in (update or {}).items():
            if name not in _BY_NAME:
                raise _unknown(name)
            object.__setattr__(copy, name, _coerce(_BY_NAME[name], value))
        return copy


def _environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The `INGESTQ_*` variables by field name; an unknown one raises InvalidSetting."""
    prefix = len(ENV_PREFIX)
    found: dict[str, str] = {}
    for key, value in environ.items():
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(TEST_ENV_PREFIX):
            continue
        name = key[prefix:].lower()
        if name not in _BY_NAME:
            raise _unknown(key, env=True)
        found[name] = value
    return found


_FIELDS = dataclasses.fields(Settings)
_BY_NAME = {f.name: f for f in _FIELDS}


class _Secret:
    """Stands for pydantic's SecretStr while the annotations are resolved (without importing pydantic)."""


_HINTS = typing.get_type_hints(Settings, globalns={**vars(sys.modules[__name__]), "SecretStr": _Secret})


def _coerce(f: dataclasses.Field[Any], value: Any) -> Any:
    hint = _HINTS[f.name]
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if type(None) in options:
        if value is None:
            return None
        options = tuple(o for o in options if o is not type(None))
    (kind,) = options
    try:
        result = _convert(kind, value)
    except (TypeError, ValueError) as exc:
        raise InvalidSetting(f.name, str(exc)) from None
    ge, gt = f.metadata.get("ge"), f.metadata.get("gt")
    if ge is not None and not result >= ge:
        raise InvalidSetting(f.name, f"must be greater than or equal to {ge}, got {value!r}")
    if gt is not None and not result > gt:
        raise InvalidSetting(f.name, f"must be greater than {gt}, got {value!r}")
    return result


def _convert(kind: Any, value: Any) -> Any:
    if typing.get_origin(kind) is Literal:
        allowed = typing.get_args(kind)
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    convert = _CONVERTERS.get(kind)
    if convert is None:
        raise TypeError(f"unsupported setting type {kind!r}")  # a new field needs a converter here
    return convert(value)


def _secret(value: Any) -> SecretStr:
    from pydantic import SecretStr  # only when a key is configured: pydantic is slow to import

    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return SecretStr(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"must be an integer, got {value!r}")


def _float(value: Any) -> float:
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        result = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise ValueError(f"must be a number, got {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"must be a finite number, got {value!r}")
    return result


def _paths(value: Any) -> tuple[str, ...]:
    # A variable holds a list the way PATH does; a keyword may also give a sequence of str or Path.
    if isinstance(value, str):
        items: list[Any] = value.split(os.pathsep)
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"must be directories separated by {os.pathsep!r} or a list, got {value!r}")
    try:
        paths = [os.fspath(item) for item in items]
    except TypeError:
        raise ValueError(f"must be a list of paths, got {value!r}") from None
    if not all(isinstance(p, str) for p in paths):
        raise ValueError(f"must be a list of paths, got {value!r}")
    return tuple(p for p in paths if p.strip())  # "a::b" or a trailing separator add no root


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    return value


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    _Secret: _secret,
    bool: _bool,
    int: _int,
    float: _float,
    str: _str,
    tuple[str, ...]: _paths,
}
