"""The report package's shape: modules small, no import cycle, templates autoescaped and shipped."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

import nimbus_scenarios.report
from nimbus_scenarios.report import html

PACKAGE = Path(nimbus_scenarios.report.__file__).parent


def _imports(path: Path) -> set[str]:
    """The `nimbus_scenarios.report.*` modules a module imports (at any depth in it)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "nimbus_scenarios.report":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("nimbus_scenarios.report."):
                found.add(node.module.rsplit(".", 1)[1])
        elif isinstance(node, ast.Import):
            found.update(
                a.name.rsplit(".", 1)[1]
                for a in node.names
                if a.name.startswith("nimbus_scenarios.report.")
            )
    return found


def test_modules_are_small() -> None:
    """Every module of the package is at most 500 lines."""
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 500} == {}


def test_no_import_cycle() -> None:
    """The package's modules import each other without a cycle (html and junit stay apart)."""
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}
    assert "junit" not in graph["html"]
    assert "html" not in graph["junit"]
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph.get(module, set()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_templates_ship_and_escape() -> None:
    """The page templates are package data, and the environment escapes every template."""
    templates = resources.files("nimbus_scenarios.report") / "templates"
    names = {t.name for t in templates.iterdir()}
    assert "report.html.j2" in names
    environment = html._environment()
    assert environment.autoescape is True
    rendered = environment.from_string("{{ value }}").render(value="<b>&'\"")
    assert rendered == "&lt;b&gt;&amp;&#39;&#34;"
