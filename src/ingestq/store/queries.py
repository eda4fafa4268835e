"""Load named SQL queries from a backend's queries.sql.

Format: a header line `-- name: <query_name>` starts a query, the comment lines after it describe it,
and the SQL runs until the next header. Both dialects use the same names, so the two files can be read
side by side.

The files are read straight from the package's folder: every worker loads its backend's queries before
its first claim, and importing `importlib.resources` (with tempfile, shutil, zipfile and the compression
modules behind it) cost more than reading them. A package that is not a folder on disk (imported from a
zip file) is read through `importlib.resources` as before.
"""

from __future__ import annotations

import os
import re
from importlib import import_module

_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$")


def parse_queries(text: str) -> dict[str, str]:
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if name is not None:
            sql = "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip()
            if not sql:
                raise ValueError(f"query {name!r} is empty")
            queries[name] = sql

    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            flush()
            name = match.group(1)
            if name in queries:
                raise ValueError(f"query {name!r} defined twice")
            lines = []
        else:
            lines.append(line)
    flush()
    return queries


def _folder(package: str) -> str | None:
    """The package's folder on disk, or None if it has none (a zip import)."""
    spec = import_module(package).__spec__
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return locations[0] if len(locations) == 1 and os.path.isdir(locations[0]) else None


def _read_text(package: str, *path: str) -> str:
    folder = _folder(package)
    if folder is None:
        from importlib import resources

        return resources.files(package).joinpath(*path).read_text(encoding="utf-8")
    with open(os.path.join(folder, *path), encoding="utf-8") as file:
        return file.read()


def _list_dir(package: str, name: str) -> list[str]:
    folder = _folder(package)
    if folder is None:
        from importlib import resources

        return [entry.name for entry in resources.files(package).joinpath(name).iterdir()]
    return os.listdir(os.path.join(folder, name))


def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    return parse_queries(_read_text(package, filename))


def load_migrations(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for each `NNNN_name.sql` in the package's migrations folder, in order."""
    found: list[tuple[int, str, str]] = []
    for filename in _list_dir(package, "migrations"):
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", filename)
        if match:
            found.append((int(match.group(1)), match.group(2), _read_text(package, "migrations", filename)))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations of {package} are not numbered 1..N: {versions}")
    return found
