"""Validation of the scenario's own statements: its name, the statements and blocks it may have
once, `description`, `target`, `watch` and the `param` definitions.

These are checked first; what they establish (is there a watch, which params exist) is already in
the `Checker` that the later checks read.
"""

from __future__ import annotations

import re

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.validate.values import Checker, short, url_problem
from nimbus_scenarios.language.vocabulary import MAX_SCENARIO_NAME, SCENARIO_NAME
from nimbus_scenarios.secrets import MASK

__all__ = ["check_params", "check_scenario_statements"]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def check_scenario_statements(check: Checker, s: n.Scenario) -> None:
    """The name, the at-most-once statements and blocks, `description`, `target` and `watch`."""
    name = check.text(s.name, "the scenario name")
    if name is not None and not name.strip():
        check.error("the scenario name must not be empty", s.name.span)
    elif name is not None:
        _scenario_name(check, name, s.name.span)
    for what, items in (
        ("`description`", s.descriptions),
        ("`target`", s.targets),
        ("`watch`", s.watches),
        ("`settings` block", s.settings),
        ("`before` block", s.befores),
        ("`after` block", s.afters),
        ("`cleanup` block", s.cleanups),
    ):
        check.once([x.span for x in items], what)
    for description in s.descriptions:
        check.text(description, "`description`")
    for target in s.targets:
        _target(check, target)
    for watch in s.watches:
        _watch(check, watch)


def _target(check: Checker, value: n.Value) -> None:
    url = check.text(value, "`target`", secret_ok=True)
    # A target from `env(...)` is only known when the run starts; `run` checks it then.
    if url is None or url == MASK:
        return
    problem = url_problem(url)
    if problem is not None:
        check.error(f"`target` {problem}; found `{short(url)}`", value.span)


def _watch(check: Checker, watch: n.Watch) -> None:
    for value, what in (
        (watch.deployment, "the deployment name"),
        (watch.namespace, "the namespace"),
    ):
        text = check.text(value, what)
        if text is not None and value is not None and not _is_dns_label(text):
            check.error(
                f"{what} `{short(text)}` is not a valid Kubernetes name "
                "(lower case letters, digits and `-`, at most 63 characters)",
                value.span,
            )


def check_params(check: Checker, scenario: n.Scenario) -> None:
    """Param definitions: names, duplicates, and values that are literals."""
    seen: dict[str, n.Span] = {}
    for param in scenario.params:
        check.new_name(param.name, param.span, "param", seen)
        if isinstance(param.value, n.ParamRef):
            check.error("a param's value must be a literal, not another param", param.value.span)
        elif isinstance(param.value, n.BadLiteral):
            check.error(param.value.message, param.value.span, param.value.hint)


def _scenario_name(check: Checker, name: str, span: n.Span) -> None:
    """The name becomes the results file's name: a safe set of characters, a bounded length."""
    if len(name) > MAX_SCENARIO_NAME:
        check.error(
            f"the scenario name is {len(name):,} characters long; the limit is "
            f"{MAX_SCENARIO_NAME} (it names the results file)",
            span,
        )
    elif SCENARIO_NAME.fullmatch(name) is None:
        check.error(
            f"the scenario name `{short(name)}` may hold only ASCII letters, digits, `-`, `_` "
            "and `.`, and may not start with `.` (it names the results file)",
            span,
        )


def _is_dns_label(text: str) -> bool:
    return len(text) <= 63 and _DNS_LABEL.fullmatch(text) is not None
