"""One-line reports of the errors a user can cause, shared by the Typer commands (errors.py) and the
worker's fast path, which runs without importing Typer (see cli/worker_run.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

from ingestq.errors import IngestqError
from ingestq.settings import InvalidSetting

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

# Driver errors that reach us unwrapped (e.g. a connection dropped mid-command) are still the
# environment's fault, not a bug: report them on one line as well.
_DRIVER_MODULES = ("psycopg", "psycopg_pool", "apsw")


class CliError(IngestqError):
    """A mistake in the command line itself (bad JSON, conflicting options)."""


def _is_validation_error(exc: BaseException) -> bool:
    # pydantic validates the pipeline's configuration; it is imported only by commands that use it
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(exc, pydantic.ValidationError)


def one_line(exc: BaseException) -> str:
    if _is_validation_error(exc):
        first = exc.errors()[0]  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        return f"invalid setting {where}: {first['msg']}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, IngestqError | InvalidSetting):
        return text
    if isinstance(exc, OSError):
        return text
    return f"{type(exc).__name__}: {text}"


def is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, IngestqError | OSError | InvalidSetting) or _is_validation_error(exc):
        return True
    return type(exc).__module__.split(".")[0] in _DRIVER_MODULES


def echo_err(message: str) -> None:
    # plain text, not Rich: Rich would wrap a long message over several lines
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def report(exc: BaseException) -> None:
    echo_err(f"error: {one_line(exc)}")


def run_guarded(action: Callable[[], None]) -> NoReturn:
    """Run a command outside Click (the worker's fast path) with the same error handling as
    `GuardedGroup.invoke`, then exit with the command's status."""
    try:
        action()
    except KeyboardInterrupt:
        echo_err("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if not is_user_error(exc):
            raise
        report(exc)
        sys.exit(EXIT_ERROR)
    sys.exit(0)
