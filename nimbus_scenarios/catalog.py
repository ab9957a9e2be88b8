"""Built-in scenarios (`scenarios/*.scn`, shipped in the wheel) and NAME-or-FILE lookup."""

from __future__ import annotations

from pathlib import Path

from nimbus_scenarios.language.errors import Diagnostic, ScenarioError, Source, closest
from nimbus_scenarios.resources import data_path

__all__ = ["builtin_names", "builtin_path", "locate"]


def builtin_names() -> list[str]:
    """The names of the built-in scenarios, sorted."""
    return sorted(path.stem for path in data_path("scenarios").glob("*.scn"))


def builtin_path(name: str) -> Path:
    """The file of built-in scenario `name` (which must exist)."""
    return data_path("scenarios") / f"{name}.scn"


def locate(name_or_path: str) -> Path:
    """A scenario file from a path, or from a built-in name (`heavy`), with a clear error."""
    path = Path(name_or_path)
    if path.suffix == ".scn" or path.exists() or "/" in name_or_path:
        return path
    names = builtin_names()
    if name_or_path in names:
        return builtin_path(name_or_path)
    raise ScenarioError(
        Source(name_or_path, ""),
        [
            Diagnostic(
                f"no scenario file or built-in scenario named `{name_or_path}` "
                f"(built-in: {', '.join(names)})",
                hint=closest(name_or_path, names),
            )
        ],
    )
