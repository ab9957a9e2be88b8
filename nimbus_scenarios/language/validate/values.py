"""Validation's values and limits: the `Checker` every other validation module reports through.

A value is checked where it is used, after `$param` resolution: its kind (a rate where a rate
belongs), its range (whole numbers, at most 100%), and the limits that keep a run sane (no rate
above `--max-rate`, nothing longer than a week). Each check records at most one diagnostic and
returns the value, or None when there is none to use, so that the caller skips the checks that
depend on it instead of piling up errors that say the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from urllib.parse import urlsplit

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import Diagnostic, Severity, closest
from nimbus_scenarios.language.params import KIND_EXAMPLES, Params, kind_article
from nimbus_scenarios.language.vocabulary import MAX_DURATION_S, RESERVED
from nimbus_scenarios.secrets import MASK, mask_urls_in_text

__all__ = ["Checker", "secs", "short", "url_problem"]


class Checker:
    """The diagnostics found so far and the context a check needs (params, limits, names)."""

    def __init__(
        self,
        scenario: n.Scenario,
        params: Params,
        *,
        max_rate: float,
        watch_given: bool,
        shards: int = 1,
    ) -> None:
        self.params = params
        self.max_rate = max_rate
        self.shards = shards
        """How many processes share the load (`run --shards N` times `--workers W`): the
        per-process limits (rate, users) divide."""
        self.has_watch = bool(scenario.watches) or watch_given
        self.problems: list[Diagnostic] = []
        self.requests = {r.name.text: r for r in scenario.requests}
        self._from_set: dict[n.Span, str] = {}
        """Where a `$name` whose value came from `--set` was used, with that `--set`."""

    # ------------------------------------------------------------ reporting
    def error(self, message: str, span: n.Span, hint: str | None = None) -> None:
        self.problems.append(Diagnostic(self._origin(message, span), span, hint))

    def warn(self, message: str, span: n.Span, hint: str | None = None) -> None:
        self.problems.append(Diagnostic(self._origin(message, span), span, hint, Severity.WARNING))

    def _origin(self, message: str, span: n.Span) -> str:
        """`message`, saying where the value came from when it is about a `$name` that the
        command line set: the file shows only `$name`, not the value that was found wrong."""
        given = self._from_set.get(span)
        return message if given is None else f"{message}; the value is from `{given}`"

    # ------------------------------------------------------------ values
    def value(self, value: n.Value | None, kinds: Sequence[n.Kind], what: str) -> n.Literal | None:
        """The literal behind `value` if it has one of `kinds`, else report why not."""
        if value is None:
            return None
        resolved = self.params.resolve(value)
        via = f" (`${value.name}`)" if isinstance(value, n.ParamRef) else ""
        if isinstance(value, n.ParamRef):
            given = self.params.origin(value.name)
            if given is not None:
                self._from_set[value.span] = given
        if isinstance(resolved, n.ParamRef):
            hint = closest(resolved.name, self.params.values)
            self.error(
                f"unknown param `${resolved.name}`",
                value.span,
                f"${hint}" if hint else None,
            )
            return None
        if isinstance(resolved, n.BadLiteral):
            # A bad param value is reported where the param is defined, not again at each use.
            if not via:
                self.error(resolved.message, value.span, resolved.hint)
            return None
        if isinstance(resolved, n.EnvRef):
            if n.Kind.STRING in kinds:
                return n.Literal(n.Kind.STRING, MASK, string=MASK, span=value.span)
            self.error(f"{what} must be {_kinds(kinds)}; `env(...)` gives a string", value.span)
            return None
        if resolved.kind not in kinds:
            found = f"{kind_article(resolved.kind)} `{short(resolved.text)}`"
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
        # Each process (shard or worker) sends its share: the cap is on that share.
        if literal.exact / self.shards > self.max_rate:
            each = (
                f" ({float(literal.exact / self.shards):g}/s in each of {self.shards} processes)"
                if self.shards > 1
                else ""
            )
            self.error(
                f"{what} `{short(literal.text)}` is above the limit of "
                f"{self.max_rate:g}/s per process{each} (raise it with --max-rate, or shard "
                "the run)",
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

    # ------------------------------------------------------------ names
    def once(self, spans: Sequence[n.Span], what: str) -> None:
        for span in spans[1:]:
            self.error(f"duplicate {what}; the first is at line {spans[0].line}", span)

    def check_name(self, name: n.Name, what: str) -> None:
        if name.text in RESERVED:
            self.error(f"`{name.text}` is a reserved word and cannot name a {what}", name.span)

    def new_name(self, name: n.Name, at: n.Span, what: str, seen: dict[str, n.Span]) -> None:
        """A name that must be unique among the `what`s: not reserved, and not seen before
        (`seen` maps each name to the span of what it first named, `at` for this one)."""
        self.check_name(name, what)
        first = seen.setdefault(name.text, at)
        if first is not at:
            self.error(
                f"duplicate {what} `{name.text}`; the first is at line {first.line}", name.span
            )

    def known_request(self, name: n.Name) -> n.Request | None:
        request = self.requests.get(name.text)
        if request is None:
            self.error(
                f"unknown request `{name.text}`", name.span, closest(name.text, self.requests)
            )
        return request


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


def short(text: str) -> str:
    """`text` cut to 40 characters, for quoting a user's value inside a message; a password in
    a URL is masked first, so that no part of it is shown."""
    text = mask_urls_in_text(text)
    return text if len(text) <= 40 else text[:37] + "..."


def secs(value: Fraction) -> str:
    """A time in seconds as messages print it (`1.5s`)."""
    return f"{float(value):g}s"


def duration_text(seconds: Fraction) -> str:
    """A long time as a duration literal, exact to the millisecond: `268h`, `168h1m`,
    `100h0m0.5s`, so that a time just past a limit never prints as the limit."""
    millis = math.ceil(seconds * 1000)
    hours, millis = divmod(millis, 3600_000)
    minutes, millis = divmod(millis, 60_000)
    text = f"{hours}h" if hours else ""
    if minutes or (millis and hours):
        text += f"{minutes}m"
    if millis or not text:
        text += f"{millis / 1000:g}s"
    return text


def _kinds(kinds: Sequence[n.Kind]) -> str:
    return " or ".join(KIND_EXAMPLES[kind] for kind in kinds)
