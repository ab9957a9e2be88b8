"""Syntax's last step: lark's parse tree to the frozen `nodes`, each with our own `Span`.

lark's `Meta` and `Token` stay here: nodes hold plain spans, so that two scenarios that differ
only in layout compare equal, and no later stage imports lark.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.literals import env_name_problem, parse_string, parse_value

if TYPE_CHECKING:
    from lark import Token

__all__ = ["build_scenario"]


def build_scenario(tree: Any) -> n.Scenario:
    """The `Scenario` node of a tree the grammar's `start` rule produced."""
    result = _Builder().transform(tree)
    assert isinstance(result, n.Scenario)
    return result


def _span_of(meta: Any) -> n.Span:
    if getattr(meta, "empty", True):
        return n.NO_SPAN
    return n.Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _end_of(meta: Any) -> n.Span:
    """The closing `}` of a block whose rule ends with it."""
    if getattr(meta, "empty", True):
        return n.NO_SPAN
    return n.Span(meta.end_line, meta.end_column - 1, meta.end_line, meta.end_column)


def _token_span(token: Token) -> n.Span:
    return n.Span(token.line or 0, token.column or 0, token.end_line or 0, token.end_column or 0)


def _name(token: Token) -> n.Name:
    return n.Name(str(token), _token_span(token))


