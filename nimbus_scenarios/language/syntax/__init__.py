"""Text to nodes: read a scenario file, parse it with lark, and build frozen `nodes`.

lark's errors are turned into `ScenarioError` here, with a human list of what was expected, a
caret, "did you mean" for misspelt keywords, and where an unclosed block began. Inputs that are
not scenario text at all (binary, empty, huge) are refused before lark sees them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import Diagnostic, ScenarioError, Source, closest
from nimbus_scenarios.language.grammar import parser
from nimbus_scenarios.language.literals import parse_string, parse_value
from nimbus_scenarios.language.vocabulary import MAX_PHASES

if TYPE_CHECKING:
    from lark import Token

__all__ = ["MAX_FILE_BYTES", "parse", "parse_file", "read_source"]

MAX_FILE_BYTES = 1024 * 1024
"""Scenario files are hand-written; anything larger is refused rather than parsed slowly."""


def read_source(path: str | Path) -> Source:
    """Read a scenario file as UTF-8 text, refusing missing, huge and binary files clearly."""
    name = str(path)
    file = Path(path)
    try:
        size = file.stat().st_size
        if file.is_dir():
            raise _fail(name, f"`{name}` is a directory, not a scenario file")
        if size > MAX_FILE_BYTES:
            raise _fail(
                name,
                f"the file is too large ({size / 1024 / 1024:.1f} MB); "
                f"scenario files are limited to {MAX_FILE_BYTES // 1024 // 1024} MB",
            )
        data = file.read_bytes()
    except FileNotFoundError:
        raise _fail(name, "no such file") from None
    except PermissionError:
        raise _fail(name, "permission denied") from None
    except OSError as exc:
        raise _fail(name, f"cannot read the file: {exc.strerror or exc}") from None
    return decode(name, data)


def decode(name: str, data: bytes) -> Source:
    """Bytes to a `Source`, refusing binary content and invalid UTF-8 with the offending spot."""
    if b"\x00" in data:
        raise _fail(name, "this is a binary file, not scenario text (it contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(
            Source(name, ""),
            [
                Diagnostic(
                    f"not a UTF-8 text file: invalid byte 0x{data[exc.start]:02x} "
                    f"at line {line} (byte offset {exc.start})"
                )
            ],
        ) from None
    return Source(name, text.removeprefix("\ufeff"))


def _fail(name: str, message: str) -> ScenarioError:
    return ScenarioError(Source(name, ""), [Diagnostic(message)])


def parse_file(path: str | Path) -> n.Scenario:
    """Read and parse one scenario file."""
    return parse(read_source(path))


def parse(source: Source) -> n.Scenario:
    """Parse scenario text into nodes, raising `ScenarioError` for any syntax problem."""
    if len(source.text.encode("utf-8")) > MAX_FILE_BYTES:
        raise _fail(source.name, "the scenario text is larger than 1 MB")
    if not source.text.strip() or _only_comments(source.text):
        raise ScenarioError(
            source,
            [
                Diagnostic(
                    'the file is empty: expected `scenario "NAME" { ... }`', n.Span(1, 1, 1, 1)
                )
            ],
        )
    _refuse_too_many_phases(source)
    from lark.exceptions import UnexpectedInput

    try:
        tree = parser().parse(source.text)
    except UnexpectedInput as exc:
        raise ScenarioError(source, [_syntax_diagnostic(source, exc)]) from None
    result = _Builder().transform(tree)
    assert isinstance(result, n.Scenario)
    return result


_PHASE_LINE = re.compile(r'^[ \t]*phase[ \t]+"', re.MULTILINE)


def _refuse_too_many_phases(source: Source) -> None:
    """Refuse more phases than validation allows before lark parses them all (10,000 phases
    take about a second to parse). Counts only lines that start with `phase "`, which in a file
    are always phase statements (strings hold no line breaks, comments start with `#`), so it
    never refuses a file validation would accept; validation counts the rest exactly."""
    starts = [m.start() for m in _PHASE_LINE.finditer(source.text)]
    if len(starts) <= MAX_PHASES:
        return
    line = source.text.count("\n", 0, starts[MAX_PHASES]) + 1  # each match starts a line
    text = source.line(line)
    column = len(text) - len(text.lstrip()) + 1
    raise ScenarioError(
        source,
        [
            Diagnostic(
                f"the scenario has {len(starts):,} phases; the limit is {MAX_PHASES:,}",
                n.Span(line, column, line + 1, 1),
            )
        ],
    )


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


# ---------------------------------------------------------------- lark errors to diagnostics

_VALUE_TERMINALS = frozenset({"VALUE", "STRING", "PARAM_REF", "ENV", "TRUE", "FALSE"})
_DESCRIBED = {
    "VALUE": "a value",
    "STRING": "a string",
    "PARAM_REF": "a `$param`",
    "NAME": "a name",
    "_NL": "end of line",
    "$END": "end of file",
    "<END-OF-FILE>": "end of file",  # lark's name when nothing may follow (text after the `}`)
}


def _syntax_diagnostic(source: Source, exc: Any) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(source, exc)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        return _unexpected_token(source, exc.token, set(exc.expected))
    expected = set(getattr(exc, "expected", ()) or ())
    if isinstance(exc, UnexpectedEOF | UnexpectedToken):
        return _unexpected_end(source, expected)
    return Diagnostic(str(exc).splitlines()[0])  # pragma: no cover - lark has no other kinds


def _unexpected_character(source: Source, exc: Any) -> Diagnostic:
    line, column = exc.line, exc.column
    char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else ""
    span = n.Span(line, column, line, column + 1)
    if char == '"':
        return Diagnostic('unterminated string: add the closing `"` on this line', span)
    if char == "-":
        return Diagnostic(
            "unexpected `-`: negative values are not allowed (use `->` in ramps)", span
        )
    if char == "$":
        return Diagnostic("`$` must be followed by a param name, as in `$peak`", span)
    shown = char if char.isprintable() and not char.isspace() else repr(char)
    return Diagnostic(f"unexpected character `{shown}`", span)


def _unexpected_token(source: Source, token: Token, expected: set[str]) -> Diagnostic:
    found = str(token)
    span = n.Span(token.line or 0, token.column or 0, token.end_line or 0, token.end_column or 0)
    words = _expected_words(expected)
    keywords = _keywords(expected)
    if "NAME" in expected and _is_keyword(token.type) and found.isidentifier():
        return Diagnostic(f"`{found}` is a reserved word and cannot be used as a name here", span)
    hint = closest(found, keywords) if token.type in {"NAME", *_KEYWORD_TYPES()} else None
    if token.type == "_NL":
        what = "end of line"
        span = n.Span(span.line, span.column, span.line, span.column + 1)
    elif token.type == "NAME" and hint:
        what = f"`{found}`"
    else:
        what = f"`{found}`"
    message = f"unexpected {what}; expected {words}"
    if token.type == "_NL" and "RBRACE" not in expected and "_NL" not in expected:
        message = f"this statement is incomplete; expected {words}"
    return Diagnostic(message, span, hint=hint)


def _unexpected_end(source: Source, expected: set[str]) -> Diagnostic:
    opened = _unclosed_brace(source.text)
    lines = source.text.split("\n")
    last = len(lines)
    end = n.Span(last, len(lines[-1]) + 1, last, len(lines[-1]) + 2)
    if opened is not None:
        return Diagnostic(
            f"the file ends before the block opened at line {opened[0]}, "
            f"column {opened[1]} is closed; add `}}`",
            n.Span(opened[0], opened[1], opened[0], opened[1] + 1),
        )
    return Diagnostic(f"the file ends too early; expected {_expected_words(expected)}", end)


def _unclosed_brace(text: str) -> tuple[int, int] | None:
    """Line and column of the innermost `{` never closed (strings and comments skipped)."""
    stack: list[tuple[int, int]] = []
    for match in re.finditer(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[{}]|\n', text):
        token = match.group()
        if token == "{":
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            stack.append((line, column))
        elif token == "}" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _terminal_patterns() -> dict[str, str]:
    """Terminal name to the literal text of string terminals (keywords and punctuation)."""
    from lark.lexer import PatternStr

    return {
        t.name: t.pattern.value for t in parser().terminals if isinstance(t.pattern, PatternStr)
    }


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_keyword(terminal: str) -> bool:
    text = _terminal_patterns().get(terminal)
    return text is not None and _IDENTIFIER.fullmatch(text) is not None


def _KEYWORD_TYPES() -> set[str]:
    return {name for name in _terminal_patterns() if _is_keyword(name)}


def _keywords(expected: Iterable[str]) -> list[str]:
    patterns = _terminal_patterns()
    return [patterns[t] for t in expected if _is_keyword(t)]


def _expected_words(expected: Iterable[str]) -> str:
    patterns = _terminal_patterns()
    names = set(expected)
    words: list[str] = []
    if names & _VALUE_TERMINALS and len(names & _VALUE_TERMINALS) >= 3:
        words.append("a value")
        names -= _VALUE_TERMINALS
    if {"EQUAL", "MORETHAN", "LESSTHAN"} <= names or len(
        [t for t in names if patterns.get(t) in {"==", "!=", ">=", "<=", ">", "<"}]
    ) >= 4:
        words.append("a comparison (`==`, `!=`, `>=`, `<=`, `>`, `<`)")
        names = {t for t in names if patterns.get(t) not in {"==", "!=", ">=", "<=", ">", "<"}}
    methods = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
    if {patterns.get(t) for t in names} >= methods:
        words.append("an HTTP method (GET, POST, PUT, PATCH, DELETE, HEAD)")
        names = {t for t in names if patterns.get(t) not in methods}
    keywords = sorted(f"`{patterns[t]}`" for t in names if t in patterns)
    others = sorted(_DESCRIBED.get(t, t.lower()) for t in names if t not in patterns)
    words.extend(others)
    words.extend(keywords)
    if len(words) == 1:
        return words[0]
    if len(words) == 2:
        return f"{words[0]} or {words[1]}"
    return "one of " + ", ".join(words)


# ---------------------------------------------------------------- tree to nodes


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

    def transform(self, tree: Any) -> Any:
        from lark import Token, Tree

        # Iterative post-order walk: nesting is shallow by grammar, but a walk with no
        # recursion cannot be pushed into RecursionError by any input.
        stack: list[tuple[Any, bool]] = [(tree, False)]
        results: list[Any] = []
        while stack:
            node, visited = stack.pop()
            if not isinstance(node, Tree):
                results.append(node)
                continue
            if not visited:
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.children))
                continue
            count = len(node.children)
            children = results[len(results) - count :] if count else []
            del results[len(results) - count :]
            handler: Callable[[Any, list[Any]], Any] = getattr(self, str(node.data))
            results.append(handler(node.meta, children))
        assert len(results) == 1
        return results[0] if not isinstance(results[0], Token) else None

    # -- values
    def literal(self, meta: Any, c: list[Any]) -> n.Value:
        return parse_value(str(c[0]), _token_span(c[0]))

    def string(self, meta: Any, c: list[Any]) -> n.Value:
        return parse_string(str(c[0]), _token_span(c[0]))

    def param_ref(self, meta: Any, c: list[Any]) -> n.Value:
        return n.ParamRef(str(c[0])[1:], _token_span(c[0]))

    def env(self, meta: Any, c: list[Any]) -> n.Value:
        variable = parse_string(str(c[0]), _token_span(c[0]))
        if isinstance(variable, n.BadLiteral):
            return variable
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
        subject, comparator, value, window = c
        return n.Compare(subject, n.Comparator(comparator), value, window, span=_span_of(meta))

    def expect_succeeds(self, meta: Any, c: list[Any]) -> n.Succeeds:
        return n.Succeeds(_name(c[0]), c[1], span=_span_of(meta))

    def subject(self, meta: Any, c: list[Any]) -> tuple[n.Name, ...]:
        return tuple(_name(t) for t in c if t is not None)

    def within(self, meta: Any, c: list[Any]) -> n.Window:
        return n.Window(n.WindowKind.WITHIN, c[0], span=_span_of(meta))

    def throughout(self, meta: Any, c: list[Any]) -> n.Window:
        return n.Window(n.WindowKind.THROUGHOUT, span=_span_of(meta))

    def at_end(self, meta: Any, c: list[Any]) -> n.Window:
        return n.Window(n.WindowKind.AT_END, span=_span_of(meta))

    def abort(self, meta: Any, c: list[Any]) -> n.Abort:
        subject, comparator, value, over = c
        return n.Abort(subject, n.Comparator(comparator), value, over, span=_span_of(meta))
