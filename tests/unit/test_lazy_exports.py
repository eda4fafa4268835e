"""Names re-exported on first use (PEP 562) resolve to the same objects as the modules that define them, so
`from ingestq import Client`, `ingestq.task` and `from ingestq import *` work as when they were eager."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ingestq
from ingestq.store import base
from ingestq.tasks.periodic import Periodic

INIT = Path(ingestq.__file__)


def _type_checking_imports(path: Path) -> dict[str, str]:
    """name -> module for every `from module import name` under `if TYPE_CHECKING:` in `path`."""
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                assert stmt.module is not None
                found.update((alias.name, stmt.module) for alias in stmt.names)
    return found


@pytest.mark.parametrize("name", [n for n in ingestq.__all__ if n != "__version__"])
def test_every_public_name_is_the_defining_modules_object(name: str) -> None:
    module = importlib.import_module(ingestq._LAZY[name])
    assert getattr(ingestq, name) is getattr(module, name)


def test_the_lazy_table_matches_the_imports_type_checkers_see() -> None:
    assert _type_checking_imports(INIT) == ingestq._LAZY
    assert set(ingestq.__all__) == {*ingestq._LAZY, "__version__"}


def test_star_import_dir_and_unknown_names() -> None:
    namespace: dict[str, object] = {}
    exec("from ingestq import *", namespace)
    assert set(ingestq.__all__) <= set(namespace)
    assert set(ingestq.__all__) <= set(dir(ingestq))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = ingestq.no_such_name  # type: ignore[attr-defined]


def test_store_and_worker_reexports() -> None:
    from ingestq.store import Backend, IndexStore, Store
    from ingestq.worker import Periodic as WorkerPeriodic
    from ingestq.worker.periodic import Periodic as SchedulerPeriodic

    assert (Store, IndexStore, Backend) == (base.Store, base.IndexStore, base.Backend)
    assert WorkerPeriodic is Periodic
    assert SchedulerPeriodic is Periodic
    with pytest.raises(AttributeError):
        importlib.import_module("ingestq.store").Nope  # noqa: B018
    with pytest.raises(AttributeError):
        importlib.import_module("ingestq.worker.periodic").Nope  # noqa: B018


def test_importing_the_package_loads_none_of_its_modules() -> None:
    code = "import json, sys, ingestq; print(json.dumps(sorted(m for m in sys.modules if 'ingestq' in m)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["ingestq"]
