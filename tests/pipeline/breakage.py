"""Break a dependency of this machine on purpose, for the tests of `ingestq.errors.Unavailable`: a folder
put first on PYTHONPATH with a package that shadows a real one and fails to import. Parser children and
worker processes are fresh interpreters that inherit the environment, so they see the breakage; deleting
the package mends it (the next child, or the next import attempt, finds the real one again)."""

from __future__ import annotations

import os
from pathlib import Path

LXML_CLEAN = (
    "lxml.html.clean module is now a separate project lxml_html_clean. Install lxml[html_clean] or "
    "lxml_html_clean directly."
)
"""The import error of the incident (trafilatura on lxml 5.2 without lxml_html_clean)."""


def shadow(folder: Path, module: str, message: str) -> Path:
    """Make `import <module>` raise ImportError(message) for processes whose PYTHONPATH starts with
    `folder`. Returns the package folder: delete it to mend."""
    package = folder / module
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(f"raise ImportError({message!r})\n")
    return package


def mend(package: Path) -> None:
    for file in package.iterdir():
        file.unlink()
    package.rmdir()


def pythonpath(folder: Path) -> str:
    """PYTHONPATH with `folder` first, then what this process was given (the worktree's src)."""
    rest = os.environ.get("PYTHONPATH", "")
    return f"{folder}{os.pathsep}{rest}" if rest else str(folder)
