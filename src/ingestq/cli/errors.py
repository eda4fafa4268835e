"""Turn every error a user can cause into one line on stderr and a non-zero exit, in one place.

`GuardedGroup` wraps the whole command tree (the root group's `invoke` runs every subcommand), so no
command handles errors itself. Bugs still show a traceback: only known, user-caused errors are caught.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from .failures import EXIT_ERROR, EXIT_INTERRUPTED, CliError, is_user_error, one_line, report

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "CliError",
    "GuardedGroup",
    "is_user_error",
    "one_line",
    "report",
]


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
