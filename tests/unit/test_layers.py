"""The layering rules of docs/architecture.md, checked on the source: imports flow one way, SQL stays in
the backends."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ingestq"

LEAVES = {
    "ingestq.errors",
    "ingestq.clock",
    "ingestq.settings",
    "ingestq.model.job",
    "ingestq.model.document",
    "ingestq.model.kinds",
    "ingestq.model.webhook",
    "ingestq.pipeline.model",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ingestq module a file imports (absolute or relative), including lazy imports in functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "ingestq" or m.startswith("ingestq.")}


def _files(pattern: str) -> list[Path]:
    return sorted(p for p in SRC.glob(pattern) if p.is_file())


def _within(module: str, prefixes: set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_source_tree_is_present() -> None:
    assert (SRC / "model" / "job.py").is_file()
    assert len(_files("**/*.py")) > 10


@pytest.mark.parametrize("path", _files("pipeline/**/*.py"), ids=lambda p: str(p.relative_to(SRC)))
def test_pipeline_stages_do_not_know_queues(path: Path) -> None:
    if _within(_module_name(path), {"ingestq.pipeline.ingest"}):
        pytest.skip("pipeline/ingest/ is the one bridge between the queue and the pipeline")
    above = {"ingestq.tasks", "ingestq.client", "ingestq.store", "ingestq.worker", "ingestq.runtime"}
    bad = {m for m in _imports(path) if _within(m, above)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _files("store/**/*.py"), ids=lambda p: str(p.relative_to(SRC)))
def test_store_imports_only_leaves(path: Path) -> None:
    allowed_prefixes = LEAVES | {"ingestq.store"}
    bad = {m for m in _imports(path) if m != "ingestq" and not _within(m, allowed_prefixes)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "path",
    [p for p in _files("**/*.py") if not _within(_module_name(p), {"ingestq.store"})],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_only_open_store_names_a_backend(path: Path) -> None:
    bad = {m for m in _imports(path) if _within(m, {"ingestq.store.sqlite", "ingestq.store.postgres"})}
    assert not bad, f"{path.name} imports a concrete backend: {sorted(bad)}"


@pytest.mark.parametrize(
    "path",
    [p for p in _files("**/*.py") if _module_name(p) in LEAVES],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_leaves_import_no_package_module(path: Path) -> None:
    bad = {m for m in _imports(path) if m != "ingestq" and not _within(m, {_module_name(path)})}
    assert not bad, f"leaf {path.name} imports {sorted(bad)}"


_SQL = re.compile(
    r"""["'](\s*)(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b""", re.IGNORECASE
)


@pytest.mark.parametrize(
    "path",
    [p for p in _files("**/*.py") if not _within(_module_name(p), {"ingestq.store"})],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_sql_lives_only_in_the_backends(path: Path) -> None:
    hits = [m.group(0) for m in _SQL.finditer(path.read_text(encoding="utf-8"))]
    assert not hits, f"{path.name} contains SQL {hits}"


# docs/architecture.md's layers, top first: a module may import its own layer and the layers below,
# never one above.
# (Within a layer, the rules above and the cycle check below keep the order.)
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"ingestq.cli", "ingestq.api", "ingestq.benchmark", "ingestq.__main__"}),
    frozenset({"ingestq.runtime"}),
    frozenset({"ingestq.client"}),
    frozenset({"ingestq.worker"}),
    frozenset({"ingestq.pipeline.ingest", "ingestq.webhooks"}),
    frozenset({"ingestq.pipeline", "ingestq.store"}),
    frozenset(
        {"ingestq.tasks", "ingestq.builtin", "ingestq.outbound"}
    ),  # outbound: rules for client-chosen URLs
    frozenset(LEAVES) | {"ingestq.model"},
)


def _layer(module: str) -> int | None:
    """The layer of `module` (the longest matching prefix wins: pipeline.ingest sits above pipeline)."""
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(module, {prefix}) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def test_every_module_has_a_layer() -> None:
    unplaced = [_module_name(p) for p in _files("**/*.py") if _module_name(p) != "ingestq"]
    assert [m for m in unplaced if _layer(m) is None] == []


@pytest.mark.parametrize("path", _files("**/*.py"), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_flow_downward(path: Path) -> None:
    me = _layer(_module_name(path))
    if me is None:
        return  # the package's __init__: lazy public names of every layer
    upward = set()
    for module in _imports(path):
        theirs = _layer(module)
        if theirs is not None and theirs < me:
            upward.add(module)
    assert not upward, f"{path.relative_to(SRC)} imports from a layer above it: {sorted(upward)}"


def test_no_import_cycles() -> None:
    """Between modules, counting deferred and TYPE_CHECKING imports too (a cycle there still ties the
    modules' meanings together)."""
    modules = {_module_name(p): p for p in _files("**/*.py")}
    graph = {
        name: {m for m in _imports(path) if m in modules and m != name and m != "ingestq"}
        for name, path in modules.items()
        if name != "ingestq"
    }
    cycles = _strongly_connected(graph)
    assert cycles == [], f"import cycles: {cycles}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