class _Builder:
    """Builds nodes bottom-up from lark's tree (a Transformer without lark's reflection)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[Any, list[Any]], Any]] = {}
        # A file repeats few distinct values (`2s`, `1/s`) many times; each is classified once.
        self._values: dict[str, n.Literal | n.BadLiteral] = {}

    def transform(self, tree: Any) -> Any:
        from lark import Tree

        return self._node(tree, Tree)

    def _node(self, tree: Any, tree_type: type) -> Any:
        """The node of one subtree. Recursive, but only as deep as the grammar nests rules
        (a handful of levels): lark flattens every repetition (`(_phase_item _NL)*`) into one
        list of children, and no rule contains itself, so no input can deepen the walk."""
        children = [
            self._node(child, tree_type) if type(child) is tree_type else child
            for child in tree.children
        ]
        data = tree.data
        handler = self._handlers.get(data)
        if handler is None:
            handler = self._handlers[data] = getattr(self, str(data))
        return handler(tree.meta, children)

    # -- values
    def literal(self, meta: Any, c: list[Any]) -> n.Value:
        text = str(c[0])
        span = _token_span(c[0])
        known = self._values.get(text)
        if known is None:
            known = self._values[text] = parse_value(text, span)
            return known
        if isinstance(known, n.Literal):
            return n.Literal(known.kind, known.text, known.exact, known.string, span=span)
        return parse_value(text, span)

    def string(self, meta: Any, c: list[Any]) -> n.Value:
        return parse_string(str(c[0]), _token_span(c[0]))

    def param_ref(self, meta: Any, c: list[Any]) -> n.Value:
        return n.ParamRef(str(c[0])[1:], _token_span(c[0]))

    def env(self, meta: Any, c: list[Any]) -> n.Value:
        variable = parse_string(str(c[0]), _token_span(c[0]))
        if isinstance(variable, n.BadLiteral):
            return variable
        problem = env_name_problem(variable.string)
        if problem is not None:
            return n.BadLiteral(f"env({c[0]})", problem, span=_token_span(c[0]))
        return n.EnvRef(variable.string, _span_of(meta))

    def true(self, meta: Any, c: list[Any]) -> n.Value:
        return n.Literal(n.Kind.BOOL, "true", Fraction(1), span=_span_of(meta))

    def false(self, meta: Any, c: list[Any]) -> n.Value:
        return n.Literal(n.Kind.BOOL, "false", Fraction(0), span=_span_of(meta))

    # -- keyword rules kept as their text
    def method(self, meta: Any, c: list[Any]) -> str:
        return str(c[0])

    setting_key = stress_key = stress_flag = cmp = method

    # -- file and scenario
    def start(self, meta: Any, c: list[Any]) -> n.Scenario:
        scenarios = [x for x in c if isinstance(x, n.Scenario)]
        return scenarios[0]

    def scenario(self, meta: Any, c: list[Any]) -> n.Scenario:
        name, items = c[0], c[1:]
        groups: dict[str, list[Any]] = {}
        for item in items:
            if isinstance(item, tuple):
                groups.setdefault(item[0], []).append(item[1])
            else:
                groups.setdefault(type(item).__name__, []).append(item)
        return n.Scenario(
            name=name,
            descriptions=tuple(groups.get("description", ())),
            targets=tuple(groups.get("target", ())),
            watches=tuple(groups.get("Watch", ())),
            params=tuple(groups.get("Param", ())),
            settings=tuple(groups.get("Settings", ())),
            requests=tuple(groups.get("request", ())),
            befores=tuple(groups.get("before", ())),
            phases=tuple(groups.get("Phase", ())),
            afters=tuple(groups.get("after", ())),
            expectations=tuple(x for x in items if isinstance(x, n.Compare | n.Succeeds)),
            aborts=tuple(groups.get("Abort", ())),
            cleanups=tuple(groups.get("cleanup", ())),
            span=_span_of(meta),
            end=_end_of(meta),
        )

    def description(self, meta: Any, c: list[Any]) -> tuple[str, n.Value]:
        return ("description", c[0])

    def target(self, meta: Any, c: list[Any]) -> tuple[str, n.Value]:
        return ("target", c[0])

    def watch(self, meta: Any, c: list[Any]) -> n.Watch:
        return n.Watch(c[0], c[1], span=_span_of(meta))

    def param(self, meta: Any, c: list[Any]) -> n.Param:
        return n.Param(_name(c[0]), c[1], span=_span_of(meta))

    def settings(self, meta: Any, c: list[Any]) -> n.Settings:
        return n.Settings(
            settings=tuple(x for x in c if isinstance(x, n.Setting)),
            headers=tuple(x for x in c if isinstance(x, n.Header)),
            span=_span_of(meta),
            end=_end_of(meta),
        )

    def setting(self, meta: Any, c: list[Any]) -> n.Setting:
        return n.Setting(c[0], c[1], span=_span_of(meta))

    def header(self, meta: Any, c: list[Any]) -> n.Header:
        return n.Header(c[0], c[1], span=_span_of(meta))

    # -- requests
    def http_request(self, meta: Any, c: list[Any]) -> tuple[str, n.HttpRequest]:
        name, method, path, block = c
        items: list[Any] = block or []
        return (
            "request",
            n.HttpRequest(
                name=_name(name),
                method=method,
                path=path,
                queries=tuple(x for x in items if isinstance(x, n.Query)),
                headers=tuple(x for x in items if isinstance(x, n.Header)),
                bodies=tuple(x[1] for x in items if isinstance(x, tuple) and x[0] == "body"),
                expect_status=tuple(
                    x[1] for x in items if isinstance(x, tuple) and x[0] == "status"
                ),
                span=_span_of(meta),
            ),
        )

    def request_block(self, meta: Any, c: list[Any]) -> list[Any]:
        return c

    def query(self, meta: Any, c: list[Any]) -> n.Query:
        return n.Query(_name(c[0]), c[1], span=_span_of(meta))

    def body(self, meta: Any, c: list[Any]) -> tuple[str, n.Value]:
        return ("body", c[0])

    def expect_status(self, meta: Any, c: list[Any]) -> tuple[str, n.Value]:
        return ("status", c[0])

    def stress_request(self, meta: Any, c: list[Any]) -> tuple[str, n.StressRequest]:
        return ("request", n.StressRequest(_name(c[0]), tuple(c[1:]), span=_span_of(meta)))

    def stress_option(self, meta: Any, c: list[Any]) -> n.StressSetting:
        value = c[1] if len(c) > 1 else None
        return n.StressSetting(n.StressOption(c[0]), value, span=_span_of(meta))

    # -- blocks
    def before(self, meta: Any, c: list[Any]) -> tuple[str, n.Block]:
        return ("before", n.Block(tuple(c), span=_span_of(meta), end=_end_of(meta)))

    def after(self, meta: Any, c: list[Any]) -> tuple[str, n.Block]:
        return ("after", n.Block(tuple(c), span=_span_of(meta), end=_end_of(meta)))

    def cleanup(self, meta: Any, c: list[Any]) -> tuple[str, n.Block]:
        return ("cleanup", n.Block(tuple(c), span=_span_of(meta), end=_end_of(meta)))

    # -- phases
    def phase(self, meta: Any, c: list[Any]) -> n.Phase:
        name, duration, items = c[0], c[1], c[2:]
        return n.Phase(
            name=name,
            duration=duration,
            shapes=tuple(x for x in items if isinstance(x, n.Shape)),
            spikes=tuple(x for x in items if isinstance(x, n.Spike)),
            sends=tuple(x for x in items if isinstance(x, n.Send)),
            expectations=tuple(x for x in items if isinstance(x, n.Compare | n.Succeeds)),
            kills=tuple(x for x in items if isinstance(x, n.Kill)),
            span=_span_of(meta),
            end=_end_of(meta),
        )

    def _shape(self, kind: n.ShapeKind, meta: Any, c: list[Any]) -> n.Shape:
        return n.Shape(kind, tuple(c), span=_span_of(meta))

    def rate(self, meta: Any, c: list[Any]) -> n.Shape:
        return self._shape(n.ShapeKind.RATE, meta, c)

    def ramp(self, meta: Any, c: list[Any]) -> n.Shape:
        return self._shape(n.ShapeKind.RAMP, meta, c)

    def steps(self, meta: Any, c: list[Any]) -> n.Shape:
        return self._shape(n.ShapeKind.STEPS, meta, c)

    def users(self, meta: Any, c: list[Any]) -> n.Shape:
        return self._shape(n.ShapeKind.USERS, meta, c)

    def burst(self, meta: Any, c: list[Any]) -> n.Shape:
        return self._shape(n.ShapeKind.BURST, meta, c)

    def idle(self, meta: Any, c: list[Any]) -> n.Shape:
        return self._shape(n.ShapeKind.IDLE, meta, c)

    def spike(self, meta: Any, c: list[Any]) -> n.Spike:
        return n.Spike(c[0], c[1], c[2], span=_span_of(meta))

    def kill(self, meta: Any, c: list[Any]) -> n.Kill:
        return n.Kill(c[0], c[1], span=_span_of(meta))

    def send_mix(self, meta: Any, c: list[Any]) -> n.Send:
        return n.Send(mix=tuple(c), span=_span_of(meta))

    def send_inline(self, meta: Any, c: list[Any]) -> n.Send:
        return n.Send(method=c[0], path=c[1], span=_span_of(meta))

    def send_item(self, meta: Any, c: list[Any]) -> n.Weighted:
        return n.Weighted(c[0], _name(c[1]), span=_span_of(meta))

    # -- expectations and guards
    def expect_compare(self, meta: Any, c: list[Any]) -> n.Compare:
        subject, request, comparator, value, window = c
        return n.Compare(
            subject, n.Comparator(comparator), value, window, request, span=_span_of(meta)
        )

    def expect_succeeds(self, meta: Any, c: list[Any]) -> n.Succeeds:
        return n.Succeeds(_name(c[0]), c[1], span=_span_of(meta))

    def subject(self, meta: Any, c: list[Any]) -> tuple[n.Name, ...]:
        return tuple(_name(t) for t in c if t is not None)

    def scope(self, meta: Any, c: list[Any]) -> n.Name:
        return _name(c[0])

    def within(self, meta: Any, c: list[Any]) -> n.Window:
        return n.Window(n.WindowKind.WITHIN, c[0], span=_span_of(meta))

    def throughout(self, meta: Any, c: list[Any]) -> n.Window:
        return n.Window(n.WindowKind.THROUGHOUT, span=_span_of(meta))

    def at_end(self, meta: Any, c: list[Any]) -> n.Window:
        return n.Window(n.WindowKind.AT_END, span=_span_of(meta))

    def abort(self, meta: Any, c: list[Any]) -> n.Abort:
        subject, request, comparator, value, over = c
        return n.Abort(subject, n.Comparator(comparator), value, over, request, span=_span_of(meta))
