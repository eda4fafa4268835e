"""Turn every error a user can cause into one line on stderr and a non-zero exit, in one place.

`GuardedGroup` wraps the whole command tree (the root group's `invoke` runs every subcommand), so no
command handles errors itself. Bugs still show a traceback: only known, user-caused errors are caught.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

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


def report(exc: BaseException) -> None:
    # typer.echo, not Rich: Rich would wrap a long message over several lines.
    typer.echo(f"error: {one_line(exc)}", err=True)


def _usage_exit(exc: typer.TyperException) -> BaseException:
    # Usage errors (unknown option, bad value, missing argument) get the same one-line treatment, with
    # the exit code Click gives them (2), instead of a multi-line box.
    message = " ".join(exc.format_message().split())
    if not message:  # "no arguments: show the help", which Click does itself
        return exc
    typer.echo(f"error: {message} (see --help)", err=True)
    return typer.Exit(getattr(exc, "exit_code", EXIT_ERROR))


def run_guarded(action: Callable[[], None]) -> NoReturn:
    """Run a command outside Click (the worker's fast path) with the same error handling as
    `GuardedGroup.invoke`, then exit with the command's status."""
    try:
        action()
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if not is_user_error(exc):
            raise
        report(exc)
        sys.exit(EXIT_ERROR)
    sys.exit(0)


class GuardedGroup(TyperGroup):
    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        # The root's own options are parsed here, before `invoke`.
        try:
            return super().make_context(*args, **kwargs)
        except typer.TyperException as exc:
            raise _usage_exit(exc) from None

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context type is private
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as exc:
            raise _usage_exit(exc) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if not is_user_error(exc):
                raise
            report(exc)
            raise typer.Exit(EXIT_ERROR) from None
