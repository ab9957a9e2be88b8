"""Params: `param NAME = VALUE` defaults, `--set NAME=VALUE` overrides, and `$name` resolution.

An override is read by the same literal rules as a file and must keep the param's kind, so
`--set peak=80/s` works and `--set peak=fast` names the kind it expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import Diagnostic, ScenarioError, Source, closest
from nimbus_scenarios.language.literals import parse_string, parse_value

__all__ = ["KIND_EXAMPLES", "MAX_OVERRIDE_CHARS", "Params", "parse_overrides", "resolve_params"]

MAX_OVERRIDE_CHARS = 4096
"""A `--set` value longer than this is refused: no param needs it, and it bounds memory."""

KIND_EXAMPLES = {
    n.Kind.NUMBER: "a number, like `12`",
    n.Kind.DURATION: "a duration, like `30s` or `1m30s`",
    n.Kind.RATE: "a rate, like `20/s` or `300/m`",
    n.Kind.PERCENT: "a percentage, like `12.5%`",
    n.Kind.SIZE: "a size, like `150MB`",
    n.Kind.STRING: 'a string, like `"/health"`',
    n.Kind.BOOL: "a bool, `true` or `false`",
    n.Kind.STATUS: "a status, like `200` or `2xx`",
}


@dataclass(frozen=True, slots=True)
class Params:
    """Param values after overrides; `resolve` replaces a `$name` with its value."""

    values: Mapping[str, n.Value]

    def resolve(self, value: n.Value) -> n.Value:
        """The value a reference stands for (unknown references are returned as they are)."""
        if isinstance(value, n.ParamRef):
            return self.values.get(value.name, value)
        return value


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """`["peak=80/s", ...]` to `{"peak": "80/s"}`, refusing malformed and oversized items."""
    result: dict[str, str] = {}
    source = Source("--set", "")
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ScenarioError(
                source, [Diagnostic(f"`--set {_short(item)}` must have the form NAME=VALUE")]
            )
        if len(raw) > MAX_OVERRIDE_CHARS:
            raise ScenarioError(
                source,
                [
                    Diagnostic(
                        f"`--set {name}=...` is {len(raw):,} characters long; "
                        f"values are limited to {MAX_OVERRIDE_CHARS:,}"
                    )
                ],
            )
        result[name] = raw.strip()
    return result


def resolve_params(
    scenario: n.Scenario, overrides: Mapping[str, str]
) -> tuple[Params, list[Diagnostic]]:
    """Defaults from the file with `--set` overrides applied, and every problem found."""
    problems: list[Diagnostic] = []
    values: dict[str, n.Value] = {}
    for param in scenario.params:
        if param.name.text not in values:
            values[param.name.text] = param.value
    for name, raw in overrides.items():
        if name not in values:
            hint = closest(name, values)
            known = ", ".join(sorted(values)) or "none"
            problems.append(
                Diagnostic(
                    f"`--set {name}=...`: the scenario has no param `{name}` (its params: {known})",
                    hint=hint,
                )
            )
            continue
        default = values[name]
        override = _override_value(name, raw, default)
        if isinstance(override, Diagnostic):
            problems.append(override)
        else:
            values[name] = override
    return Params(values), problems


def _override_value(name: str, raw: str, default: n.Value) -> n.Value | Diagnostic:
    kind = default.kind if isinstance(default, n.Literal) else n.Kind.STRING
    if kind is n.Kind.STRING:
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            quoted = parse_string(raw)
            if isinstance(quoted, n.BadLiteral):
                return Diagnostic(f"`--set {name}=...`: {quoted.message}")
            return quoted
        return n.Literal(n.Kind.STRING, _quote(raw), string=raw)
    if kind is n.Kind.BOOL:
        if raw in {"true", "false"}:
            return n.Literal(n.Kind.BOOL, raw, Fraction(int(raw == "true")))
        return _wrong_kind(name, raw, kind)
    parsed = parse_value(raw)
    if isinstance(parsed, n.BadLiteral) or parsed.kind is not kind:
        return _wrong_kind(name, raw, kind)
    return parsed


def _wrong_kind(name: str, raw: str, kind: n.Kind) -> Diagnostic:
    return Diagnostic(
        f"`--set {name}={_short(raw)}`: `{name}` is {KIND_EXAMPLES[kind]}; "
        f"`{_short(raw)}` is not {kind_article(kind)}"
    )


def kind_article(kind: n.Kind) -> str:
    """`a rate`, `an ...`: the kind with its article."""
    word = kind.value
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped.replace(chr(9), chr(92) + "t")}"'


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
