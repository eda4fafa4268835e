"""Turn every error a user can cause into one line on stderr and a non-zero exit, in one place.

`GuardedGroup` wraps the whole command tree (the root group's `invoke` runs every subcommand), so no
command handles errors itself. Bugs still show a traceback: only known, user-caused errors are caught.
"""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from ingestq.errors import IngestqError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

# Driver errors that reach us unwrapped (e.g. a connection dropped mid-command) are still the
# environment's fault, not a bug: report them on one line as well.
_DRIVER_MODULES = ("psycopg", "psycopg_pool", "apsw")


class CliError(IngestqError):
    """A mistake in the command line itself (bad JSON, conflicting options)."""


def one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        return f"invalid setting {where}: {first['msg']}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, IngestqError):
        return text
    if isinstance(exc, OSError):
        return text
    return f"{type(exc).__name__}: {text}"


def is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, IngestqError | OSError | ValidationError):
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
