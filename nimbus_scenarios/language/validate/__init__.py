"""Validation: every problem in a parsed scenario, not only the first.

Takes nodes and resolved params, returns diagnostics (errors and warnings). Later stages may
assume a scenario with no error diagnostics is well-formed: kinds match, names resolve, ranges
hold, every phase has exactly one shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from fractions import Fraction
from urllib.parse import urlsplit

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import Diagnostic, Severity, closest
from nimbus_scenarios.language.params import KIND_EXAMPLES, Params, kind_article
from nimbus_scenarios.language.vocabulary import (
    DEFAULT_MAX_RATE,
    GUARD_SUBJECTS,
    MAX_DURATION_S,
    MAX_PHASES,
    MAX_STAIRS,
    METRIC_SUBJECTS,
    REPLICA_SUBJECTS,
    RESERVED,
    STRESS_RANGES,
    ExpectationKind,
    subject_kind,
)
from nimbus_scenarios.secrets import MASK

__all__ = ["url_problem", "validate"]

_SETTING_KINDS = {
    "timeout": n.Kind.DURATION,
    "max_inflight": n.Kind.NUMBER,
    "connection_max_age": n.Kind.DURATION,
    "trace_sample": n.Kind.PERCENT,
    "stress_path": n.Kind.STRING,
}
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def validate(
    scenario: n.Scenario,
    params: Params,
    *,
    max_rate: float = DEFAULT_MAX_RATE,
    watch_given: bool = False,
) -> list[Diagnostic]:
    """Every problem in the scenario, in source order (errors and warnings)."""
    checker = _Checker(scenario, params, max_rate=max_rate, watch_given=watch_given)
    checker.run()
    return sorted(checker.problems, key=lambda d: (d.span.line, d.span.column))


class _Checker:
    def __init__(
        self, scenario: n.Scenario, params: Params, *, max_rate: float, watch_given: bool
    ) -> None:
        self.scenario = scenario
        self.params = params
        self.max_rate = max_rate
        self.has_watch = bool(scenario.watches) or watch_given
        self.problems: list[Diagnostic] = []
        self.requests = {r.name.text: r for r in scenario.requests}
        self.stairs = 0

    # ------------------------------------------------------------ helpers
    def error(self, message: str, span: n.Span, hint: str | None = None) -> None:
        self.problems.append(Diagnostic(message, span, hint))

    def warn(self, message: str, span: n.Span, hint: str | None = None) -> None:
        self.problems.append(Diagnostic(message, span, hint, Severity.WARNING))

    def value(self, value: n.Value | None, kinds: Sequence[n.Kind], what: str) -> n.Literal | None:
        """The literal behind `value` if it has one of `kinds`, else report why not."""
        if value is None:
            return None
        resolved = self.params.resolve(value)
        via = f" (`${value.name}`)" if isinstance(value, n.ParamRef) else ""
        if isinstance(resolved, n.ParamRef):
            hint = closest(resolved.name, self.params.values)
            self.error(
                f"unknown param `${resolved.name}`",
                value.span,
                f"${hint}" if hint else None,
            )
            return None
        if isinstance(resolved, n.BadLiteral):
            if not via:
                self.error(resolved.message, value.span, resolved.hint)
            return None
        if isinstance(resolved, n.EnvRef):
            if n.Kind.STRING in kinds:
                return n.Literal(n.Kind.STRING, MASK, string=MASK, span=value.span)
            self.error(f"{what} must be {_kinds(kinds)}; `env(...)` gives a string", value.span)
            return None
        if resolved.kind not in kinds:
            found = f"{kind_article(resolved.kind)} `{_short(resolved.text)}`"
            self.error(f"{what} must be {_kinds(kinds)}; found {found}{via}", value.span)
            return None
        return resolved

    def integer(
        self, value: n.Value | None, what: str, low: int, high: int | None = None
    ) -> int | None:
        literal = self.value(value, [n.Kind.NUMBER], what)
        if literal is None or value is None:
            return None
        if literal.exact.denominator != 1:
            self.error(f"{what} must be a whole number; found `{literal.text}`", value.span)
            return None
        number = int(literal.exact)
        if number < low or (high is not None and number > high):
            limits = f"from {low} to {high}" if high is not None else f"at least {low}"
            self.error(f"{what} must be {limits}; found {number}", value.span)
            return None
        return number

    def duration(
        self, value: n.Value | None, what: str, *, positive: bool = True
    ) -> Fraction | None:
        literal = self.value(value, [n.Kind.DURATION], what)
        if literal is None or value is None:
            return None
        if positive and literal.exact <= 0:
            self.error(f"{what} must be longer than zero", value.span)
            return None
        if literal.exact > MAX_DURATION_S:
            self.error(
                f"{what} of `{literal.text}` is longer than the limit of {MAX_DURATION_S // 3600}h",
                value.span,
            )
            return None
        return literal.exact

    def rate(self, value: n.Value | None, what: str, *, positive: bool) -> Fraction | None:
        literal = self.value(value, [n.Kind.RATE], what)
        if literal is None or value is None:
            return None
        if positive and literal.exact <= 0:
            self.error(f"{what} must be above zero (use `idle` for no load)", value.span)
            return None
        if literal.exact > self.max_rate:
            self.error(
                f"{what} `{_short(literal.text)}` is above the limit of "
                f"{self.max_rate:g}/s per process (raise it with --max-rate, or shard the run)",
                value.span,
            )
            return None
        return literal.exact

    def percent(self, value: n.Value | None, what: str) -> Fraction | None:
        literal = self.value(value, [n.Kind.PERCENT], what)
        if literal is None or value is None:
            return None
        if literal.exact > 100:
            self.error(f"{what} must be at most 100%; found `{literal.text}`", value.span)
            return None
        return literal.exact

    def text(self, value: n.Value | None, what: str, *, secret_ok: bool = False) -> str | None:
        """A string literal; `env(...)` only where the run reads it (`secret_ok`), not in names
        and paths the plan needs before the run starts."""
        if not secret_ok and value is not None and isinstance(self.params.resolve(value), n.EnvRef):
            self.error(
                f"{what} cannot come from `env(...)`: it is needed before the run starts "
                "(use `env(...)` for target, header values, query values and bodies)",
                value.span,
            )
            return None
        literal = self.value(value, [n.Kind.STRING], what)
        return None if literal is None else literal.string

    def once(self, spans: Sequence[n.Span], what: str) -> None:
        for span in spans[1:]:
            self.error(f"duplicate {what}; the first is at line {spans[0].line}", span)

    def check_name(self, name: n.Name, what: str) -> None:
        if name.text in RESERVED:
            self.error(f"`{name.text}` is a reserved word and cannot name a {what}", name.span)

    def known_request(self, name: n.Name) -> n.Request | None:
        request = self.requests.get(name.text)
        if request is None:
            self.error(
                f"unknown request `{name.text}`", name.span, closest(name.text, self.requests)
            )
        return request

    # ------------------------------------------------------------ the scenario
    def run(self) -> None:
        s = self.scenario
        name = self.text(s.name, "the scenario name")
        if name is not None and not name.strip():
            self.error("the scenario name must not be empty", s.name.span)
        for what, items in (
            ("`description`", s.descriptions),
            ("`target`", s.targets),
            ("`watch`", s.watches),
            ("`settings` block", s.settings),
            ("`before` block", s.befores),
            ("`after` block", s.afters),
            ("`cleanup` block", s.cleanups),
        ):
            self.once([x.span for x in items], what)
        for description in s.descriptions:
            self.text(description, "`description`")
        for target in s.targets:
            self.url(target)
        for watch in s.watches:
            self.watch(watch)
        self.param_defs()
        for settings in s.settings:
            self.settings(settings)
        self.request_defs()
        for block in s.befores:
            self.hypothesis(block, "before")
        self.phases()
        for block in s.afters:
            self.hypothesis(block, "after")
        for expectation in s.expectations:
            self.expectation(expectation, scope="scenario")
        for abort in s.aborts:
            self.abort(abort)
        for block in s.cleanups:
            self.cleanup(block)

    def url(self, value: n.Value) -> None:
        url = self.text(value, "`target`", secret_ok=True)
        if url is None or url == MASK:
            return
        problem = url_problem(url)
        if problem is not None:
            self.error(f"`target` {problem}; found `{_short(url)}`", value.span)

    def watch(self, watch: n.Watch) -> None:
        for value, what in (
            (watch.deployment, "the deployment name"),
            (watch.namespace, "the namespace"),
        ):
            text = self.text(value, what)
            if text is not None and value is not None and not _is_dns_label(text):
                self.error(
                    f"{what} `{_short(text)}` is not a valid Kubernetes name "
                    "(lower case letters, digits and `-`, at most 63 characters)",
                    value.span,
                )

    def param_defs(self) -> None:
        seen: dict[str, n.Param] = {}
        for param in self.scenario.params:
            self.check_name(param.name, "param")
            if param.name.text in seen:
                first = seen[param.name.text].span.line
                self.error(
                    f"duplicate param `{param.name.text}`; the first is at line {first}",
                    param.name.span,
                )
            seen.setdefault(param.name.text, param)
            if isinstance(param.value, n.ParamRef):
                self.error("a param's value must be a literal, not another param", param.value.span)
            elif isinstance(param.value, n.BadLiteral):
                self.error(param.value.message, param.value.span, param.value.hint)

    def settings(self, block: n.Settings) -> None:
        keys: dict[str, n.Setting] = {}
        for setting in block.settings:
            if setting.key in keys:
                first = keys[setting.key].span.line
                self.error(f"duplicate `{setting.key}`; the first is at line {first}", setting.span)
                continue
            keys[setting.key] = setting
            what = f"`{setting.key}`"
            match setting.key:
                case "timeout":
                    self.duration(setting.value, what)
                case "connection_max_age":
                    self.duration(setting.value, what, positive=False)
                case "max_inflight":
                    self.integer(setting.value, what, 1, 1_000_000)
                case "trace_sample":
                    self.percent(setting.value, what)
                case "stress_path":
                    path = self.text(setting.value, what)
                    if path is not None and not path.startswith("/"):
                        self.error(f"{what} must start with `/`", setting.value.span)
        for header in block.headers:
            self.header(header)

    def header(self, header: n.Header) -> None:
        name = self.text(header.name, "a header name")
        if name is not None and not _HEADER_NAME.fullmatch(name):
            self.error(f"`{_short(name)}` is not a valid HTTP header name", header.name.span)
        value = self.text(header.value, "a header value", secret_ok=True)
        if value is not None and ("\n" in value or "\r" in value):
            self.error("a header value must not contain a line break", header.value.span)

    def request_defs(self) -> None:
        seen: dict[str, n.Request] = {}
        for request in self.scenario.requests:
            self.check_name(request.name, "request")
            if request.name.text in seen:
                first = seen[request.name.text].span.line
                self.error(
                    f"duplicate request `{request.name.text}`; the first is at line {first}",
                    request.name.span,
                )
            seen.setdefault(request.name.text, request)
            if isinstance(request, n.HttpRequest):
                self.http_request(request)
            else:
                self.stress_request(request)

    def http_request(self, request: n.HttpRequest) -> None:
        path = self.text(request.path, "a request path")
        if path is not None and not path.startswith("/"):
            self.error(
                f"a request path must start with `/`; found `{_short(path)}`", request.path.span
            )
        for query in request.queries:
            self.value(
                query.value,
                [n.Kind.STRING, n.Kind.NUMBER, n.Kind.BOOL],
                f"query `{query.key.text}`",
            )
        for header in request.headers:
            self.header(header)
        self.once([b.span for b in request.bodies], "`body`")
        for body in request.bodies:
            self.text(body, "`body`", secret_ok=True)
        for status in request.expect_status:
            literal = self.value(status, [n.Kind.NUMBER, n.Kind.STATUS], "`expect status`")
            if (
                literal is not None
                and literal.kind is n.Kind.NUMBER
                and not (literal.exact.denominator == 1 and 100 <= literal.exact <= 599)
            ):
                self.error(
                    f"`expect status` must be a status from 100 to 599 or a class such as `2xx`; "
                    f"found `{literal.text}`",
                    status.span,
                )

    def stress_request(self, request: n.StressRequest) -> None:
        seen: dict[n.StressOption, n.StressSetting] = {}
        for setting in request.settings:
            option = setting.option
            if option in seen:
                self.error(f"`{option}` is given twice in one stress request", setting.span)
                continue
            seen[option] = setting
            if option is n.StressOption.CPU:
                low, high = STRESS_RANGES[option]
                self.integer(setting.value, "`cpu`", low, high)
            elif option is n.StressOption.MEMORY:
                self.memory(setting)
            elif option is n.StressOption.FOR:
                self.stress_duration(setting)
        if n.StressOption.SYNC in seen and n.StressOption.ASYNC in seen:
            self.error(
                "a stress request is either `sync` or `async`, not both",
                seen[n.StressOption.ASYNC].span,
            )
        if n.StressOption.FOR not in seen:
            self.error(
                "a stress request needs `for DURATION` (1s to 60s)",
                request.name.span,
            )

    def memory(self, setting: n.StressSetting) -> None:
        literal = self.value(setting.value, [n.Kind.SIZE], "`memory`")
        if literal is None or setting.value is None:
            return
        megabytes = literal.exact / (1024 * 1024)
        low, high = STRESS_RANGES[n.StressOption.MEMORY]
        if megabytes.denominator != 1 or not low <= megabytes <= high:
            self.error(
                f"`memory` must be whole megabytes from {low}MB to {high}MB "
                f"(the consumer answers 422 otherwise); found `{literal.text}`",
                setting.value.span,
            )

    def stress_duration(self, setting: n.StressSetting) -> None:
        literal = self.value(setting.value, [n.Kind.DURATION], "`for`")
        if literal is None or setting.value is None:
            return
        low, high = STRESS_RANGES[n.StressOption.FOR]
        if literal.exact.denominator != 1 or not low <= literal.exact <= high:
            self.error(
                f"`for` must be whole seconds from {low}s to {high}s "
                f"(the consumer answers 422 otherwise); found `{literal.text}`",
                setting.value.span,
            )

    # ------------------------------------------------------------ phases
    def phases(self) -> None:
        phases = self.scenario.phases
        if not phases:
            self.error("a scenario needs at least one `phase`", self.scenario.end)
            return
        if len(phases) > MAX_PHASES:
            self.error(
                f"the scenario has {len(phases):,} phases; the limit is {MAX_PHASES:,}",
                phases[MAX_PHASES].span,
            )
            return
        names: dict[str, n.Phase] = {}
        total = Fraction(0)
        for phase in phases:
            name = self.text(phase.name, "a phase name")
            if name is not None:
                if not name.strip():
                    self.error("a phase name must not be empty", phase.name.span)
                elif name in names:
                    first = names[name].span.line
                    self.error(
                        f'duplicate phase "{name}"; the first is at line {first}', phase.name.span
                    )
                names.setdefault(name, phase)
            length = self.duration(phase.duration, "a phase duration")
            total += length or 0
            self.phase(phase, length)
        if total > MAX_DURATION_S:
            self.error(
                f"the phases last {float(total) / 3600:.1f}h in all; the limit is "
                f"{MAX_DURATION_S // 3600}h",
                phases[-1].span,
            )

    def phase(self, phase: n.Phase, length: Fraction | None) -> None:
        if not phase.shapes:
            self.error(
                "a phase needs exactly one load shape: `rate`, `ramp`, `steps`, `users`, "
                "`burst` or `idle`",
                phase.name.span,
            )
        for extra in phase.shapes[1:]:
            self.error(
                f"a phase has exactly one load shape; this is a second one (the first is "
                f"`{phase.shapes[0].kind}` at line {phase.shapes[0].span.line})",
                extra.span,
            )
        shape = phase.shapes[0] if phase.shapes else None
        if shape is not None:
            self.shape(shape)
        self.spikes(phase, shape, length)
        self.sends(phase, shape)
        for expectation in phase.expectations:
            self.expectation(expectation, scope="phase", phase_length=length)
        for kill in phase.kills:
            self.kill(kill, length)

    def shape(self, shape: n.Shape) -> None:
        args = shape.args
        match shape.kind:
            case n.ShapeKind.RATE:
                self.rate(args[0], "`rate`", positive=True)
            case n.ShapeKind.RAMP:
                start = self.rate(args[0], "a ramp's start", positive=False)
                end = self.rate(args[1], "a ramp's end", positive=False)
                if start == 0 and end == 0:
                    self.error("a ramp from zero to zero sends nothing (use `idle`)", shape.span)
            case n.ShapeKind.STEPS:
                start = self.rate(args[0], "the first step", positive=False)
                end = self.rate(args[1], "the last step", positive=False)
                stairs = self.integer(args[2], "the number of steps", 1, 10_000)
                self.stairs += stairs or 0
                if stairs is not None and self.stairs > MAX_STAIRS >= self.stairs - stairs:
                    self.error(
                        f"the `steps` shapes reach {self.stairs:,} stairs in all here; the limit "
                        f"is {MAX_STAIRS:,} for a scenario",
                        shape.span if args[2] is None else args[2].span,
                    )
                if start == 0 and end == 0:
                    self.error("steps from zero to zero send nothing (use `idle`)", shape.span)
            case n.ShapeKind.USERS:
                self.integer(args[0], "the number of users", 1, 100_000)
                if args[1] is not None:
                    self.duration(args[1], "`think`", positive=False)
            case n.ShapeKind.BURST:
                size = self.integer(args[0], "a burst's size", 1, 1_000_000)
                every = self.duration(args[1], "a burst's interval")
                if size is not None and every is not None and size / every > self.max_rate:
                    self.error(
                        f"{size} requests every {float(every):g}s averages above the limit of "
                        f"{self.max_rate:g}/s per process (raise it with --max-rate)",
                        shape.span,
                    )
            case n.ShapeKind.IDLE:
                pass

    def spikes(self, phase: n.Phase, shape: n.Shape | None, length: Fraction | None) -> None:
        if (
            phase.spikes
            and shape is not None
            and shape.kind
            in {
                n.ShapeKind.USERS,
                n.ShapeKind.BURST,
            }
        ):
            self.error(
                f"`spike` works with `rate`, `ramp`, `steps` and `idle`, not `{shape.kind}`",
                phase.spikes[0].span,
            )
            return
        windows: list[tuple[Fraction, Fraction, n.Spike]] = []
        for spike in phase.spikes:
            self.rate(spike.rate, "a spike's rate", positive=True)
            span_d = self.duration(spike.duration, "a spike's duration")
            at = self.duration(spike.at, "a spike's start (`at`)", positive=False)
            if span_d is None or at is None or length is None:
                continue
            if at + span_d > length:
                self.error(
                    f"the spike runs from {_secs(at)} to {_secs(at + span_d)}, past the end of its "
                    f"{_secs(length)} phase",
                    spike.span,
                )
                continue
            for start, end, other in windows:
                if at < end and start < at + span_d:
                    self.error(f"this spike overlaps the one at line {other.span.line}", spike.span)
            windows.append((at, at + span_d, spike))

    def sends(self, phase: n.Phase, shape: n.Shape | None) -> None:
        for extra in phase.sends[1:]:
            self.error(
                f"a phase has one `send` (the first is at line {phase.sends[0].span.line}); "
                "put the mix on one line: `send 70% a, 30% b`",
                extra.span,
            )
        sends_load = shape is not None and (shape.kind is not n.ShapeKind.IDLE or phase.spikes)
        if not phase.sends:
            if sends_load:
                self.error(
                    "this phase sends load but has no `send`: say which requests, e.g. `send work`",
                    phase.name.span,
                )
            return
        send = phase.sends[0]
        if send.method is not None:
            self.error(
                "a phase sends named requests (`send NAME`); inline requests belong in `cleanup`",
                send.span,
            )
            return
        if shape is not None and not sends_load:
            self.warn("this idle phase has no spike, so its `send` sends nothing", send.span)
        self.mix(send)

    def mix(self, send: n.Send) -> None:
        seen: set[str] = set()
        total = Fraction(0)
        weighted = [w for w in send.mix if w.weight is not None]
        readable = True  # every weight is a percentage, so their sum means something
        for item in send.mix:
            self.known_request(item.request)
            if item.request.text in seen:
                self.error(f"`{item.request.text}` appears twice in one mix", item.request.span)
            seen.add(item.request.text)
            if item.weight is None:
                if len(send.mix) > 1:
                    self.error(
                        f"give `{item.request.text}` a weight: in a mix every request has one, "
                        "e.g. `send 70% a, 30% b`",
                        item.span,
                    )
                continue
            weight = self.percent(item.weight, "a weight")
            readable = readable and weight is not None
            if weight is not None and weight <= 0:
                self.error("a weight must be above 0%", item.weight.span)
            total += weight or 0
        if readable and weighted and len(weighted) == len(send.mix) and total != 100:
            self.error(
                f"the weights add up to {float(total):g}%, not 100%",
                send.span,
            )

    def kill(self, kill: n.Kill, length: Fraction | None) -> None:
        at = self.duration(kill.at, "a kill's time (`at`)", positive=False)
        self.integer(kill.count, "the number of pods to kill", 1, 1000)
        if at is not None and length is not None and at >= length:
            self.error(f"`at {_secs(at)}` is not inside its {_secs(length)} phase", kill.at.span)
        if not self.has_watch:
            self.error(
                '`kill` needs `watch deployment "NAME"` to know which pods to delete', kill.span
            )

    # ------------------------------------------------------------ expectations
    def hypothesis(self, block: n.Block, where: str) -> None:
        for item in block.items:
            if isinstance(item, n.Compare):
                kind = subject_kind(_subject(item.subject))
                if kind not in {ExpectationKind.REPLICAS, None}:
                    self.error(
                        f"`{where}` holds replica expectations and `NAME succeeds` checks; "
                        f"`{_subject(item.subject)}` is judged over phases (put it in a phase or "
                        "at scenario level)",
                        item.span,
                    )
                    continue
            self.expectation(item, scope=where)  # type: ignore[arg-type]

    def expectation(
        self, item: n.Expectation, *, scope: str, phase_length: Fraction | None = None
    ) -> None:
        if isinstance(item, n.Succeeds):
            if scope not in {"before", "after"}:
                self.error("`expect NAME succeeds` belongs in `before` or `after`", item.span)
            self.known_request(item.request)
            if item.within is not None:
                self.duration(item.within, "`within`")
            return
        subject = _subject(item.subject)
        kind = subject_kind(subject)
        if kind is None:
            hint = closest(subject, (*METRIC_SUBJECTS, *REPLICA_SUBJECTS))
            self.error(
                f"unknown expectation `{subject}`; expected one of "
                + ", ".join(f"`{s}`" for s in (*METRIC_SUBJECTS, *REPLICA_SUBJECTS)),
                _subject_span(item.subject),
                hint,
            )
            return
        if kind is ExpectationKind.REPLICAS:
            self.replica_expectation(item, scope, phase_length)
            return
        if item.window is not None:
            self.error(
                f"`{subject}` is judged over all requests in its scope and takes no window",
                item.window.span,
            )
        if kind is ExpectationKind.LATENCY:
            self.duration(item.value, f"`{subject}`", positive=False)
        else:
            self.percent(item.value, f"`{subject}`")

    def replica_expectation(
        self, item: n.Compare, scope: str, phase_length: Fraction | None
    ) -> None:
        self.integer(item.value, "a replica count", 0, 10_000)
        if not self.has_watch:
            self.error(
                'a replica expectation needs `watch deployment "NAME"` (or --deployment)',
                item.span,
            )
        window = item.window
        if window is None:
            self.error(
                "a replica expectation needs a window: `within D`, `throughout` or `at end`",
                item.span,
            )
            return
        if scope in {"before", "after"} and window.kind is not n.WindowKind.WITHIN:
            self.error(f"in `{scope}`, replica expectations use `within D`", window.span)
            return
        if window.kind is n.WindowKind.WITHIN:
            self.duration(window.duration, "`within`")

    def abort(self, abort: n.Abort) -> None:
        subject = _subject(abort.subject)
        kind = subject_kind(subject)
        if subject == "errors" or kind is ExpectationKind.LATENCY:
            if kind is ExpectationKind.LATENCY:
                self.duration(abort.value, f"`{subject}`", positive=False)
            else:
                self.percent(abort.value, "`errors`")
            if abort.over is None:
                self.error(f"`abort when {subject} ...` needs a window: `over 30s`", abort.span)
            else:
                self.duration(abort.over, "`over`")
            return
        if subject == "replicas":
            self.integer(abort.value, "a replica count", 0, 10_000)
            if abort.over is not None:
                self.error("`abort when replicas ...` takes no window", abort.over.span)
            if not self.has_watch:
                self.error('`abort when replicas` needs `watch deployment "NAME"`', abort.span)
            return
        self.error(
            f"`abort when` takes errors, p50..p99, max, mean or replicas; found `{subject}`",
            _subject_span(abort.subject),
            closest(subject, GUARD_SUBJECTS),
        )

    def cleanup(self, block: n.Block) -> None:
        for item in block.items:
            if not isinstance(item, n.Send):  # pragma: no cover - the grammar allows only send
                continue
            if item.method is not None:
                path = self.text(item.path, "a request path")
                if path is not None and item.path is not None and not path.startswith("/"):
                    self.error("a request path must start with `/`", item.path.span)
                continue
            if len(item.mix) != 1 or item.mix[0].weight is not None:
                self.error("`cleanup` sends one request per line, without weights", item.span)
                continue
            self.known_request(item.mix[0].request)


def _subject(names: Iterable[n.Name]) -> str:
    return " ".join(name.text for name in names)


def _subject_span(names: tuple[n.Name, ...]) -> n.Span:
    first, last = names[0].span, names[-1].span
    return n.Span(first.line, first.column, last.end_line, last.end_column)


def _kinds(kinds: Sequence[n.Kind]) -> str:
    return " or ".join(KIND_EXAMPLES[kind] for kind in kinds)


def url_problem(url: str) -> str | None:
    """What is wrong with `url` as a target (a base URL to send requests to), or None.

    Shared by `target "URL"` and `run --url`, so that nothing the runner cannot use gets past
    validation: only http and https, a host, a valid port, and no query or fragment (request
    paths are appended to it).
    """
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "must be an http:// or https:// URL"
    if port == 0:
        return "has port 0"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "must not have a query or fragment (request paths and queries are added to it)"
    return None


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _secs(value: Fraction) -> str:
    return f"{float(value):g}s"


def _is_dns_label(text: str) -> bool:
    return len(text) <= 63 and _DNS_LABEL.fullmatch(text) is not None
