"""Load named SQL queries from a backend's queries.sql.

Format: a header line `-- name: <query_name>` starts a query, the comment lines after it describe it,
and the SQL runs until the next header. Both dialects use the same names, so the two files can be read
side by side.
"""

from __future__ import annotations

import re
from importlib import resources

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


def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    return parse_queries(resources.files(package).joinpath(filename).read_text(encoding="utf-8"))


def load_migrations(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for each `NNNN_name.sql` in the package's migrations folder, in order."""
    folder = resources.files(package).joinpath("migrations")
    found: list[tuple[int, str, str]] = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations of {package} are not numbered 1..N: {versions}")
    return found
