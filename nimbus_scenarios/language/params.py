"""Params: `param NAME = VALUE` defaults, `--set NAME=VALUE` overrides, and `$name` resolution.

An override is read by the same literal rules as a file and must keep the param's kind, so
`--set peak=80/s` works and `--set peak=fast` names the kind it expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
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

_STATUS = "a status, a code like `404` or a class like `4xx`"
"""What a param used only by `expect status` takes from `--set`: either form, as that place does."""


@dataclass(frozen=True, slots=True)
class Params:
    """Param values after overrides; `resolve` replaces a `$name` with its value."""

    values: Mapping[str, n.Value]
    overrides: Mapping[str, str] = field(default_factory=dict)
    """The `--set` text of each param whose value came from the command line."""

    def origin(self, name: str) -> str | None:
        """`--set NAME=VALUE` when the param's value came from the command line, else None."""
        raw = self.overrides.get(name)
        return None if raw is None else f"--set {name}={_short(raw)}"

    def resolve(self, value: n.Value) -> n.Value:
        """The value a reference stands for (unknown references are returned as they are)."""
        if isinstance(value, n.ParamRef):
            return self.values.get(value.name, value)
        return value


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """`["peak=80/s", ...]` to `{"peak": "80/s"}`, refusing malformed and oversized items and a
    name given twice (which of the two was meant cannot be known)."""
    result: dict[str, str] = {}
    given: dict[str, str] = {}
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
        if name in given:
            raise ScenarioError(
                source,
                [
                    Diagnostic(
                        f"`--set {_short(given[name])}` and `--set {_short(item)}` both set "
                        f"`{name}`; give it once"
                    )
                ],
            )
        given[name] = item
        result[name] = raw.strip()
    return result


def resolve_params(
    scenario: n.Scenario, overrides: Mapping[str, str]
) -> tuple[Params, list[Diagnostic]]:
    """Defaults from the file with `--set` overrides applied, and every problem found."""
    problems: list[Diagnostic] = []
    values: dict[str, n.Value] = {}
    applied: dict[str, str] = {}
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
        # Looked for only when it matters: a code param given a class.
        status_only = (
            isinstance(default, n.Literal)
            and default.kind is n.Kind.NUMBER
            and _is_status_class(raw)
            and _status_only(scenario, name)
        )
        override = _override_value(name, raw, default, status_only=status_only)
        if isinstance(override, Diagnostic):
            problems.append(override)
        else:
            values[name] = override
            applied[name] = raw
    return Params(values, applied), problems


def _is_status_class(raw: str) -> bool:
    parsed = parse_value(raw)
    return isinstance(parsed, n.Literal) and parsed.kind is n.Kind.STATUS


def _status_only(scenario: n.Scenario, name: str) -> bool:
    """Whether `$name` is used, and used only, in `expect status` (which takes a code or a
    class). Only the places a param can stand are looked at: request blocks hold the statuses,
    and any other use of the name makes it more than a status."""
    statuses = [
        value
        for request in scenario.requests
        if isinstance(request, n.HttpRequest)
        for value in request.expect_status
    ]
    used = sum(1 for v in statuses if isinstance(v, n.ParamRef) and v.name == name)
    return used > 0 and _references(scenario, name) == used


def _references(node: object, name: str) -> int:
    """How many times `$name` appears anywhere in `node` (a tree of frozen nodes and tuples)."""
    if isinstance(node, n.ParamRef):
        return int(node.name == name)
    if isinstance(node, tuple):
        return sum(_references(item, name) for item in node)
    if is_dataclass(node) and not isinstance(node, type):
        return sum(_references(getattr(node, f.name), name) for f in fields(node))
    return 0


def _override_value(
    name: str, raw: str, default: n.Value, *, status_only: bool
) -> n.Value | Diagnostic:
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
        return _wrong_kind(name, raw, KIND_EXAMPLES[kind], kind_article(kind))
    # A class param takes a code and a code param used only by `expect status` takes a class:
    # that place accepts both, and `expect status` checks the code's range there.
    status = kind is n.Kind.STATUS or (kind is n.Kind.NUMBER and status_only)
    kinds: frozenset[n.Kind] = frozenset({n.Kind.STATUS, n.Kind.NUMBER} if status else {kind})
    expected = _STATUS if status else KIND_EXAMPLES[kind]
    parsed = parse_value(raw)
    if isinstance(parsed, n.BadLiteral) and raw[:1].isdigit():
        # A number with a problem (`1m1m`, forty digits, `5sec`): the file's own message.
        return Diagnostic(
            f"`--set {name}={_short(raw)}`: {parsed.message}; `{name}` is {expected}",
            hint=_fitting(parsed.hint, kinds),
        )
    if isinstance(parsed, n.BadLiteral) or parsed.kind not in kinds:
        return _wrong_kind(name, raw, expected, "a status" if status else kind_article(kind))
    return parsed


def _fitting(hint: str | None, kinds: frozenset[n.Kind]) -> str | None:
    """The file's hint unless it is a value of another kind (`2m` for a rate param)."""
    if hint is None:
        return None
    suggested = parse_value(hint)
    if isinstance(suggested, n.Literal) and suggested.kind not in kinds:
        return None
    return hint


def _wrong_kind(name: str, raw: str, expected: str, article: str) -> Diagnostic:
    return Diagnostic(
        f"`--set {name}={_short(raw)}`: `{name}` is {expected}; `{_short(raw)}` is not {article}"
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
