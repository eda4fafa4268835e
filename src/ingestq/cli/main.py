"""The `ingestq` entry point. A usual `ingestq [--db URL] [--no-migrate] worker [options]` runs without
building the Typer command tree (worker start-up counts, see cli/worker_run.py); everything else, and
any worker command line out of the ordinary, goes to the Typer app in cli/app.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from .common import settings_from_flags


def fast_worker(argv: Sequence[str]) -> Callable[[], None] | None:
    """`ingestq [--db URL] [--no-migrate] worker [options]` parsed without building the Typer command
    (see cli/worker_run.py): the call that runs it, or None to let Typer parse `argv`."""
    db: str | None = None
    no_migrate = False
    i = 0
    while i < len(argv) and argv[i] != "worker":
        arg = argv[i]
        if arg == "--no-migrate":
            no_migrate = True
        elif arg == "--db" and i + 1 < len(argv):
            i += 1
            db = argv[i]
        elif arg.startswith("--db="):
            db = arg.removeprefix("--db=")
        else:
            return None
        i += 1
    if i == len(argv):
        return None
    from . import worker_run
    from .failures import run_guarded

    options = worker_run.parse_fast(argv[i + 1 :])
    if options is None:
        return None

    def run() -> None:
        run_guarded(lambda: worker_run.run_worker(settings_from_flags(db, no_migrate), options))

    return run


def main() -> None:
    fast = fast_worker(sys.argv[1:])
    if fast is not None:
        fast()
        return
    from .app import app

    app(prog_name="ingestq")


def __getattr__(name: str) -> Any:
    # `from ingestq.cli.main import app` (tests, embedding) still works, building the tree on use
    if name == "app":
        from .app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
