"""The canonical printer: nodes (and the comments of their source) back to scenario text.

`fmt` output is a fixed point (`fmt(fmt(x)) == fmt(x)`) and means the same as its input
(`parse(fmt(x)) == parse(x)`): statements are grouped in a fixed order, indented by two spaces,
with one blank line between sections; comments travel with the statement that follows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import Source

__all__ = ["format_expectation", "format_guard", "format_scenario", "format_shape", "format_value"]

_INDENT = "  "


def format_value(value: n.Value | None) -> str:
    """A value as written in a scenario file."""
    match value:
        case None:
            return ""
        case n.Literal() | n.BadLiteral():
            return value.text
        case n.ParamRef():
            return f"${value.name}"
        case n.EnvRef():
            return f"env({_quote(value.variable)})"


def _quote(text: str) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def _subject(names: tuple[n.Name, ...], request: n.Name | None) -> str:
    """The subject words, with `of NAME` when the statistic is limited to one template."""
    words = " ".join(name.text for name in names)
    return words if request is None else f"{words} of {request.text}"


def format_expectation(item: n.Expectation) -> str:
    """`expect replicas >= 3 within 2m`, `expect p95 of work < 2s`: one expectation in canonical
    form."""
    if isinstance(item, n.Succeeds):
        within = f" within {format_value(item.within)}" if item.within is not None else ""
        return f"expect {item.request.text} succeeds{within}"
    subject = _subject(item.subject, item.request)
    text = f"expect {subject} {item.comparator} {format_value(item.value)}"
    if item.window is not None:
        if item.window.kind is n.WindowKind.WITHIN:
            text += f" within {format_value(item.window.duration)}"
        else:
            text += f" {item.window.kind}"
    return text


def format_guard(abort: n.Abort) -> str:
    """`abort when errors > 50% over 30s`, `abort when p99 of work > 5s over 30s`."""
    subject = _subject(abort.subject, abort.request)
    text = f"abort when {subject} {abort.comparator} {format_value(abort.value)}"
    if abort.over is not None:
        text += f" over {format_value(abort.over)}"
    return text


def format_shape(shape: n.Shape) -> str:
    """`ramp 2/s -> 20/s`: a load shape in canonical form."""
    a = [format_value(arg) for arg in shape.args]
    match shape.kind:
        case n.ShapeKind.RATE:
            return f"rate {a[0]}"
        case n.ShapeKind.RAMP:
            return f"ramp {a[0]} -> {a[1]}"
        case n.ShapeKind.STEPS:
            return f"steps {a[0]} -> {a[1]} in {a[2]}"
        case n.ShapeKind.USERS:
            return f"users {a[0]}" + (f" think {a[1]}" if shape.args[1] is not None else "")
        case n.ShapeKind.BURST:
            return f"burst {a[0]} every {a[1]}"
        case n.ShapeKind.IDLE:
            return "idle"


def _send(send: n.Send) -> str:
    if send.method is not None:
        return f"send {send.method} {format_value(send.path)}"
    items = [
        (f"{format_value(w.weight)} " if w.weight is not None else "") + w.request.text
        for w in send.mix
    ]
    return "send " + ", ".join(items)


def _header(header: n.Header) -> str:
    return f"header {format_value(header.name)} = {format_value(header.value)}"


def _stress(request: n.StressRequest) -> str:
    words = [f"request {request.name.text} = stress"]
    for setting in request.settings:
        words.append(str(setting.option))
        if setting.value is not None:
            words.append(format_value(setting.value))
    return " ".join(words)


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    depth: int
    anchor: int  # the source line this printed line stands for (0: none)
    closes: bool = False  # a `}` line: comments anchored to it sit one level deeper


class _Printer:
    def __init__(self) -> None:
        self.lines: list[_Line] = []

    def line(self, text: str, depth: int, anchor: n.Span) -> None:
        self.lines.append(_Line(text, depth, anchor.line))

    def blank(self) -> None:
        if self.lines and self.lines[-1].text != "":
            self.lines.append(_Line("", 0, 0))

    def close(self, depth: int, end: n.Span) -> None:
        self.lines.append(_Line("}", depth, end.line, closes=True))

    def block(
        self, head: str, depth: int, span: n.Span, end: n.Span, body: list[tuple[str, n.Span]]
    ) -> None:
        self.line(f"{head} {{", depth, span)
        for text, anchor in body:
            self.line(text, depth + 1, anchor)
        self.close(depth, end)


def format_scenario(scenario: n.Scenario, source: Source | None = None) -> str:
    """The canonical text of a scenario, keeping the comments found in `source`."""
    p = _Printer()
    s = scenario
    p.line(f"scenario {format_value(s.name)} {{", 0, s.span)
    for d in s.descriptions:
        p.line(f"description {format_value(d)}", 1, d.span)
    for t in s.targets:
        p.line(f"target {format_value(t)}", 1, t.span)
    for w in s.watches:
        ns = f" namespace {format_value(w.namespace)}" if w.namespace is not None else ""
        p.line(f"watch deployment {format_value(w.deployment)}{ns}", 1, w.span)
    if s.params:
        p.blank()
        for param in s.params:
            p.line(f"param {param.name.text} = {format_value(param.value)}", 1, param.span)
    for settings in s.settings:
        p.blank()
        body = [(f"{x.key} {format_value(x.value)}", x.span) for x in settings.settings]
        body += [(_header(h), h.span) for h in settings.headers]
        p.block("settings", 1, settings.span, settings.end, body)
    if s.requests:
        p.blank()
        for request in s.requests:
            _request(p, request)
    for block in s.befores:
        p.blank()
        _expect_block(p, "before", block)
    for index, phase in enumerate(s.phases):
        if index == 0:
            p.blank()
        body = [(format_shape(x), x.span) for x in phase.shapes]
        body += [
            (
                (
                    f"spike {format_value(x.rate)} for {format_value(x.duration)} "
                    f"at {format_value(x.at)}"
                ),
                x.span,
            )
            for x in phase.spikes
        ]
        body += [(_send(x), x.span) for x in phase.sends]
        body += [(format_expectation(x), x.span) for x in phase.expectations]
        body += [
            (f"at {format_value(x.at)} kill {format_value(x.count)} pods", x.span)
            for x in phase.kills
        ]
        head = f"phase {format_value(phase.name)} {format_value(phase.duration)}"
        p.block(head, 1, phase.span, phase.end, body)
    for block in s.afters:
        p.blank()
        _expect_block(p, "after", block)
    if s.expectations or s.aborts:
        p.blank()
        for e in s.expectations:
            p.line(format_expectation(e), 1, e.span)
        for a in s.aborts:
            p.line(format_guard(a), 1, a.span)
    for block in s.cleanups:
        p.blank()
        body = [(_send(x), x.span) for x in block.items if isinstance(x, n.Send)]
        p.block("cleanup", 1, block.span, block.end, body)
    p.close(0, s.end)
    lines = _with_comments(p.lines, _comments(source.text) if source else [])
    return "\n".join(lines) + "\n"


def _request(p: _Printer, request: n.Request) -> None:
    if isinstance(request, n.StressRequest):
        p.line(_stress(request), 1, request.span)
        return
    head = f"request {request.name.text} = {request.method} {format_value(request.path)}"
    body = [(f"query {q.key.text} = {format_value(q.value)}", q.span) for q in request.queries]
    body += [(_header(h), h.span) for h in request.headers]
    body += [(f"body {format_value(b)}", b.span) for b in request.bodies]
    body += [(f"expect status {format_value(x)}", x.span) for x in request.expect_status]
    if not body:
        p.line(head, 1, request.span)
        return
    end = n.Span(request.span.end_line, 0, request.span.end_line, 0)
    p.block(head, 1, request.span, end, body)


def _expect_block(p: _Printer, head: str, block: n.Block) -> None:
    body = [(format_expectation(x), x.span) for x in block.items if not isinstance(x, n.Send)]
    p.block(head, 1, block.span, block.end, body)


# ---------------------------------------------------------------- comments

_LEXEME = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\n')


@dataclass(frozen=True, slots=True)
class _Comment:
    line: int
    text: str
    own_line: bool


def _comments(text: str) -> list[_Comment]:
    found: list[_Comment] = []
    line = 1
    line_start = 0
    for match in _LEXEME.finditer(text):
        lexeme = match.group()
        if lexeme == "\n":
            line += 1
            line_start = match.end()
        elif lexeme.startswith("#"):
            own = text[line_start : match.start()].strip() == ""
            found.append(_Comment(line, lexeme.rstrip(), own))
    return found


def _with_comments(lines: list[_Line], comments: list[_Comment]) -> list[str]:
    before: dict[int, list[_Comment]] = {}
    trailing: dict[int, str] = {}
    tail: list[_Comment] = []
    anchors = sorted({(line.anchor, i) for i, line in enumerate(lines) if line.anchor > 0})
    for comment in comments:
        if not comment.own_line:
            target = next((i for a, i in anchors if a == comment.line), None)
            if target is not None and target not in trailing:
                trailing[target] = comment.text
                continue
        target = next((i for a, i in anchors if a > comment.line), None)
        if target is None:
            tail.append(comment)
        else:
            before.setdefault(target, []).append(comment)
    out: list[str] = []
    for index, line in enumerate(lines):
        depth = line.depth + 1 if line.closes else line.depth
        out.extend(_INDENT * depth + c.text for c in before.get(index, ()))
        text = _INDENT * line.depth + line.text if line.text else ""
        if index in trailing:
            text += "  " + trailing[index]
        out.append(text)
    out.extend(c.text for c in tail)
    return out
