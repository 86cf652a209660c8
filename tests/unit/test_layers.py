"""The import contract: layers imported only downwards, no cycles, ops/ never imports tests/.

Every ``import`` in every module counts, also those inside functions (a cycle hidden there
is still a cycle). The layers, top to bottom (packages on one line are independent: neither
imports the other):

    app.cli
    app.main                       wiring only
    agents | app.operations
    app.ingress
    app.streaming | app.clients
    app.domain
    app.core
    tables                         imports nothing of the service
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from ops.testkit.support import ROOT

LAYERS: list[tuple[str, ...]] = [
    ("app.cli",),
    ("app.main",),
    ("agents", "app.operations"),
    ("app.ingress",),
    ("app.streaming", "app.clients"),
    ("app.domain",),
    ("app.core",),
    ("tables",),
]
PREFIX = "realgeeks_sync."


def _module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    name = ".".join(parts)
    return name if name.startswith(("ops", "tests")) else PREFIX + name


def _files(*folders: str) -> list[Path]:
    return [
        p
        for folder in folders
        for p in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in p.parts
    ]


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_of(p): p for p in _files("app", "agents", "tables", "ops", "tests")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path, name) if m in modules}
    return graph


def _layer_of(module: str) -> tuple[int, str] | None:
    short = module.removeprefix(PREFIX)
    for level, names in enumerate(LAYERS):
        for name in names:
            if short == name or short.startswith(name + "."):
                return level, name
    return None


def test_layers_are_imported_only_downwards_and_siblings_stay_apart() -> None:
    problems = []
    for module, targets in _graph().items():
        mine = _layer_of(module)
        if mine is None:
            continue
        for target in targets:
            theirs = _layer_of(target)
            if theirs is None or theirs[1] == mine[1]:
                continue
            if theirs[0] < mine[0]:
                problems.append(f"{module} imports {target} (a layer above)")
            elif theirs[0] == mine[0]:
                problems.append(f"{module} imports {target} (an independent sibling)")
    assert not problems, "\n".join(sorted(problems))


def test_the_service_has_no_import_cycle() -> None:
    graph = {m: {t for t in ts if t.startswith(PREFIX)} for m, ts in _graph().items()}
    graph = {m: ts for m, ts in graph.items() if m.startswith(PREFIX)}
    # Tarjan's strongly connected components; a package importing its own modules from
    # __init__ is not a cycle worth naming, so packages are left out of the graph.
    packages = {m for m in graph if (ROOT / Path(*m.removeprefix(PREFIX).split("."))).is_dir()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node] - packages:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph.keys() - packages):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_ops_never_imports_tests() -> None:
    offenders = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module.startswith("ops")
        for target in targets
        if target.startswith("tests")
    ]
    assert not offenders, offenders


def test_the_distribution_lists_every_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        _module_of(init.parent / "__init__.py")
        for folder in ("app", "agents", "tables", "realgeeks_sync")
        for init in (ROOT / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    found = {name.removesuffix(".realgeeks_sync") for name in found}
    found.discard(PREFIX + "realgeeks_sync")
    found.add("realgeeks_sync")
    assert listed == found
