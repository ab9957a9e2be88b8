"""Validation of what is sent: `settings` (every request's defaults), request templates (HTTP
requests with their query, headers, body and `expect status`; stress requests against the
consumer's ranges) and the `cleanup` block's sends.

Paths and header names are checked here rather than at send time so that a run never starts
with a request the transport would refuse or the consumer would answer with 422.
"""

from __future__ import annotations

import re

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.validate.values import Checker, short
from nimbus_scenarios.language.vocabulary import STRESS_RANGES

__all__ = ["check_cleanup", "check_requests", "check_settings"]

# RFC 9110's token: the characters an HTTP client accepts in a header name.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def check_settings(check: Checker, block: n.Settings) -> None:
    """One `settings` block: each key once, its value's kind and range, the headers."""
    keys: dict[str, n.Setting] = {}
    for setting in block.settings:
        if setting.key in keys:
            first = keys[setting.key].span.line
            check.error(f"duplicate `{setting.key}`; the first is at line {first}", setting.span)
            continue
        keys[setting.key] = setting
        what = f"`{setting.key}`"
        match setting.key:
            case "timeout":
                check.duration(setting.value, what)
            case "connection_max_age":
                # 0s is meaningful: a new connection for every request.
                check.duration(setting.value, what, positive=False)
            case "max_inflight":
                check.integer(setting.value, what, 1, 1_000_000)
            case "trace_sample":
                check.percent(setting.value, what)
            case "stress_path":
                path = check.text(setting.value, what)
                if path is not None and not path.startswith("/"):
                    check.error(f"{what} must start with `/`", setting.value.span)
            case "memory_in_flight":
                size = check.value(setting.value, [n.Kind.SIZE], what)
                if size is not None and size.exact <= 0:
                    check.error(f"{what} must be above zero", setting.value.span)
    for header in block.headers:
        _header(check, header)


def _header(check: Checker, header: n.Header) -> None:
    name = check.text(header.name, "a header name")
    if name is not None and not _HEADER_NAME.fullmatch(name):
        check.error(f"`{short(name)}` is not a valid HTTP header name", header.name.span)
    value = check.text(header.value, "a header value", secret_ok=True)
    if value is not None and ("\n" in value or "\r" in value):
        check.error("a header value must not contain a line break", header.value.span)


def check_requests(check: Checker, scenario: n.Scenario) -> None:
    """Every request template: its name, duplicates, then its own kind's checks."""
    seen: dict[str, n.Span] = {}
    for request in scenario.requests:
        check.new_name(request.name, request.span, "request", seen)
        if isinstance(request, n.HttpRequest):
            _http_request(check, request)
        else:
            _stress_request(check, request)


def _http_request(check: Checker, request: n.HttpRequest) -> None:
    path = check.text(request.path, "a request path")
    if path is not None and not path.startswith("/"):
        check.error(f"a request path must start with `/`; found `{short(path)}`", request.path.span)
    for query in request.queries:
        check.value(
            query.value,
            [n.Kind.STRING, n.Kind.NUMBER, n.Kind.BOOL],
            f"query `{query.key.text}`",
        )
    for header in request.headers:
        _header(check, header)
    check.once([b.span for b in request.bodies], "`body`")
    for body in request.bodies:
        check.text(body, "`body`", secret_ok=True)
    for status in request.expect_status:
        literal = check.value(status, [n.Kind.NUMBER, n.Kind.STATUS], "`expect status`")
        if (
            literal is not None
            and literal.kind is n.Kind.NUMBER
            and not (literal.exact.denominator == 1 and 100 <= literal.exact <= 599)
        ):
            check.error(
                f"`expect status` must be a status from 100 to 599 or a class such as `2xx`; "
                f"found `{literal.text}`",
                status.span,
            )


def _stress_request(check: Checker, request: n.StressRequest) -> None:
    seen: dict[n.StressOption, n.StressSetting] = {}
    for setting in request.settings:
        option = setting.option
        if option in seen:
            check.error(f"`{option}` is given twice in one stress request", setting.span)
            continue
        seen[option] = setting
        if option is n.StressOption.CPU:
            low, high = STRESS_RANGES[option]
            check.integer(setting.value, "`cpu`", low, high)
        elif option is n.StressOption.MEMORY:
            _memory(check, setting)
        elif option is n.StressOption.FOR:
            _stress_duration(check, setting)
    if n.StressOption.SYNC in seen and n.StressOption.ASYNC in seen:
        check.error(
            "a stress request is either `sync` or `async`, not both",
            seen[n.StressOption.ASYNC].span,
        )
    if n.StressOption.FOR not in seen:
        check.error(
            "a stress request needs `for DURATION` (1s to 60s)",
            request.name.span,
        )


def _memory(check: Checker, setting: n.StressSetting) -> None:
    literal = check.value(setting.value, [n.Kind.SIZE], "`memory`")
    if literal is None or setting.value is None:
        return
    # The consumer takes whole megabytes; a size literal is in bytes.
    megabytes = literal.exact / (1024 * 1024)
    low, high = STRESS_RANGES[n.StressOption.MEMORY]
    if megabytes.denominator != 1 or not low <= megabytes <= high:
        check.error(
            f"`memory` must be whole megabytes from {low}MB to {high}MB "
            f"(the consumer answers 422 otherwise); found `{literal.text}`",
            setting.value.span,
        )


def _stress_duration(check: Checker, setting: n.StressSetting) -> None:
    literal = check.value(setting.value, [n.Kind.DURATION], "`for`")
    if literal is None or setting.value is None:
        return
    low, high = STRESS_RANGES[n.StressOption.FOR]
    if literal.exact.denominator != 1 or not low <= literal.exact <= high:
        check.error(
            f"`for` must be whole seconds from {low}s to {high}s "
            f"(the consumer answers 422 otherwise); found `{literal.text}`",
            setting.value.span,
        )


def check_cleanup(check: Checker, block: n.Block) -> None:
    """A `cleanup` block: one named request or one inline `METHOD "PATH"` per line."""
    for item in block.items:
        if not isinstance(item, n.Send):  # pragma: no cover - the grammar allows only send
            continue
        if item.method is not None:
            path = check.text(item.path, "a request path")
            if path is not None and item.path is not None and not path.startswith("/"):
                check.error("a request path must start with `/`", item.path.span)
            continue
        if len(item.mix) != 1 or item.mix[0].weight is not None:
            check.error("`cleanup` sends one request per line, without weights", item.span)
            continue
        check.known_request(item.mix[0].request)
