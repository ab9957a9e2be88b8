"""The package's layers (docs/architecture.md): a module imports only from its own layer or
below, no two modules import each other through any chain, and no module grows past 500 lines
unless docs/architecture.md says why. Imports are read from the source, lazy and
TYPE_CHECKING ones included."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nimbus_scenarios"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

LAYERS: dict[str, int] = {
    # 1: what everything may use
    "nimbus_scenarios": 1,
    "nimbus_scenarios.errors": 1,
    "nimbus_scenarios.secrets": 1,
    "nimbus_scenarios.exit_codes": 1,
    "nimbus_scenarios.resources": 1,
    "nimbus_scenarios.clock": 1,
    "nimbus_scenarios.streams": 1,
    "nimbus_scenarios.stops": 1,
    # 2: the language
    "nimbus_scenarios.language": 2,
    # 3: the plan, and text -> plan
    "nimbus_scenarios.plan": 3,
    "nimbus_scenarios.pipeline": 3,
    "nimbus_scenarios.catalog": 3,
    # 4: the engine, the results document, the replica seam
    "nimbus_scenarios.engine": 4,
    "nimbus_scenarios.results": 4,
    "nimbus_scenarios.replicas": 4,
    "nimbus_scenarios.scaling": 4,
    "nimbus_scenarios.scaling_words": 4,
    # 5: judging and the replica sources
    "nimbus_scenarios.judge": 5,
    "nimbus_scenarios.kube": 5,
    "nimbus_scenarios.local": 5,
    # 6: listeners and readers of results
    "nimbus_scenarios.events": 6,
    "nimbus_scenarios.telemetry": 6,
    "nimbus_scenarios.report": 6,
    # 7: what strings a command together
    "nimbus_scenarios.runner": 7,
    "nimbus_scenarios.merge": 7,
    "nimbus_scenarios.wait": 7,
    "nimbus_scenarios.submit": 7,
    # 8: the command line
    "nimbus_scenarios.cli": 8,
    "nimbus_scenarios.cli_run": 8,
    "nimbus_scenarios.cli_language": 8,
    "nimbus_scenarios.cli_results": 8,
    "nimbus_scenarios.cli_submit": 8,
    "nimbus_scenarios.entry": 8,
    "nimbus_scenarios.__main__": 8,
}

LINE_LIMIT = 500


def module_name(path: Path) -> str:
    """`nimbus_scenarios/report/html.py` -> `nimbus_scenarios.report.html`."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer of a module: that of the longest prefix in LAYERS."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = LAYERS.get(".".join(parts[:end]))
        if found is not None:
            return found
    raise KeyError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def imports_of(module: str) -> Iterator[str]:
    """The package modules `module` imports (lazy and TYPE_CHECKING imports included)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            # `from pkg import sub` imports the submodule when there is one.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == "nimbus_scenarios" or name.startswith("nimbus_scenarios."):
                target = name
                while target not in MODULES and "." in target:
                    target = target.rpartition(".")[0]
                if target != module:
                    yield target


GRAPH = {module: sorted(set(imports_of(module))) for module in MODULES}


def test_every_module_has_a_layer() -> None:
    """A new module must be placed in a layer before it can be imported from anywhere."""
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_upward() -> None:
    """A module imports only from its own layer or below."""
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, []):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    """No chain of imports leads from a module back to itself."""
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_cycles() -> None:
    """The check above can fail: a two- and a three-module loop are found, a chain is not."""
    graph = {"a": ["b"], "b": ["a", "c"], "c": ["d"], "d": ["e"], "e": ["c"], "f": ["a"]}
    assert sorted(cycles(graph)) == [["a", "b"], ["c", "d", "e"]]


def listed_long_modules() -> set[str]:
    """Modules docs/architecture.md names, with a reason, as allowed past the line limit."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.partition("## Modules over 500 lines")[2].partition("\n## ")[0]
    return set(re.findall(r"`(nimbus_scenarios/[\w/]+\.py)`", section))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module: str) -> None:
    """Each module holds one job: at most 500 lines, or listed with its reason."""
    path = MODULES[module]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    relative = path.relative_to(ROOT).as_posix()
    assert lines <= LINE_LIMIT or relative in listed_long_modules(), f"{relative}: {lines} lines"
