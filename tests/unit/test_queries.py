"""The SQL files are read from the package folder, and through importlib.resources when the package has no
folder (a zip import): both give the same queries and migrations."""

from __future__ import annotations

import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from ingestq.store import queries
from ingestq.store.queries import load_migrations, load_queries, parse_queries


@pytest.mark.parametrize("package", ["ingestq.store.sqlite", "ingestq.store.postgres"])
def test_the_folder_read_matches_importlib_resources(package: str) -> None:
    files = resources.files(package)
    assert load_queries(package) == parse_queries(files.joinpath("queries.sql").read_text(encoding="utf-8"))
    expected = sorted(
        (int(entry.name[:4]), entry.name[5:-4], entry.read_text(encoding="utf-8"))
        for entry in files.joinpath("migrations").iterdir()
        if entry.name.endswith(".sql")
    )
    assert load_migrations(package) == expected
    assert [v for v, _, _ in expected] == [1, 2, 3]


def test_a_package_imported_from_a_zip_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped_sql/__init__.py", "")
        zf.writestr("zipped_sql/queries.sql", "-- name: one\n-- what it does\nSELECT 1\n")
        zf.writestr("zipped_sql/migrations/0002_more.sql", "CREATE TABLE b (x);\n")
        zf.writestr("zipped_sql/migrations/0001_init.sql", "CREATE TABLE a (x);\n")
        zf.writestr("zipped_sql/migrations/README", "not a migration\n")
    monkeypatch.syspath_prepend(str(archive))
    monkeypatch.delitem(sys.modules, "zipped_sql", raising=False)
    assert queries._folder("zipped_sql") is None
    assert load_queries("zipped_sql") == {"one": "SELECT 1"}
    assert load_migrations("zipped_sql") == [
        (1, "init", "CREATE TABLE a (x);\n"),
        (2, "more", "CREATE TABLE b (x);\n"),
    ]
